//! Building the server's TLS configuration from [`TlsSettings`].

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as provider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    Error, InconsistentKeys, RootCertStore, ServerConfig, SupportedProtocolVersion, version,
};

use super::settings::{ClientAuth, TlsSettings, TlsVersionMin};
use super::verifier::AcceptAnyClientCert;
use super::{ciphers, files, key, pem};

/// What the server keeps for TLS: the rustls configuration shared by every
/// connection, plus what [`connection_info`](super::connection_info) needs.
///
/// Build one per server (or per worker) with [`ServerTls::new`]; it is cheap to
/// share behind an `Arc`.
#[derive(Debug)]
pub struct ServerTls {
    /// The configuration every `ServerConnection` is made from.
    pub config: Arc<ServerConfig>,
    /// PEM of the server's leaf certificate, computed once.
    pub server_cert_pem: Arc<str>,
    /// With [`ClientAuth::Optional`], the strict verifier whose verdict is
    /// reported as `client_cert_error`.
    pub(super) optional_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl ServerTls {
    /// Reads the files named by `s` and builds the configuration.
    ///
    /// The error is one readable line naming the flag and file at fault, e.g.
    /// `cannot read --ssl-certfile /x/y.pem: No such file or directory`.
    pub fn new(s: &TlsSettings) -> Result<Self, String> {
        let provider = Arc::new(crypto_provider(s)?);
        let versions = protocol_versions(&provider, s.protocol_min)?;

        let chain = files::certificates("--ssl-certfile", &s.certfile)?;
        let key_der = key::private_key(&s.keyfile, s.keyfile_password.as_deref())?;
        let signing_key = provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| {
                format!(
                    "--ssl-keyfile {}: unsupported private key ({e})",
                    s.keyfile.display()
                )
            })?;
        let server_cert_pem: Arc<str> = pem::certificate(&chain[0]).into();
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // `Unknown`: the provider cannot derive the public key; rustls
            // accepts that too.
            Ok(()) | Err(Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(format!(
                    "the private key in {} does not match the certificate in {}",
                    s.keyfile.display(),
                    s.certfile.display()
                ));
            }
            Err(e) => return Err(format!("--ssl-certfile {}: {e}", s.certfile.display())),
        }

        let (client_verifier, optional_verifier) = client_verifiers(s, &provider)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("--ssl-ciphers: {e}"))?;
        let mut config = builder
            .with_client_cert_verifier(client_verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        config.alpn_protocols = s.alpn.clone();
        // Stateless TLS 1.3 resumption; the default in-memory session cache
        // (256 entries) still serves TLS 1.2 session IDs.
        config.ticketer =
            provider::Ticketer::new().map_err(|e| format!("cannot make TLS ticket keys: {e}"))?;

        Ok(Self {
            config: Arc::new(config),
            server_cert_pem,
            optional_verifier,
        })
    }
}

/// The ring provider, cut down to the suites `--ssl-ciphers` names.
fn crypto_provider(s: &TlsSettings) -> Result<CryptoProvider, String> {
    let mut p = provider::default_provider();
    if let Some(list) = &s.ciphers {
        p.cipher_suites = ciphers::parse_cipher_suites(list, &p.cipher_suites)?;
    }
    Ok(p)
}

/// The versions allowed by `--ssl-protocol-min` that have at least one suite.
fn protocol_versions(
    p: &CryptoProvider,
    min: TlsVersionMin,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let wanted: &[&'static SupportedProtocolVersion] = match min {
        TlsVersionMin::Tls12 => &[&version::TLS13, &version::TLS12],
        TlsVersionMin::Tls13 => &[&version::TLS13],
    };
    let usable: Vec<_> = wanted
        .iter()
        .copied()
        .filter(|v| p.cipher_suites.iter().any(|s| s.version() == *v))
        .collect();
    if usable.is_empty() {
        return Err(
            "--ssl-ciphers: no cipher suite for TLS 1.3, which --ssl-protocol-min tls1.3 requires"
                .to_owned(),
        );
    }
    Ok(usable)
}

/// The verifier the handshake uses and, in optional mode, the strict one
/// `connection_info` re-runs.
type Verifiers = (
    Arc<dyn ClientCertVerifier>,
    Option<Arc<dyn ClientCertVerifier>>,
);

fn client_verifiers(s: &TlsSettings, p: &Arc<CryptoProvider>) -> Result<Verifiers, String> {
    if s.client_auth == ClientAuth::None {
        if let Some(crl) = &s.crl {
            return Err(format!(
                "--ssl-crl {} needs --ssl-cert-reqs optional or required",
                crl.display()
            ));
        }
        return Ok((WebPkiClientVerifier::no_client_auth(), None));
    }
    let Some(ca_path) = &s.ca_certs else {
        return Err(format!(
            "--ssl-ca-certs is needed with --ssl-cert-reqs {}",
            s.client_auth
        ));
    };
    let mut roots = RootCertStore::empty();
    for ca in files::certificates("--ssl-ca-certs", ca_path)? {
        roots
            .add(ca)
            .map_err(|e| format!("--ssl-ca-certs {}: {e}", ca_path.display()))?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), p.clone());
    if let Some(crl_path) = &s.crl {
        // A CRL covers the CAs that issued it; chains from other trusted CAs
        // (whose status is then unknown) stay valid.
        builder = builder
            .with_crls(files::crls(crl_path)?)
            .allow_unknown_revocation_status();
    }
    if s.client_auth == ClientAuth::Optional {
        builder = builder.allow_unauthenticated();
    }
    let strict = builder.build().map_err(|e| match (&s.crl, e) {
        (Some(crl), rustls::server::VerifierBuilderError::InvalidCrl(_)) => {
            format!("--ssl-crl {}: not a CRL", crl.display())
        }
        (_, e) => format!("--ssl-ca-certs {}: {e}", ca_path.display()),
    })?;
    Ok(match s.client_auth {
        ClientAuth::Optional => (
            Arc::new(AcceptAnyClientCert::new(strict.clone())),
            Some(strict),
        ),
        _ => (strict, None),
    })
}
