//! PEM encoding of certificates for the ASGI `tls` extension.

use pkcs8::der::pem::{LineEnding, encode_string};

/// PEM text of the DER certificate `der`: 64-column base64 between
/// `-----BEGIN CERTIFICATE-----` and `-----END CERTIFICATE-----`, ending in a
/// newline, as Python's `ssl.DER_cert_to_PEM_cert` writes it.
pub(super) fn certificate(der: &[u8]) -> String {
    // The label is a valid constant, the only thing the encoder can reject.
    encode_string("CERTIFICATE", LineEnding::LF, der).unwrap_or_default()
}
