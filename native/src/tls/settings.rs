//! What the command line and the Python API say about TLS.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Which client certificates are asked for.
///
/// uvicorn's `--ssl-cert-reqs` spells these `0`, `1`, `2`; both spellings parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// No certificate is asked for (`CERT_NONE`).
    #[default]
    None,
    /// A certificate is asked for; none, or one that fails verification, is
    /// still accepted, and the failure is reported in the ASGI `tls` extension.
    Optional,
    /// A certificate that verifies against `--ssl-ca-certs` is required;
    /// otherwise the handshake fails.
    Required,
}

impl FromStr for ClientAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "0" | "cert_none" => Ok(Self::None),
            "optional" | "1" | "cert_optional" => Ok(Self::Optional),
            "required" | "2" | "cert_required" => Ok(Self::Required),
            _ => Err(format!(
                "--ssl-cert-reqs: expected none, optional or required (or 0, 1, 2), got {s:?}"
            )),
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Optional => "optional",
            Self::Required => "required",
        })
    }
}

/// The oldest TLS version the server accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum TlsVersionMin {
    /// TLS 1.2 and 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl FromStr for TlsVersionMin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['_', 'v'], ".")
            .as_str()
        {
            "tls1.2" | "tls.1.2" | "1.2" => Ok(Self::Tls12),
            "tls1.3" | "tls.1.3" | "1.3" => Ok(Self::Tls13),
            _ => Err(format!(
                "--ssl-protocol-min: expected tls1.2 or tls1.3, got {s:?}"
            )),
        }
    }
}

/// Everything needed to build the server's TLS configuration.
///
/// Paths are read once, by [`ServerTls::new`](super::ServerTls::new); the
/// flag names in error messages are the CLI's (`--ssl-certfile`, ...).
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    /// PEM certificate chain, leaf first (`--ssl-certfile`).
    pub(crate) certfile: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 RSA, SEC1 EC or encrypted PKCS#8 (`--ssl-keyfile`).
    pub(crate) keyfile: PathBuf,
    /// Password of an `ENCRYPTED PRIVATE KEY`; ignored for a plain key.
    pub(crate) keyfile_password: Option<String>,
    /// PEM bundle of CAs trusted for client certificates (`--ssl-ca-certs`).
    pub(crate) ca_certs: Option<PathBuf>,
    /// Whether client certificates are asked for (`--ssl-cert-reqs`).
    pub(crate) client_auth: ClientAuth,
    /// PEM file with one or more X.509 CRLs, or one DER CRL (`--ssl-crl`).
    pub(crate) crl: Option<PathBuf>,
    /// The oldest accepted TLS version (`--ssl-protocol-min`).
    pub(crate) protocol_min: TlsVersionMin,
    /// Comma- or colon-separated cipher suite names (`--ssl-ciphers`); `None` is
    /// every suite of the crypto provider. See [`parse_cipher_suites`](super::ciphers::parse_cipher_suites).
    pub(crate) ciphers: Option<String>,
    /// ALPN protocols in preference order, e.g. `[b"h2", b"http/1.1"]`.
    pub(crate) alpn: Vec<Vec<u8>>,
}

impl TlsSettings {
    /// Settings for a certificate and key with every other option at its default.
    #[cfg(test)]
    pub(crate) fn new(certfile: impl Into<PathBuf>, keyfile: impl Into<PathBuf>) -> Self {
        Self {
            certfile: certfile.into(),
            keyfile: keyfile.into(),
            ..Self::default()
        }
    }
}
