//! Cormorant's server without Python: tokio drives `cormorant-core` over
//! sockets (HTTP/1.1 and WebSocket), hyper serves HTTP/2, rustls serves
//! TLS. Requests are handed to an application side through [`handoff`]:
//! the Python bridge of the `cormorant` crate, or an embedder through
//! [`embed`] (the C API's server layer). No pyo3 here.
#![deny(unsafe_code)]

pub mod access_format;
pub mod config;
pub mod console;
pub mod embed;
pub mod handoff;
pub mod metrics;
pub mod server;
mod sys;
pub mod systemd;
pub mod tls;
