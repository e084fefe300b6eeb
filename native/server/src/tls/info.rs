//! What the ASGI `tls` extension reports for one connection.

use std::sync::Arc;

use rustls::ServerConnection;
use rustls_pki_types::CertificateDer;

use super::{ServerTls, dn, pem, verifier};

/// The ASGI TLS extension (spec version 0.2) for one connection.
///
/// Built once per connection, after the handshake, by [`connection_info`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// PEM of the server's leaf certificate, shared by every connection.
    pub server_cert: Option<Arc<str>>,
    /// PEM of each certificate the client sent, leaf first; empty if none.
    pub client_cert_chain: Vec<String>,
    /// RFC 4514 form of the client leaf's subject.
    pub client_cert_name: Option<String>,
    /// Why the client's certificate failed verification, with
    /// `--ssl-cert-reqs optional`; `None` when it is valid or absent.
    pub client_cert_error: Option<String>,
    /// `0x0303` for TLS 1.2, `0x0304` for TLS 1.3.
    pub tls_version: u16,
    /// IANA value of the negotiated cipher suite; None where the TLS
    /// stack does not say (QUIC: quinn keeps it to itself).
    pub cipher_suite: Option<u16>,
    /// The protocol negotiated by ALPN, if any.
    pub alpn: Option<Vec<u8>>,
}

/// Reads the [`TlsInfo`] of `conn`, whose handshake MUST be finished
/// (`!conn.is_handshaking()`); before that, version and suite read as 0.
///
/// Cost: with a client certificate, each certificate is PEM-encoded and the
/// leaf parsed; with `--ssl-cert-reqs optional` the chain is verified again.
pub fn connection_info(conn: &ServerConnection, server: &ServerTls) -> TlsInfo {
    handshake_info(
        conn.peer_certificates().unwrap_or_default(),
        conn.protocol_version().map_or(0, u16::from),
        conn.negotiated_cipher_suite().map(|s| u16::from(s.suite())),
        conn.alpn_protocol().map(<[u8]>::to_vec),
        server,
    )
}

/// The [`TlsInfo`] of a QUIC connection, from what quinn tells of its
/// handshake: the client's certificates and the ALPN protocol. QUIC is
/// always TLS 1.3.
pub fn quic_connection_info(
    peer: &[CertificateDer<'static>],
    alpn: Option<Vec<u8>>,
    server: &ServerTls,
) -> TlsInfo {
    handshake_info(
        peer,
        u16::from(rustls::ProtocolVersion::TLSv1_3),
        None,
        alpn,
        server,
    )
}

/// What a finished handshake established.
fn handshake_info(
    peer: &[CertificateDer<'static>],
    tls_version: u16,
    cipher_suite: Option<u16>,
    alpn: Option<Vec<u8>>,
    server: &ServerTls,
) -> TlsInfo {
    let client_cert_error = match (&server.optional_verifier, peer.is_empty()) {
        (Some(inner), false) => verifier::rejection(inner.as_ref(), peer),
        _ => None,
    };
    TlsInfo {
        server_cert: Some(server.server_cert_pem.clone()),
        client_cert_chain: peer.iter().map(|c| pem::certificate(c)).collect(),
        client_cert_name: peer.first().and_then(|leaf| dn::subject_of(leaf)),
        client_cert_error,
        tls_version,
        cipher_suite,
        alpn,
    }
}
