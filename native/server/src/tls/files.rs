//! Reading certificate and CRL files, with one-line errors that name the flag.

use std::io;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};

/// Reads `path` whole; the error reads `cannot read <flag> <path>: <reason>`.
pub(super) fn read(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path)
        .map_err(|e| format!("cannot read {flag} {}: {}", path.display(), io_reason(&e)))
}

/// The text of an I/O error without Rust's ` (os error N)` suffix, so that it
/// reads like Python's: `No such file or directory`.
pub(super) fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Whether `data` looks like PEM text rather than DER.
pub(super) fn is_pem(data: &[u8]) -> bool {
    memfind(data, b"-----BEGIN ").is_some()
}

/// The first index of `needle` in `haystack`.
pub(super) fn memfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads every `CERTIFICATE` block of a PEM file (or one DER certificate).
///
/// Errors when the file holds none, so the result is never empty.
pub(super) fn certificates(
    flag: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = read(flag, path)?;
    let certs = if is_pem(&data) {
        CertificateDer::pem_slice_iter(&data)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{flag} {}: bad PEM: {e}", path.display()))?
    } else if x509_parser::parse_x509_certificate(&data).is_ok() {
        vec![CertificateDer::from(data)]
    } else {
        Vec::new()
    };
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no certificate found (expected PEM CERTIFICATE blocks)",
            path.display()
        ));
    }
    for cert in &certs {
        if let Err(e) = x509_parser::parse_x509_certificate(cert) {
            return Err(format!(
                "{flag} {}: not a valid X.509 certificate ({e})",
                path.display()
            ));
        }
    }
    Ok(certs)
}

/// Reads every `X509 CRL` block of a PEM file, or one DER CRL.
pub(super) fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    const FLAG: &str = "--ssl-crl";
    let data = read(FLAG, path)?;
    let not_a_crl = || format!("{FLAG} {}: not a CRL", path.display());
    let crls = if is_pem(&data) {
        CertificateRevocationListDer::pem_slice_iter(&data)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| not_a_crl())?
    } else {
        vec![CertificateRevocationListDer::from(data)]
    };
    if crls.is_empty() {
        return Err(not_a_crl());
    }
    for crl in &crls {
        if x509_parser::parse_x509_crl(crl).is_err() {
            return Err(not_a_crl());
        }
    }
    Ok(crls)
}
