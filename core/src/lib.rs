//! Sans-IO protocol core of the Cormorant ASGI server.
//!
//! Everything here is a pure state machine: bytes and events go in, bytes and
//! events come out. There is no I/O, no clock, no threads and no global state,
//! so the same code runs under tokio (`native`), behind a C ABI and in wasm.
//!
//! * [`http`] — the shared HTTP grammar (tokens, lists, hosts, field values,
//!   percent-decoding), written once for every crate.
//! * [`h1`] — an HTTP/1.1 server connection in the style of h11.
//! * [`ws`] — a WebSocket server connection (RFC 6455, RFC 7692).
//! * [`server`] — one server connection: HTTP/1.1 that becomes WebSocket,
//!   with every protocol timer.
//! * [`time`] — the driver's clock as a number, and the timer table.
//! * [`asgi`] — the ASGI HTTP and lifespan state machines, protocol-neutral.
//! * [`wsgi`] — the WSGI environ and `start_response` rules (PEP 3333).
//! * [`proxy_protocol`] — the PROXY protocol v1 and v2 header a trusted load
//!   balancer sends first, parsed as a pure function of the bytes.
#![forbid(unsafe_code)]

pub mod asgi;
pub mod error;
pub mod h1;
pub mod http;
pub mod proxy_protocol;
pub mod server;
pub mod time;
pub mod ws;
pub mod wsgi;

pub use error::{PeerError, UsageError};
