//! End-to-end tests of the module: files on disk, errors, in-memory handshakes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber, date_time_ymd,
};
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

use super::ciphers::parse_cipher_suites;
use super::test_keys;
use super::*;

// ---- fixtures ---------------------------------------------------------------

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cormorant-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, data).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA certificate and its key.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A leaf for `key`, with subject `dn` (in encoding order) and `serial`.
    fn issue(
        &self,
        key: &KeyPair,
        dn: &[(DnType, &str)],
        serial: u64,
        client: bool,
    ) -> rcgen::Certificate {
        let sans = if client {
            vec![]
        } else {
            vec!["localhost".to_owned()]
        };
        let mut params = CertificateParams::new(sans).unwrap();
        // rcgen starts with a CN of its own; the test names the whole subject.
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in dn {
            params.distinguished_name.push(ty.clone(), *value);
        }
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        params.signed_by(key, &self.cert, &self.key).unwrap()
    }

    /// A PEM CRL revoking `serials`.
    fn crl(&self, serials: &[u64]) -> String {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2124, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|&s| RevokedCertParams {
                    serial_number: SerialNumber::from(s),
                    revocation_time: date_time_ymd(2024, 1, 1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.cert, &self.key)
            .unwrap()
            .pem()
            .unwrap()
    }
}

/// A client identity: chain (leaf first) and key.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    fn new(ca: &Ca, dn: &[(DnType, &str)], serial: u64) -> Self {
        let key = KeyPair::generate().unwrap();
        let cert = ca.issue(&key, dn, serial, true);
        Self {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        }
    }
}

/// Files for a server: CA-signed certificate for `localhost` and its key.
struct ServerFiles {
    dir: TempDir,
    ca: Ca,
    cert: rcgen::Certificate,
    certfile: PathBuf,
    keyfile: PathBuf,
}

impl ServerFiles {
    fn new() -> Self {
        Self::with_key(KeyPair::generate().unwrap(), None)
    }

    /// A server whose key file holds `key_file_text` (default: `key` as PKCS#8 PEM).
    fn with_key(key: KeyPair, key_file_text: Option<&str>) -> Self {
        let dir = TempDir::new();
        let ca = Ca::new("Test Server CA");
        let cert = ca.issue(&key, &[(DnType::CommonName, "localhost")], 1, false);
        let certfile = dir.write("cert.pem", cert.pem());
        let keyfile = dir.write(
            "key.pem",
            key_file_text.map_or_else(|| key.serialize_pem(), str::to_owned),
        );
        Self {
            dir,
            ca,
            cert,
            certfile,
            keyfile,
        }
    }

    fn settings(&self) -> TlsSettings {
        TlsSettings::new(&self.certfile, &self.keyfile)
    }

    /// Settings asking for client certificates from `client_ca`.
    fn mtls(&self, mode: ClientAuth, client_ca: &Ca) -> TlsSettings {
        let mut s = self.settings();
        s.client_auth = mode;
        s.ca_certs = Some(self.dir.write("client-ca.pem", client_ca.cert.pem()));
        s
    }

    fn client_config(&self, identity: Option<&Identity>) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.cert.der().clone()).unwrap();
        let builder = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        match identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        }
    }
}

/// Moves TLS records both ways until neither side has anything to send; the
/// first error of either side ends it.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), String> {
    for _ in 0..20 {
        let mut moved = false;
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            moved = true;
            server.read_tls(&mut rd).unwrap();
            server
                .process_new_packets()
                .map_err(|e| format!("server: {e}"))?;
        }
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            moved = true;
            client.read_tls(&mut rd).unwrap();
            client
                .process_new_packets()
                .map_err(|e| format!("client: {e}"))?;
        }
        if !moved {
            return if client.is_handshaking() || server.is_handshaking() {
                Err("stalled".to_owned())
            } else {
                Ok(())
            };
        }
    }
    Err("too many rounds".to_owned())
}

/// Connects a client made from `client` to `server`, returning the server's view.
fn connect(server: &ServerTls, client: ClientConfig) -> Result<TlsInfo, String> {
    let (_, s) = pair(server, client)?;
    Ok(connection_info(&s, server))
}

/// A client made from `client` and `server`'s side, after their handshake.
fn pair(
    server: &ServerTls,
    client: ClientConfig,
) -> Result<(ClientConnection, ServerConnection), String> {
    let mut s = ServerConnection::new(server.config.clone()).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(Arc::new(client), name).unwrap();
    handshake(&mut c, &mut s)?;
    Ok((c, s))
}

/// A client and a server connection after their handshake, for tests of
/// what goes over them.
pub(crate) fn connected_pair() -> (ClientConnection, ServerConnection) {
    let files = ServerFiles::new();
    let server = ServerTls::new(&files.settings()).unwrap();
    pair(&server, files.client_config(None)).unwrap()
}

fn err(s: &TlsSettings) -> String {
    let e = ServerTls::new(s).expect_err("settings should be rejected");
    assert!(!e.contains('\n'), "more than one line: {e:?}");
    e
}

// ---- handshakes and TlsInfo -------------------------------------------------

#[test]
fn without_client_cert() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let server = ServerTls::new(&s).unwrap();
    let mut client = f.client_config(None);
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let info = connect(&server, client).unwrap();
    assert_eq!(
        info.server_cert.as_deref(),
        Some(pem::certificate(f.cert.der()).as_str())
    );
    assert!(
        info.server_cert
            .as_deref()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    assert!(
        info.server_cert
            .as_deref()
            .unwrap()
            .ends_with("\n-----END CERTIFICATE-----\n")
    );
    assert!(info.client_cert_chain.is_empty());
    assert_eq!(info.client_cert_name, None);
    assert_eq!(info.client_cert_error, None);
    assert_eq!(info.tls_version, 0x0304);
    assert!(
        [Some(0x1301), Some(0x1302), Some(0x1303)].contains(&info.cipher_suite),
        "{:x?}",
        info.cipher_suite
    );
    assert_eq!(info.alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[test]
fn required_valid_client_cert() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let server = ServerTls::new(&f.mtls(ClientAuth::Required, &client_ca)).unwrap();
    let dn = [
        (DnType::CountryName, "FR"),
        (DnType::OrganizationName, "Example, Inc."),
        (DnType::CommonName, "alice"),
    ];
    let id = Identity::new(&client_ca, &dn, 7);
    let info = connect(&server, f.client_config(Some(&id))).unwrap();
    assert_eq!(info.client_cert_chain, vec![pem::certificate(&id.chain[0])]);
    assert_eq!(
        info.client_cert_name.as_deref(),
        Some(r"CN=alice,O=Example\, Inc.,C=FR")
    );
    assert_eq!(info.client_cert_error, None);
}

#[test]
fn required_without_client_cert_fails() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let server = ServerTls::new(&f.mtls(ClientAuth::Required, &client_ca)).unwrap();
    assert!(connect(&server, f.client_config(None)).is_err());
}

#[test]
fn required_untrusted_client_cert_fails() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let server = ServerTls::new(&f.mtls(ClientAuth::Required, &client_ca)).unwrap();
    let id = Identity::new(&Ca::new("Other CA"), &[(DnType::CommonName, "mallory")], 2);
    let e = connect(&server, f.client_config(Some(&id))).unwrap_err();
    assert!(e.starts_with("server:"), "{e}");
}

#[test]
fn optional_without_client_cert() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let server = ServerTls::new(&f.mtls(ClientAuth::Optional, &client_ca)).unwrap();
    let info = connect(&server, f.client_config(None)).unwrap();
    assert!(info.client_cert_chain.is_empty());
    assert_eq!(info.client_cert_name, None);
    assert_eq!(info.client_cert_error, None);
}

#[test]
fn optional_valid_client_cert() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let server = ServerTls::new(&f.mtls(ClientAuth::Optional, &client_ca)).unwrap();
    let id = Identity::new(&client_ca, &[(DnType::CommonName, "alice")], 3);
    let info = connect(&server, f.client_config(Some(&id))).unwrap();
    assert_eq!(info.client_cert_name.as_deref(), Some("CN=alice"));
    assert_eq!(info.client_cert_error, None);
}

#[test]
fn optional_untrusted_client_cert_is_accepted_with_error() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let server = ServerTls::new(&f.mtls(ClientAuth::Optional, &client_ca)).unwrap();
    let id = Identity::new(&Ca::new("Other CA"), &[(DnType::CommonName, "mallory")], 2);
    let info = connect(&server, f.client_config(Some(&id))).unwrap();
    assert_eq!(info.client_cert_name.as_deref(), Some("CN=mallory"));
    assert_eq!(info.client_cert_chain.len(), 1);
    assert_eq!(
        info.client_cert_error.as_deref(),
        Some("certificate signed by an unknown issuer")
    );
}

#[test]
fn revoked_client_cert() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let crl = f.dir.write("crl.pem", client_ca.crl(&[66]));
    let revoked = Identity::new(&client_ca, &[(DnType::CommonName, "revoked")], 66);
    let good = Identity::new(&client_ca, &[(DnType::CommonName, "good")], 67);

    let mut required = f.mtls(ClientAuth::Required, &client_ca);
    required.crl = Some(crl.clone());
    let server = ServerTls::new(&required).unwrap();
    let e = connect(&server, f.client_config(Some(&revoked))).unwrap_err();
    assert!(
        e.contains("server:") && e.to_lowercase().contains("revoked"),
        "{e}"
    );
    assert!(connect(&server, f.client_config(Some(&good))).is_ok());

    let mut optional = f.mtls(ClientAuth::Optional, &client_ca);
    optional.crl = Some(crl);
    let server = ServerTls::new(&optional).unwrap();
    let info = connect(&server, f.client_config(Some(&revoked))).unwrap();
    assert_eq!(
        info.client_cert_error.as_deref(),
        Some("certificate revoked")
    );
    let info = connect(&server, f.client_config(Some(&good))).unwrap();
    assert_eq!(info.client_cert_error, None);
}

#[test]
fn crl_of_another_ca_leaves_status_unknown_but_accepted() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let mut s = f.mtls(ClientAuth::Required, &client_ca);
    s.crl = Some(f.dir.write("crl.pem", Ca::new("Unrelated CA").crl(&[5])));
    let server = ServerTls::new(&s).unwrap();
    let id = Identity::new(&client_ca, &[(DnType::CommonName, "alice")], 5);
    assert!(connect(&server, f.client_config(Some(&id))).is_ok());
}

/// A client limited to TLS 1.2 and `suites`.
fn tls12_client(f: &ServerFiles, suites: &[rustls::SupportedCipherSuite]) -> ClientConfig {
    let mut p = provider::default_provider();
    p.cipher_suites = suites.to_vec();
    let mut roots = RootCertStore::empty();
    roots.add(f.ca.cert.der().clone()).unwrap();
    ClientConfig::builder_with_provider(Arc::new(p))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[test]
fn tls12_client_is_served_by_default() {
    let f = ServerFiles::new();
    let server = ServerTls::new(&f.settings()).unwrap();
    let suite = provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
    let info = connect(&server, tls12_client(&f, &[suite])).unwrap();
    assert_eq!(info.tls_version, 0x0303);
    assert_eq!(info.cipher_suite, Some(0xc02b));
}

#[test]
fn protocol_min_tls13_refuses_tls12_client() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.protocol_min = TlsVersionMin::Tls13;
    let server = ServerTls::new(&s).unwrap();
    let suite = provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
    assert!(connect(&server, tls12_client(&f, &[suite])).is_err());
    assert_eq!(
        connect(&server, f.client_config(None)).unwrap().tls_version,
        0x0304
    );
}

#[test]
fn cipher_restriction_applies() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.ciphers = Some("TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES256-GCM-SHA384".to_owned());
    let server = ServerTls::new(&s).unwrap();
    let cs = provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
    assert!(connect(&server, tls12_client(&f, &[cs])).is_err());
    let cs = provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384;
    assert_eq!(
        connect(&server, tls12_client(&f, &[cs]))
            .unwrap()
            .cipher_suite,
        Some(0xc02c)
    );
    assert_eq!(
        connect(&server, f.client_config(None))
            .unwrap()
            .cipher_suite,
        Some(0x1302)
    );
}

#[test]
fn tls13_only_suites_mean_tls13_only() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.ciphers = Some("TLS13_CHACHA20_POLY1305_SHA256".to_owned());
    let server = ServerTls::new(&s).unwrap();
    let info = connect(&server, f.client_config(None)).unwrap();
    assert_eq!(
        (info.tls_version, info.cipher_suite),
        (0x0304, Some(0x1303))
    );
}

#[test]
fn session_resumption_keeps_the_client_chain() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let server = ServerTls::new(&f.mtls(ClientAuth::Optional, &client_ca)).unwrap();
    let id = Identity::new(&client_ca, &[(DnType::CommonName, "alice")], 3);
    let client = f.client_config(Some(&id));
    let first = connect(&server, client.clone()).unwrap();
    let second = connect(&server, client).unwrap();
    assert_eq!(first, second);
}

// ---- key formats ------------------------------------------------------------

fn serves_with_key(pkcs8_pem: &str, key_file_text: &str, password: Option<&str>) {
    let f = ServerFiles::with_key(KeyPair::from_pem(pkcs8_pem).unwrap(), Some(key_file_text));
    let mut s = f.settings();
    s.keyfile_password = password.map(str::to_owned);
    let server = ServerTls::new(&s).unwrap();
    connect(&server, f.client_config(None)).unwrap();
}

#[test]
fn key_rsa_pkcs8() {
    serves_with_key(test_keys::RSA_PKCS8, test_keys::RSA_PKCS8, None);
}

#[test]
fn key_rsa_pkcs1() {
    serves_with_key(test_keys::RSA_PKCS8, test_keys::RSA_PKCS1, None);
}

#[test]
fn key_ec_pkcs8() {
    serves_with_key(test_keys::EC_PKCS8, test_keys::EC_PKCS8, None);
}

#[test]
fn key_ec_sec1() {
    serves_with_key(test_keys::EC_PKCS8, test_keys::EC_SEC1, None);
}

#[test]
fn key_encrypted_pkcs8_with_password() {
    serves_with_key(
        test_keys::RSA_PKCS8,
        test_keys::RSA_ENCRYPTED,
        Some("correct horse"),
    );
}

#[test]
fn password_is_ignored_for_a_plain_key() {
    serves_with_key(test_keys::EC_PKCS8, test_keys::EC_SEC1, Some("unused"));
}

#[test]
fn key_encrypted_pkcs8_made_by_pkcs8_crate() {
    let key = KeyPair::generate().unwrap();
    let der = key.serialize_der();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(1000, &[7; 16], &[9; 16]).unwrap();
    let encrypted = info.encrypt_with_params(params, "pw").unwrap();
    let text = pkcs8::der::pem::encode_string(
        "ENCRYPTED PRIVATE KEY",
        pkcs8::der::pem::LineEnding::LF,
        encrypted.as_bytes(),
    )
    .unwrap();
    let f = ServerFiles::with_key(key, Some(&text));
    let mut s = f.settings();
    s.keyfile_password = Some("pw".to_owned());
    ServerTls::new(&s).unwrap();
    s.keyfile_password = Some("wrong".to_owned());
    assert_eq!(
        err(&s),
        format!(
            "--ssl-keyfile-password is wrong for {}",
            f.keyfile.display()
        )
    );
}

#[test]
fn key_and_certificate_in_one_file() {
    let f = ServerFiles::new();
    let both = format!(
        "{}{}",
        std::fs::read_to_string(&f.certfile).unwrap(),
        std::fs::read_to_string(&f.keyfile).unwrap()
    );
    let path = f.dir.write("both.pem", both);
    ServerTls::new(&TlsSettings::new(&path, &path)).unwrap();
}

// ---- one-line errors --------------------------------------------------------

#[test]
fn error_unreadable_certfile() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.certfile = PathBuf::from("/nonexistent/x/y.pem");
    assert_eq!(
        err(&s),
        "cannot read --ssl-certfile /nonexistent/x/y.pem: No such file or directory"
    );
}

#[test]
fn error_unreadable_keyfile() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.keyfile = PathBuf::from("/nonexistent/k.pem");
    assert_eq!(
        err(&s),
        "cannot read --ssl-keyfile /nonexistent/k.pem: No such file or directory"
    );
}

#[test]
fn error_certfile_without_certificate() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.certfile = f.keyfile.clone();
    assert_eq!(
        err(&s),
        format!(
            "--ssl-certfile {}: no certificate found (expected PEM CERTIFICATE blocks)",
            f.keyfile.display()
        )
    );
}

#[test]
fn error_keyfile_without_key() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.keyfile = f.certfile.clone();
    assert_eq!(
        err(&s),
        format!(
            "--ssl-keyfile {}: no private key found (expected PKCS#8, PKCS#1 RSA or SEC1 EC PEM)",
            f.certfile.display()
        )
    );
}

#[test]
fn error_encrypted_key_without_password() {
    let f = ServerFiles::with_key(
        KeyPair::from_pem(test_keys::RSA_PKCS8).unwrap(),
        Some(test_keys::RSA_ENCRYPTED),
    );
    assert_eq!(
        err(&f.settings()),
        format!(
            "--ssl-keyfile {} is encrypted: give --ssl-keyfile-password",
            f.keyfile.display()
        )
    );
}

#[test]
fn error_wrong_password() {
    let f = ServerFiles::with_key(
        KeyPair::from_pem(test_keys::RSA_PKCS8).unwrap(),
        Some(test_keys::RSA_ENCRYPTED),
    );
    let mut s = f.settings();
    // About one wrong password in 256 leaves valid CBC padding and decrypts
    // to bytes that are not DER: "wrong-21" and "wrong-304" do so for this key.
    for wrong in [
        "correct horse ",
        "",
        "battery staple",
        "x",
        "wrong-21",
        "wrong-304",
    ] {
        s.keyfile_password = Some(wrong.to_owned());
        assert_eq!(
            err(&s),
            format!(
                "--ssl-keyfile-password is wrong for {}",
                f.keyfile.display()
            )
        );
    }
}

#[test]
fn error_key_does_not_match_certificate() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.keyfile = f
        .dir
        .write("other.pem", KeyPair::generate().unwrap().serialize_pem());
    assert_eq!(
        err(&s),
        format!(
            "the private key in {} does not match the certificate in {}",
            s.keyfile.display(),
            f.certfile.display()
        )
    );
    // An RSA key with an EC certificate.
    s.keyfile = f.dir.write("rsa.pem", test_keys::RSA_PKCS1);
    assert!(err(&s).starts_with("the private key in "));
}

#[test]
fn error_client_auth_without_ca() {
    let f = ServerFiles::new();
    for (mode, word) in [
        (ClientAuth::Optional, "optional"),
        (ClientAuth::Required, "required"),
    ] {
        let mut s = f.settings();
        s.client_auth = mode;
        assert_eq!(
            err(&s),
            format!("--ssl-ca-certs is needed with --ssl-cert-reqs {word}")
        );
    }
}

#[test]
fn error_crl_unreadable_or_not_a_crl() {
    let f = ServerFiles::new();
    let mut s = f.mtls(ClientAuth::Required, &Ca::new("Client CA"));
    s.crl = Some(PathBuf::from("/nonexistent/crl.pem"));
    assert_eq!(
        err(&s),
        "cannot read --ssl-crl /nonexistent/crl.pem: No such file or directory"
    );
    s.crl = Some(f.certfile.clone());
    assert_eq!(
        err(&s),
        format!("--ssl-crl {}: not a CRL", f.certfile.display())
    );
    let junk = f.dir.write("junk.der", b"\x30\x03\x02\x01\x01");
    s.crl = Some(junk.clone());
    assert_eq!(err(&s), format!("--ssl-crl {}: not a CRL", junk.display()));
}

#[test]
fn der_crl_is_accepted() {
    let f = ServerFiles::new();
    let client_ca = Ca::new("Client CA");
    let pem_text = client_ca.crl(&[66]);
    let (_, der) = pkcs8::der::pem::decode_vec(pem_text.as_bytes()).unwrap();
    let mut s = f.mtls(ClientAuth::Required, &client_ca);
    s.crl = Some(f.dir.write("crl.der", der));
    let server = ServerTls::new(&s).unwrap();
    let revoked = Identity::new(&client_ca, &[(DnType::CommonName, "revoked")], 66);
    assert!(connect(&server, f.client_config(Some(&revoked))).is_err());
}

#[test]
fn error_crl_without_client_auth() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.crl = Some(f.dir.write("crl.pem", Ca::new("Client CA").crl(&[1])));
    assert!(err(&s).ends_with("needs --ssl-cert-reqs optional or required"));
}

#[test]
fn error_unknown_cipher_lists_valid_ones() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.ciphers = Some("TLS13_AES_128_GCM_SHA256,RC4-MD5".to_owned());
    let e = err(&s);
    assert!(
        e.starts_with("--ssl-ciphers: unknown cipher suite \"RC4-MD5\"; valid: "),
        "{e}"
    );
    assert!(
        e.contains("TLS13_AES_256_GCM_SHA384")
            && e.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
}

#[test]
fn error_tls13_min_with_only_tls12_ciphers() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.protocol_min = TlsVersionMin::Tls13;
    s.ciphers = Some("ECDHE-ECDSA-AES128-GCM-SHA256".to_owned());
    assert!(err(&s).starts_with("--ssl-ciphers: no cipher suite for TLS 1.3"));
}

// ---- parsing ----------------------------------------------------------------

#[test]
fn cipher_names_in_every_spelling() {
    let all = provider::default_provider().cipher_suites;
    let names = |list: &str| -> Vec<String> {
        parse_cipher_suites(list, &all)
            .unwrap()
            .iter()
            .map(ciphers::suite_name)
            .collect()
    };
    assert_eq!(
        names("TLS13_AES_256_GCM_SHA384:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        [
            "TLS13_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        ]
    );
    assert_eq!(
        names(
            " tls_aes_128_gcm_sha256 , ECDHE-RSA-CHACHA20-POLY1305,,TLS_CHACHA20_POLY1305_SHA256 "
        ),
        [
            "TLS13_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256"
        ]
    );
    assert_eq!(
        names("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384").len(),
        1
    );
    assert!(parse_cipher_suites(" : , ", &all).is_err());
    assert!(parse_cipher_suites("TLS_AES_128_CCM_SHA256", &all).is_err());
}

// ---- RFC 4514 ---------------------------------------------------------------

/// DER of a tag-length-value (short or long form length).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// DER of an OID from its dotted form.
fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut bytes = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            bytes.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        bytes.reverse();
        body.extend(bytes);
    }
    tlv(0x06, &body)
}

/// A Name from RDNs (in encoding order), each a list of (OID, value TLV).
fn name(rdns: &[&[(&str, Vec<u8>)]]) -> Vec<u8> {
    let mut seq = Vec::new();
    for rdn in rdns {
        let mut set = Vec::new();
        for (ty, value) in *rdn {
            let mut atv = oid(ty);
            atv.extend_from_slice(value);
            set.extend(tlv(0x30, &atv));
        }
        seq.extend(tlv(0x31, &set));
    }
    tlv(0x30, &seq)
}

fn utf8(s: &str) -> Vec<u8> {
    tlv(0x0c, s.as_bytes())
}

fn printable(s: &str) -> Vec<u8> {
    tlv(0x13, s.as_bytes())
}

fn format_name(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer as _;
    let (_, parsed) = x509_parser::x509::X509Name::from_der(der).unwrap();
    dn::rfc4514(&parsed)
}

#[test]
fn rfc4514_reverses_rdns_and_uses_short_names() {
    let der = name(&[
        &[("0.9.2342.19200300.100.1.25", tlv(0x16, b"com"))],
        &[("0.9.2342.19200300.100.1.25", tlv(0x16, b"example"))],
        &[("2.5.4.6", printable("GB"))],
        &[("2.5.4.8", utf8("Scotland"))],
        &[("2.5.4.7", utf8("Edinburgh"))],
        &[("2.5.4.9", utf8("1 High St"))],
        &[("2.5.4.10", utf8("Acme"))],
        &[("2.5.4.11", utf8("Ops"))],
        &[("0.9.2342.19200300.100.1.1", utf8("jdoe"))],
        &[("2.5.4.3", utf8("John Doe"))],
    ]);
    assert_eq!(
        format_name(&der),
        "CN=John Doe,UID=jdoe,OU=Ops,O=Acme,STREET=1 High St,L=Edinburgh,ST=Scotland,C=GB,DC=example,DC=com"
    );
}

#[test]
fn rfc4514_multi_valued_rdn() {
    let der = name(&[
        &[("2.5.4.6", printable("US"))],
        &[("2.5.4.11", utf8("Sales")), ("2.5.4.3", utf8("J. Smith"))],
    ]);
    assert_eq!(format_name(&der), "OU=Sales+CN=J. Smith,C=US");
}

#[test]
fn rfc4514_escaping() {
    let der = name(&[
        &[("2.5.4.10", utf8("Sue, Grabbit and Runn"))],
        &[("2.5.4.3", utf8(" #lead;<a>+\"q\"\\ "))],
        &[("2.5.4.11", utf8("#hash"))],
    ]);
    assert_eq!(
        format_name(&der),
        r#"OU=\#hash,CN=\ #lead\;\<a\>\+\"q\"\\\ ,O=Sue\, Grabbit and Runn"#
    );
}

#[test]
fn rfc4514_dotted_oid_and_non_string_values_in_hex() {
    let der = name(&[
        &[("1.2.840.113549.1.9.1", tlv(0x16, b"a@b.c"))],
        &[("1.3.6.1.4.1.99999.1", utf8("x"))],
        &[("2.5.4.3", tlv(0x04, b"\x01\x02"))],
    ]);
    assert_eq!(
        format_name(&der),
        "CN=#04020102,1.3.6.1.4.1.99999.1=#0c0178,1.2.840.113549.1.9.1=#16056140622e63"
    );
}

#[test]
fn rfc4514_other_string_types() {
    let bmp: Vec<u8> = "Zoë".encode_utf16().flat_map(u16::to_be_bytes).collect();
    let der = name(&[
        &[("2.5.4.3", tlv(0x1e, &bmp))],
        &[("2.5.4.10", tlv(0x14, b"caf\xe9"))],
    ]);
    assert_eq!(format_name(&der), "O=café,CN=Zoë");
}

#[test]
fn rfc4514_of_empty_name() {
    assert_eq!(format_name(&name(&[])), "");
}

#[test]
fn pem_of_certificate_has_64_column_lines() {
    let f = ServerFiles::new();
    let text = pem::certificate(f.cert.der());
    assert!(text.lines().all(|l| l.len() <= 64));
    let back: Vec<CertificateDer<'_>> = {
        use rustls::pki_types::pem::PemObject as _;
        CertificateDer::pem_slice_iter(text.as_bytes())
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(back, vec![f.cert.der().clone()]);
    // rcgen writes PEM the same way.
    assert_eq!(
        text.replace("\r\n", "\n"),
        f.cert.pem().replace("\r\n", "\n")
    );
}

#[test]
fn alpn_is_configured_and_missing_files_fail() {
    let f = ServerFiles::new();
    let mut s = f.settings();
    s.alpn = vec![b"h2".to_vec()];
    let config = ServerTls::new(&s).unwrap().config;
    assert_eq!(config.alpn_protocols, s.alpn);
    assert!(
        ServerTls::new(&TlsSettings::new(
            "/nonexistent/c.pem",
            "/nonexistent/k.pem"
        ))
        .is_err()
    );
}
