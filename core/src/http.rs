//! The shared HTTP grammar: tokens, lists, optional whitespace, hosts,
//! field values and percent-decoding.
//!
//! These rules are written once, here. The HTTP/1.1 parser, the WebSocket
//! handshake, the ASGI scope and proxy headers in core, and the frontends
//! (checking what an application sends, configuration, static files) all
//! call these functions, so a byte is a `tchar` or not in the same way
//! everywhere.

use std::borrow::Cow;

use bytes::Bytes;

/// A table of the bytes for which `pred` holds, made at compile time: one
/// load a byte where a check runs on every request.
macro_rules! byte_table {
    (|$c:ident| $pred:expr) => {{
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let $c = b as u8;
            t[b] = $pred;
            b += 1;
        }
        t
    }};
}

/// `tchar` as a table (RFC 9110 §5.6.2): "!" / "#" / "$" / "%" / "&" / "'"
/// / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
/// A lookup keeps the check to one load on the header-parsing path.
const TCHAR: [bool; 256] = byte_table!(|c| c.is_ascii_alphanumeric()
    || matches!(
        c,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ));

/// Whether `b` is a `tchar` (RFC 9110 §5.6.2).
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// Whether `s` is a `token`: one or more `tchar` (RFC 9110 §5.6.2). Field
/// names, methods and list elements such as `chunked` are tokens.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Removes leading and trailing optional whitespace, SP and HTAB (RFC 9110
/// §5.6.3).
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The elements of a comma-separated list field (RFC 9110 §5.6.1), OWS
/// trimmed and empty elements skipped, as a recipient must accept them.
/// Commas inside quoted strings are not special-cased: callers whose
/// elements may be quoted strings parse those themselves.
pub fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Whether a comma-separated list field names `token`, ignoring case and
/// any parameters after `;` (as in `TE: trailers;q=1`).
pub fn list_has_token(value: &[u8], token: &[u8]) -> bool {
    list(value).any(|e| {
        let name = e.split(|&b| b == b';').next().unwrap_or_default();
        trim_ows(name).eq_ignore_ascii_case(token)
    })
}

/// Whether `b` may appear in a field value: field-vchar, SP or HTAB (RFC
/// 9110 §5.5). obs-text (0x80 and up) is allowed; CR, LF, NUL and other
/// controls are not.
#[inline]
pub fn is_field_value_byte(b: u8) -> bool {
    // SP to `~` and obs-text, less DEL; and HTAB. Without short-circuits,
    // so that a loop over a value can test many bytes at once.
    ((b >= b' ') & (b != 0x7f)) | (b == b'\t')
}

/// Whether every byte of `v` may appear in a field value (RFC 9110 §5.5).
/// What an application or a configuration asks to send is checked with
/// this, so it cannot split a header or smuggle a second message.
pub fn is_field_value(v: &[u8]) -> bool {
    // No early exit: values are short and nearly always valid, and a loop
    // without a branch per byte is vectorised (every response header's
    // value is checked).
    v.iter().fold(true, |ok, &b| ok & is_field_value_byte(b))
}

/// Why a response field an application gave cannot be sent, if it
/// cannot: its name must be a token and its value a field value (RFC 9110
/// §5.1, §5.5), so that a header can neither split the head nor smuggle a
/// message.
pub fn field_error(name: &[u8], value: &[u8]) -> Option<String> {
    let shown = || String::from_utf8_lossy(name).into_owned();
    if !is_token(name) {
        return Some(format!("invalid header name {:?}", shown()));
    }
    if !is_field_value(value) {
        return Some(format!(
            "invalid header value for {:?}: control characters are not allowed",
            shown()
        ));
    }
    None
}

/// Whether `v` has only the characters of `uri-host [ ":" port ]` (RFC 9110
/// §7.2, RFC 3986 §3.2.2): a reg-name (unreserved, pct-encoded and
/// sub-delims), an IPv4 address, or an IP-literal in brackets. An empty
/// value is allowed: RFC 9112 §3.2 has clients send an empty `Host` when
/// the target has no authority.
pub fn is_valid_host(v: &[u8]) -> bool {
    v.iter().all(|&b| HOST_CHAR[usize::from(b)])
}

/// The bytes [`is_valid_host`] allows, as a table: every request's `Host`
/// is checked.
const HOST_CHAR: [bool; 256] = byte_table!(|c| c.is_ascii_alphanumeric()
    || matches!(
        c,
        // unreserved
        b'-' | b'.' | b'_' | b'~'
        // pct-encoded
        | b'%'
        // sub-delims
        | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        // port separator, IP-literal brackets
        | b':' | b'[' | b']'
    ));

/// The value of one hex digit.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (RFC 3986 §2.1). `strict`: a `%` not followed by
/// two hex digits makes the whole input invalid (None); otherwise it stays
/// as it is, as Python's `urllib.parse.unquote` leaves it.
fn decode_escapes(raw: &[u8], strict: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let pair = raw
                .get(i + 1)
                .copied()
                .and_then(hex_digit)
                .zip(raw.get(i + 2).copied().and_then(hex_digit));
            match pair {
                Some((h, l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                None if strict => return None,
                None => {}
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    Some(out)
}

/// How long a client may remember the HTTP/3 alternative (`ma`, seconds).
pub const ALT_SVC_MAX_AGE: u32 = 86_400;

/// The `Alt-Svc` value that points a client at HTTP/3 on `port` of the same
/// host (RFC 7838 §3, RFC 9114 §3.1.1): `h3=":443"; ma=86400`.
pub fn alt_svc_h3(port: u16) -> Bytes {
    Bytes::from(format!("h3=\":{port}\"; ma={ALT_SVC_MAX_AGE}"))
}

/// The decimal digits of `n`, written into `buf`: a `content-length`
/// value without the formatting machinery (one is made per response).
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = n;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// `n` in decimal, as a field value.
pub fn decimal_value(n: u64) -> Bytes {
    Bytes::copy_from_slice(decimal(n, &mut [0; 20]))
}

/// The fields of a plain-text body the server writes itself (an error, a
/// denial): `content-type: text/plain; charset=utf-8` and its
/// `content-length`.
pub fn plain_text_fields(body: &[u8]) -> Vec<(Bytes, Bytes)> {
    vec![
        (
            Bytes::from_static(b"content-type"),
            Bytes::from_static(b"text/plain; charset=utf-8"),
        ),
        (
            Bytes::from_static(b"content-length"),
            decimal_value(body.len() as u64),
        ),
    ]
}

/// Percent-decodes `raw`, keeping a malformed escape as it is (the ASGI
/// `path`, like `urllib.parse.unquote`). Borrows when there is no `%`.
pub fn percent_decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'%', raw).is_none() {
        return Cow::Borrowed(raw);
    }
    // Lenient decoding cannot fail.
    Cow::Owned(decode_escapes(raw, false).unwrap_or_default())
}

/// Percent-decodes `raw`; None when an escape is malformed (for paths
/// mapped onto files, where a guess could name another file).
pub fn percent_decode_strict(raw: &[u8]) -> Option<Vec<u8>> {
    decode_escapes(raw, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tchar_is_exactly_the_rfc_set() {
        let rfc: Vec<u8> = (0..=255u8)
            .filter(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
            .collect();
        let ours: Vec<u8> = (0..=255u8).filter(|&b| is_tchar(b)).collect();
        assert_eq!(ours, rfc);
        for b in [
            b' ', b'"', b'(', b')', b',', b'/', b':', b';', b'<', b'=', b'@', b'[', 0x7f, 0x80,
        ] {
            assert!(!is_tchar(b), "{b:#x}");
        }
    }

    #[test]
    fn tokens() {
        assert!(is_token(b"x-custom_header.1"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(!is_token("é".as_bytes()));
    }

    #[test]
    fn ows_and_lists() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
        let items: Vec<&[u8]> = list(b" gzip ,, deflate\t,br ,").collect();
        assert_eq!(items, [&b"gzip"[..], b"deflate", b"br"]);
        assert!(list_has_token(b"deflate, Trailers;q=0.5", b"trailers"));
        assert!(!list_has_token(b"trailersx, gzip", b"trailers"));
        assert!(!list_has_token(b"", b"trailers"));
    }

    #[test]
    fn field_values() {
        assert!(is_field_value(b"text/html; charset=utf-8\t\x80\xff"));
        assert!(is_field_value(b""));
        let controls = [b'\r', b'\n', 0, 0x7f, 0x01, 0x1f];
        assert!(controls.iter().all(|&c| !is_field_value(&[b'a', c, b'b'])));
    }

    #[test]
    fn field_value_bytes_are_htab_sp_vchar_and_obs_text() {
        for b in 0..=255u8 {
            let rfc = b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80;
            assert_eq!(is_field_value_byte(b), rfc, "{b:#x}");
            // Long values too, which are tested many bytes at a time.
            for at in [0, 17, 63] {
                let mut v = vec![b'a'; 64];
                v[at] = b;
                assert_eq!(is_field_value(&v), rfc, "{b:#x} at {at}");
            }
        }
    }

    #[test]
    fn hosts() {
        let verdicts = b"example.com:8080 127.0.0.1:80 [::1]:443 xn--n3h.example a%20b !$&'()*+,;=";
        assert!(verdicts.split(|&b| b == b' ').all(is_valid_host));
        assert!(is_valid_host(b""), "empty when the target has no authority");
        let outside = br#" /@\?#"<>{}`^|"#;
        assert!(outside.iter().all(|&c| !is_valid_host(&[b'h', c])));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(&*percent_decode(b"/a%20b/%E2%82%AC"), "/a b/€".as_bytes());
        assert!(matches!(percent_decode(b"/plain"), Cow::Borrowed(_)));
        // Malformed escapes stay as they are...
        assert_eq!(&*percent_decode(b"/100%/%zz/%4"), b"/100%/%zz/%4");
        // ...or invalidate the whole input.
        assert_eq!(
            percent_decode_strict(b"a%2Fb%2f").as_deref(),
            Some(&b"a/b/"[..])
        );
        assert_eq!(percent_decode_strict(b"100%"), None);
        assert_eq!(percent_decode_strict(b"%4"), None);
        assert_eq!(percent_decode_strict(b"%g0"), None);
    }

    #[test]
    fn alt_svc_names_h3_on_the_port() {
        assert_eq!(&alt_svc_h3(8443)[..], b"h3=\":8443\"; ma=86400");
    }
}
