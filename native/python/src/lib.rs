//! Cormorant for Python: the extension module `cormorant._cormorant`, built
//! by maturin. pyo3 runs the ASGI application on the worker's Python
//! thread ([`bridge`]) over the server of `cormorant-server`; clap parses
//! the command line ([`cli`]); the supervisor runs worker processes.
#![deny(unsafe_code)]

mod bridge;
mod cli;
mod config_file;
mod proctitle;
mod python;
mod reload;
#[cfg(test)]
mod settings_stub;
mod supervisor;
mod sys;
mod systemd;
mod worker_protocol;

// The server crate's modules, under the names the Python side uses.
use cormorant_server::{access_format, config, console, embed, handoff, metrics, server, tls};
