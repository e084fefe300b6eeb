//! wasmtime host for Cormorant.
//!
//! * Core in the sandbox: the C API (`cormorant-capi`) built for
//!   `wasm32-wasip1` runs in wasmtime ([`guest`]) behind the same calls as
//!   the native library ([`capi::CConn`]), and [`replay`] drives either one
//!   through a recorded byte stream so the two can be compared byte for byte.
//! * Apps in the sandbox ([`sandbox`]): a Python ASGI app built into a
//!   component runs under wasmtime while the host checks every message.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod capi;
pub mod epoch;
pub mod guest;
pub mod replay;
pub mod sandbox;
