//! Parsing `--ssl-ciphers` into the crypto provider's cipher suites.

use rustls::SupportedCipherSuite;

/// OpenSSL's names for the TLS 1.2 suites the provider has.
///
/// OpenSSL names TLS 1.3 suites by their IANA names, handled separately.
const OPENSSL_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The rustls name of a suite, e.g. `TLS13_AES_128_GCM_SHA256` or
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
pub(super) fn suite_name(suite: &SupportedCipherSuite) -> String {
    format!("{:?}", suite.suite())
}

/// Picks the suites named in `list` out of `available`, in the order listed.
///
/// Names are separated by `,` or `:` and matched case-insensitively. Each may
/// be the rustls name (`TLS13_AES_256_GCM_SHA384`), the IANA name
/// (`TLS_AES_256_GCM_SHA384`) or the OpenSSL name
/// (`ECDHE-RSA-AES128-GCM-SHA256`). An unknown name is an error that lists the
/// valid ones.
pub(super) fn parse_cipher_suites(
    list: &str,
    available: &[SupportedCipherSuite],
) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    for name in list
        .split([',', ':'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let wanted = canonical(name);
        let Some(suite) = available.iter().find(|s| suite_name(s) == wanted) else {
            let valid: Vec<String> = available.iter().map(suite_name).collect();
            return Err(format!(
                "--ssl-ciphers: unknown cipher suite {name:?}; valid: {}",
                valid.join(", ")
            ));
        };
        if !chosen.iter().any(|c| c.suite() == suite.suite()) {
            chosen.push(*suite);
        }
    }
    if chosen.is_empty() {
        return Err("--ssl-ciphers: no cipher suite named".to_owned());
    }
    Ok(chosen)
}

/// Maps any accepted spelling of a suite name to the rustls one.
fn canonical(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if let Some(&(_, rustls_name)) = OPENSSL_NAMES.iter().find(|(openssl, _)| *openssl == upper) {
        return rustls_name.to_owned();
    }
    // IANA TLS 1.3 names have no key exchange in them: TLS_AES_128_GCM_SHA256.
    match upper.strip_prefix("TLS_") {
        Some(rest) if !rest.contains("_WITH_") => format!("TLS13_{rest}"),
        _ => upper,
    }
}
