//! What the command line and the Python API say about TLS.

use std::path::PathBuf;

pub(super) use crate::config::{ClientAuth, TlsVersionMin};

/// Everything needed to build the server's TLS configuration.
///
/// Paths are read once, by [`ServerTls::new`](super::ServerTls::new); the
/// flag names in error messages are the CLI's (`--ssl-certfile`, ...).
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first (`--ssl-certfile`).
    pub certfile: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 RSA, SEC1 EC or encrypted PKCS#8 (`--ssl-keyfile`).
    pub keyfile: PathBuf,
    /// Password of an `ENCRYPTED PRIVATE KEY`; ignored for a plain key.
    pub keyfile_password: Option<String>,
    /// PEM bundle of CAs trusted for client certificates (`--ssl-ca-certs`).
    pub ca_certs: Option<PathBuf>,
    /// Whether client certificates are asked for (`--ssl-cert-reqs`).
    pub client_auth: ClientAuth,
    /// PEM file with one or more X.509 CRLs, or one DER CRL (`--ssl-crl`).
    pub crl: Option<PathBuf>,
    /// The oldest accepted TLS version (`--ssl-protocol-min`).
    pub protocol_min: TlsVersionMin,
    /// Comma- or colon-separated cipher suite names (`--ssl-ciphers`); `None` is
    /// every suite of the crypto provider. See `parse_cipher_suites`.
    pub ciphers: Option<String>,
    /// ALPN protocols in preference order, e.g. `[b"h2", b"http/1.1"]`.
    pub alpn: Vec<Vec<u8>>,
}

impl TlsSettings {
    /// Settings for a certificate and key with every other option at its default.
    #[cfg(test)]
    pub fn new(certfile: impl Into<PathBuf>, keyfile: impl Into<PathBuf>) -> Self {
        Self {
            certfile: certfile.into(),
            keyfile: keyfile.into(),
            ..Self::default()
        }
    }
}
