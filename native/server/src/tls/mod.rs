//! TLS for the server: configuration from the `--ssl-*` flags, and the ASGI
//! `tls` extension for each connection.
//!
//! Call order:
//! 1. [`ServerTls::new`] once at startup; print its error (one line) and exit
//!    non-zero on failure.
//! 2. Per connection, make a `rustls::ServerConnection` from
//!    [`ServerTls::config`] and drive the handshake (the caller owns the I/O
//!    and the handshake timeout).
//! 3. After the handshake, [`connection_info`] gives what goes into
//!    `scope["extensions"]["tls"]` and the ALPN verdict.
//!
//! Crypto is rustls with the `ring` provider; no OpenSSL.

mod ciphers;
mod dn;
mod files;
mod info;
mod key;
mod pem;
mod server;
mod settings;
#[cfg(test)]
mod test_keys;
mod verifier;

#[cfg(test)]
pub(crate) mod tests;

pub use info::{TlsInfo, connection_info, quic_connection_info};
pub use server::ServerTls;
pub use settings::TlsSettings;
#[cfg(test)]
use settings::{ClientAuth, TlsVersionMin};
