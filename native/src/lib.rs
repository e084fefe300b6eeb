//! Cormorant's native server: tokio drives `cormorant-core` over sockets,
//! pyo3 runs the Python ASGI application, clap parses the command line.
//!
//! Built by maturin as the extension module `cormorant._cormorant` (feature
//! `python`, on by default). Without that feature the crate is the server
//! alone, embedded by C programs through [`embed`] and the C API.
// Without Python, the command line, supervisor and Python logging paths
// are compiled out; what only they use is `cfg(feature = "python")` too.

#[cfg(feature = "python")]
mod bridge;
#[cfg(feature = "python")]
mod cli;
mod config;
#[cfg(feature = "python")]
mod config_file;
#[cfg_attr(not(feature = "python"), allow(dead_code))]
mod console;
pub mod embed;
mod handoff;
mod metrics;
#[cfg(feature = "python")]
mod proctitle;
#[cfg(feature = "python")]
mod python;
#[cfg(feature = "python")]
mod reload;
mod server;
#[cfg(feature = "python")]
mod supervisor;
mod tls;
#[cfg(feature = "python")]
mod worker_protocol;
