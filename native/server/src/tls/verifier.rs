//! The client certificate verifier for `--ssl-cert-reqs optional`.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// Asks for a client certificate and accepts any, or none.
///
/// It wraps a `WebPkiClientVerifier` built with `allow_unauthenticated`: a
/// certificate the inner verifier rejects is still accepted, and
/// [`connection_info`](super::connection_info) re-runs the inner verifier to
/// report why in `client_cert_error`. The handshake signature is always checked,
/// so the client does hold the key of the certificate it sent.
#[derive(Debug)]
pub(super) struct AcceptAnyClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl AcceptAnyClientCert {
    /// Wraps `inner`, which decides what counts as valid.
    pub(super) fn new(inner: Arc<dyn ClientCertVerifier>) -> Self {
        Self { inner }
    }
}

impl ClientCertVerifier for AcceptAnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // Deliberately ignores the verdict: the application sees it in
        // `client_cert_error` and decides.
        let _ = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Why `verifier` rejects the chain `certs` (leaf first) now; `None` if it accepts it.
pub(super) fn rejection(
    verifier: &dyn ClientCertVerifier,
    certs: &[CertificateDer<'_>],
) -> Option<String> {
    let (leaf, intermediates) = certs.split_first()?;
    let err = verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .err()?;
    Some(describe(&err))
}

/// A short, readable reason for a certificate verification failure.
fn describe(err: &Error) -> String {
    let Error::InvalidCertificate(cert_err) = err else {
        return err.to_string();
    };
    match cert_err {
        CertificateError::UnknownIssuer => "certificate signed by an unknown issuer".to_owned(),
        CertificateError::Revoked => "certificate revoked".to_owned(),
        CertificateError::Expired => "certificate expired".to_owned(),
        CertificateError::NotValidYet => "certificate not valid yet".to_owned(),
        CertificateError::BadEncoding => "certificate is not valid DER".to_owned(),
        CertificateError::UnknownRevocationStatus => {
            "certificate revocation status unknown".to_owned()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate not valid for client authentication".to_owned()
        }
        other => other.to_string(),
    }
}
