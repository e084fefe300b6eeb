//! Reading the server's private key, decrypting an encrypted PKCS#8 key.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::files;

const FLAG: &str = "--ssl-keyfile";

/// PEM label of an encrypted PKCS#8 key (RFC 5958 section 3).
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Reads the private key from `path`: PKCS#8 (`PRIVATE KEY`), PKCS#1
/// (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`), encrypted PKCS#8 with
/// `password`, or a DER key when the file is not PEM.
///
/// A password given for an unencrypted key is ignored, as uvicorn does.
pub(super) fn private_key(
    path: &Path,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, String> {
    let data = files::read(FLAG, path)?;
    let shown = path.display();
    if files::is_pem(&data) {
        if let Some(block) = pem_block(&data, ENCRYPTED_LABEL) {
            let Some(password) = password else {
                return Err(format!(
                    "{FLAG} {shown} is encrypted: give --ssl-keyfile-password"
                ));
            };
            return decrypt(block, password, path);
        }
        // OpenSSL's legacy encryption puts `Proc-Type: 4,ENCRYPTED` headers in
        // a PKCS#1 or SEC1 block; pkcs5 has no decoder for it.
        if files::memfind(&data, b"Proc-Type: 4,ENCRYPTED").is_some() {
            return Err(format!(
                "{FLAG} {shown} uses OpenSSL's legacy PEM encryption: convert it with \
                 'openssl pkcs8 -topk8' to an ENCRYPTED PRIVATE KEY"
            ));
        }
        return match PrivateKeyDer::from_pem_slice(&data) {
            Ok(key) => Ok(key),
            Err(pem::Error::NoItemsFound) => Err(no_key(path)),
            Err(e) => Err(format!("{FLAG} {shown}: bad PEM: {e}")),
        };
    }
    PrivateKeyDer::try_from(data).map_err(|_| no_key(path))
}

fn no_key(path: &Path) -> String {
    format!(
        "{FLAG} {}: no private key found (expected PKCS#8, PKCS#1 RSA or SEC1 EC PEM)",
        path.display()
    )
}

/// The text of the first PEM block labelled `label`, boundaries included.
fn pem_block<'a>(data: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = files::memfind(data, begin.as_bytes())?;
    let stop = start + files::memfind(&data[start..], end.as_bytes())? + end.len();
    Some(&data[start..stop])
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` block (PBES2: PBKDF2 or scrypt with AES-CBC).
fn decrypt(block: &[u8], password: &str, path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let shown = path.display();
    let bad = |what: String| format!("{FLAG} {shown}: {what}");
    let (_, der) = pkcs8::der::pem::decode_vec(block).map_err(|e| bad(format!("bad PEM: {e}")))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
        .map_err(|e| bad(format!("not an encrypted PKCS#8 key ({e})")))?;
    let wrong = || format!("--ssl-keyfile-password is wrong for {shown}");
    let plain = match info.decrypt(password) {
        Ok(doc) => doc,
        // A wrong key almost always shows as bad CBC padding, which pkcs5
        // 0.7 reports as `EncryptFailed` (sic).
        Err(pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
        )) => return Err(wrong()),
        // A wrong key that happens to leave valid padding (about one in 256)
        // yields bytes that are not DER.
        Err(pkcs8::Error::Asn1(_)) => return Err(wrong()),
        Err(e) => return Err(bad(format!("cannot decrypt ({e})"))),
    };
    if pkcs8::PrivateKeyInfo::try_from(plain.as_bytes()).is_err() {
        return Err(wrong());
    }
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}
