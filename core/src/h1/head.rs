//! Request head framing and parsing: finding the end of the head in the
//! receive buffer, then request-line and field parsing with `httparse` plus
//! the semantic checks of RFC 9112 that `httparse` leaves to us.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};

use super::{BodyKind, Config, RequestHead, Version};
use crate::PeerError;
use crate::http::{is_token, is_valid_host, list, trim_ows};

/// Header slots kept on the stack for `httparse`; a configuration allowing
/// more fields than this parses into a heap buffer instead. 128 slots of two
/// slices each is 4 KiB of stack, and covers the default limit (100).
const STACK_HEADERS: usize = 128;

/// Incremental search for the end of a request head.
///
/// Every byte of the head is looked at once, whatever the number of reads it
/// arrives in: `scanned` remembers where the previous attempt stopped.
#[derive(Debug, Default, Clone)]
pub(super) struct HeadScan {
    /// Bytes of the buffer already checked.
    scanned: usize,
    /// Index of the LF ending the request-line, once seen.
    line_end: Option<usize>,
}

impl HeadScan {
    /// Forgets progress; call whenever the front of the buffer changes.
    pub(super) fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Looks for the end of the head at the front of `buf` (leading empty lines
/// already removed). Returns the head length, including its final empty line,
/// or `None` when more bytes are needed.
///
/// Limits are checked before the head is complete, so a peer can never make
/// the buffer grow past them.
pub(super) fn scan(
    buf: &[u8],
    st: &mut HeadScan,
    config: &Config,
) -> Result<Option<usize>, PeerError> {
    let start = st.scanned.min(buf.len());
    for off in memchr::memchr_iter(b'\n', &buf[start..]) {
        let i = start + off;
        // RFC 9112 §2.2: a bare LF is a line terminator some parsers accept
        // and some don't; a message two parsers could read two ways is
        // rejected.
        if i == 0 || buf[i - 1] != b'\r' {
            return Err(PeerError::BadRequest("bare LF in request head"));
        }
        match st.line_end {
            None => {
                st.line_end = Some(i);
                // The request-line without its CRLF (RFC 9112 §3).
                if i - 1 > config.max_request_line {
                    return Err(PeerError::UriTooLong);
                }
            }
            Some(_) => {
                // An empty line (CRLF right after a CRLF) ends the head
                // (RFC 9112 §2.1). Every LF is preceded by CR, so `buf[i - 2]`
                // being LF means the bytes are "\r\n\r\n".
                if buf[i - 2] == b'\n' {
                    let len = i + 1;
                    if len > config.max_head_size {
                        return Err(PeerError::HeadersTooLarge);
                    }
                    st.reset();
                    return Ok(Some(len));
                }
            }
        }
    }
    st.scanned = buf.len();
    if st.line_end.is_none() {
        // Even if the next byte ends the line, it is at least this long.
        let at_least = buf.len() - usize::from(buf.last() == Some(&b'\r'));
        if at_least > config.max_request_line {
            return Err(PeerError::UriTooLong);
        }
    }
    if buf.len() > config.max_head_size {
        return Err(PeerError::HeadersTooLarge);
    }
    Ok(None)
}

/// Positions of one field inside the head buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct FieldPos {
    name: Span,
    value: Span,
}

/// Parses a complete head (as found by [`scan`]) into a [`RequestHead`].
///
/// `scratch` is reused between requests so the positions of the fields cost
/// no allocation. The head's bytes are kept: names are lowercased in place
/// and every part of the [`RequestHead`] is a slice of the one frozen buffer.
pub(super) fn parse(
    mut buf: BytesMut,
    config: &Config,
    scratch: &mut Vec<FieldPos>,
) -> Result<RequestHead, PeerError> {
    scratch.clear();
    let (method, target, minor) = locate(&buf, config, scratch)?;
    for f in scratch.iter() {
        // Field names are case-insensitive (RFC 9110 §5.1); we hand them out
        // lowercase.
        buf[f.name.0..f.name.1].make_ascii_lowercase();
    }
    let buf = buf.freeze();
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let mut headers = Vec::with_capacity(scratch.len());
    for f in scratch.iter() {
        headers.push((
            buf.slice(f.name.0..f.name.1),
            buf.slice(f.value.0..f.value.1),
        ));
    }
    let method = buf.slice(method.0..method.1);
    let target = buf.slice(target.0..target.1);
    semantics(method, target, version, headers, config)
}

/// A `start..end` range in the head buffer.
type Span = (usize, usize);

/// Runs `httparse` over `buf` and records where everything is: the method,
/// the target and the minor version; fields go to `scratch`.
fn locate(
    buf: &[u8],
    config: &Config,
    scratch: &mut Vec<FieldPos>,
) -> Result<(Span, Span, u8), PeerError> {
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if config.max_headers <= STACK_HEADERS {
        &mut stack[..config.max_headers]
    } else {
        heap.resize_with(config.max_headers, MaybeUninit::uninit);
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    // The default `ParserConfig` is the strict one: no obs-fold, no spaces
    // before the colon, single spaces in the request-line (RFC 9112 §3,
    // §5.1, §5.2).
    let status = httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, slots)
        .map_err(|e| map_error(e, buf))?;
    match status {
        httparse::Status::Complete(n) if n == buf.len() => {}
        _ => return Err(PeerError::BadRequest("malformed request head")),
    }
    let base = buf.as_ptr() as usize;
    let pos = |s: &[u8]| -> Result<Span, PeerError> {
        if s.is_empty() {
            return Ok((0, 0));
        }
        // Every slice httparse returns points into `buf`; check anyway
        // rather than trust it with an index.
        let start = (s.as_ptr() as usize)
            .checked_sub(base)
            .filter(|st| st + s.len() <= buf.len())
            .ok_or(PeerError::BadRequest("malformed request head"))?;
        Ok((start, start + s.len()))
    };
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(PeerError::BadRequest("malformed request-line"));
    };
    for h in req.headers.iter() {
        scratch.push(FieldPos {
            name: pos(h.name.as_bytes())?,
            value: pos(h.value)?,
        });
    }
    Ok((pos(method.as_bytes())?, pos(path.as_bytes())?, minor))
}

/// Maps an `httparse` error to the peer error we answer with.
fn map_error(e: httparse::Error, buf: &[u8]) -> PeerError {
    match e {
        httparse::Error::TooManyHeaders => PeerError::HeadersTooLarge,
        httparse::Error::Version => {
            // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT. A
            // well-formed version we don't speak gets 505; anything else in
            // that place is a malformed request-line.
            let line = match memchr::memchr(b'\r', buf) {
                Some(i) => &buf[..i],
                None => buf,
            };
            let version = match memchr::memrchr(b' ', line) {
                Some(i) => &line[i + 1..],
                None => line,
            };
            match version {
                [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                    if major.is_ascii_digit() && minor.is_ascii_digit() =>
                {
                    PeerError::VersionNotSupported
                }
                _ => PeerError::BadRequest("invalid http version"),
            }
        }
        httparse::Error::Token => PeerError::BadRequest("invalid request-line"),
        httparse::Error::HeaderName => PeerError::BadRequest("invalid header name"),
        httparse::Error::HeaderValue => PeerError::BadRequest("invalid header value"),
        httparse::Error::NewLine => PeerError::BadRequest("invalid line ending"),
        _ => PeerError::BadRequest("malformed request head"),
    }
}

/// Parses a `Content-Length` value: `1*DIGIT` and nothing else (RFC 9110
/// §8.6). Lists, signs and whitespace inside are refused, as is overflow.
pub(super) fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// The checks `httparse` leaves to us, and the derived fields of the head.
fn semantics(
    method: Bytes,
    target: Bytes,
    version: Version,
    headers: Vec<(Bytes, Bytes)>,
    config: &Config,
) -> Result<RequestHead, PeerError> {
    let mut hosts = 0usize;
    let mut content_length: Option<u64> = None;
    let mut has_te = false;
    let mut chunked_last = false;
    let mut te_unknown = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut conn_upgrade = false;
    let mut expect_continue = false;
    let mut upgrade: Option<&Bytes> = None;

    for (name, value) in &headers {
        // Values need no check here: httparse accepts only HTAB, SP, VCHAR
        // and obs-text in them (RFC 9110 §5.5), so no NUL, CR or LF.
        match name.as_ref() {
            b"host" => {
                hosts += 1;
                if !is_valid_host(value) {
                    return Err(PeerError::BadRequest("invalid host"));
                }
            }
            b"content-length" => {
                // RFC 9112 §6.3 rule 5: several Content-Length fields, or a
                // list, are refused even when the values agree.
                if content_length.is_some() {
                    return Err(PeerError::BadRequest("duplicate content-length"));
                }
                content_length = Some(
                    parse_content_length(value)
                        .ok_or(PeerError::BadRequest("invalid content-length"))?,
                );
            }
            b"transfer-encoding" => {
                has_te = true;
                // RFC 9112 §6.1: codings are applied in order, so chunked,
                // which can only be applied once, must be last.
                for coding in list(value) {
                    if chunked_last {
                        return Err(PeerError::BadRequest("chunked is not the final coding"));
                    }
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        chunked_last = true;
                    } else {
                        let token = coding.split(|&b| b == b';').next().map(trim_ows);
                        if !token.is_some_and(is_token) {
                            return Err(PeerError::BadRequest("invalid transfer-coding"));
                        }
                        te_unknown = true;
                    }
                }
            }
            b"connection" => {
                // RFC 9110 §7.6.1: a list of case-insensitive options.
                for opt in list(value) {
                    if opt.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep_alive = true;
                    } else if opt.eq_ignore_ascii_case(b"upgrade") {
                        conn_upgrade = true;
                    }
                }
            }
            // RFC 9110 §10.1.1; the only expectation is 100-continue.
            b"expect" if list(value).any(|e| e.eq_ignore_ascii_case(b"100-continue")) => {
                expect_continue = true;
            }
            b"upgrade" => {
                upgrade.get_or_insert(value);
            }
            _ => {}
        }
    }

    match (version, hosts) {
        (_, 2..) => return Err(PeerError::BadRequest("multiple host headers")),
        // RFC 9112 §3.2: a 1.1 request without Host gets 400.
        (Version::Http11, 0) => return Err(PeerError::BadRequest("missing host")),
        _ => {}
    }

    let body = match (has_te, content_length) {
        (true, Some(_)) => {
            // RFC 9112 §6.1 / §6.3 rule 3: the classic smuggling vector.
            return Err(PeerError::BadRequest(
                "content-length with transfer-encoding",
            ));
        }
        (true, None) => {
            if version == Version::Http10 {
                // RFC 9112 §6.1: 1.0 has no transfer codings; a 1.0 message
                // with one is treated as faulty.
                return Err(PeerError::BadRequest("transfer-encoding in http/1.0"));
            }
            if te_unknown {
                // RFC 9112 §6.1: a coding we don't understand: 501.
                return Err(PeerError::NotImplemented);
            }
            if !chunked_last {
                // `Transfer-Encoding:` with only empty elements.
                return Err(PeerError::BadRequest("invalid transfer-encoding"));
            }
            BodyKind::Chunked
        }
        (false, Some(n)) => {
            if config.max_body_size.is_some_and(|max| n > max) {
                return Err(PeerError::BodyTooLarge);
            }
            BodyKind::Length(n)
        }
        // RFC 9112 §6.3 rule 7: a request with neither has no body.
        (false, None) => BodyKind::Empty,
    };

    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    let expect_continue = expect_continue && version == Version::Http11;
    let upgrade = match (conn_upgrade, upgrade) {
        (true, Some(v)) => first_protocol(v),
        _ => None,
    };

    Ok(RequestHead {
        method,
        target,
        version,
        headers,
        body,
        expect_continue,
        upgrade,
        keep_alive,
    })
}

/// The first protocol of an `Upgrade` list, lowercased (RFC 9110 §7.8).
/// Zero-copy unless the peer used capitals.
fn first_protocol(v: &Bytes) -> Option<Bytes> {
    let first = list(v).next()?;
    if first.iter().any(u8::is_ascii_uppercase) {
        return Some(Bytes::from(first.to_ascii_lowercase()));
    }
    Some(v.slice_ref(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::default()
    }

    fn parse_all(raw: &[u8], config: &Config) -> Result<RequestHead, PeerError> {
        let mut st = HeadScan::default();
        match scan(raw, &mut st, config)? {
            Some(n) => {
                let mut scratch = Vec::new();
                parse(BytesMut::from(&raw[..n]), config, &mut scratch)
            }
            None => Err(PeerError::IncompleteMessage),
        }
    }

    fn ok(raw: &[u8]) -> RequestHead {
        parse_all(raw, &cfg()).expect("valid head")
    }

    fn status(raw: &[u8]) -> u16 {
        parse_all(raw, &cfg())
            .expect_err("invalid head")
            .status_hint()
    }

    #[test]
    fn simple_get() {
        let h = ok(b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-Foo: Bar \r\n\r\n");
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, "/a?b");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.headers[1].0, "x-foo");
        assert_eq!(h.headers[1].1, "Bar");
        assert_eq!(h.body, BodyKind::Empty);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.upgrade, None);
    }

    #[test]
    fn names_lowercased_values_kept() {
        let h = ok(b"GET / HTTP/1.1\r\nHOST: x\r\nContent-TYPE: Text/HTML\r\n\r\n");
        assert_eq!(
            h.header(b"content-type").map(|v| v.as_ref()),
            Some(&b"Text/HTML"[..])
        );
        assert_eq!(h.header(b"host").map(|v| v.as_ref()), Some(&b"x"[..]));
    }

    #[test]
    fn empty_header_value() {
        let h = ok(b"GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Sp:   \r\n\r\n");
        assert_eq!(h.headers[1].1, "");
        assert_eq!(h.headers[2].1, "");
    }

    #[test]
    fn partial_head_needs_more() {
        let mut st = HeadScan::default();
        let c = cfg();
        assert_eq!(scan(b"GET / HTTP/1.1\r\nHo", &mut st, &c), Ok(None));
        assert_eq!(
            scan(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY", &mut st, &c),
            Ok(Some(27))
        );
    }

    #[test]
    fn request_line_too_long_complete_and_incomplete() {
        let c = Config {
            max_request_line: 20,
            ..cfg()
        };
        let long = b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(parse_all(long, &c), Err(PeerError::UriTooLong));
        let mut st = HeadScan::default();
        assert_eq!(
            scan(b"GET /aaaaaaaaaaaaaaaaaaaaaaaaa", &mut st, &c),
            Err(PeerError::UriTooLong)
        );
        // Exactly at the limit (20 bytes) is fine, CR buffered or not.
        for (raw, want) in [
            (&b"GET /aaaaaa HTTP/1.1"[..], Ok(None)),
            (b"GET /aaaaaa HTTP/1.1\r", Ok(None)),
            (b"GET /aaaaaa HTTP/1.1\r\nHost: x\r\n", Ok(None)),
            (b"GET /aaaaaa HTTP/1.1x", Err(PeerError::UriTooLong)),
            (b"GET /aaaaaaa HTTP/1.1\r", Err(PeerError::UriTooLong)),
            (b"GET /aaaaaaa HTTP/1.1\r\n", Err(PeerError::UriTooLong)),
        ] {
            let mut st = HeadScan::default();
            assert_eq!(scan(raw, &mut st, &c), want, "{raw:?}");
        }
    }

    #[test]
    fn head_too_large_complete_and_incomplete() {
        let c = Config {
            max_head_size: 40,
            ..cfg()
        };
        assert_eq!(
            parse_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaaaaa\r\n\r\n", &c),
            Err(PeerError::HeadersTooLarge)
        );
        let mut st = HeadScan::default();
        assert_eq!(
            scan(
                b"GET / HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaaaaaaaaaaaaaa",
                &mut st,
                &c
            ),
            Err(PeerError::HeadersTooLarge)
        );
    }

    #[test]
    fn too_many_headers() {
        let c = Config {
            max_headers: 2,
            ..cfg()
        };
        assert!(parse_all(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\n", &c).is_ok());
        assert_eq!(
            parse_all(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", &c),
            Err(PeerError::HeadersTooLarge)
        );
    }

    #[test]
    fn many_headers_on_the_heap() {
        let c = Config {
            max_headers: 300,
            ..cfg()
        };
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..250 {
            raw.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(parse_all(&raw, &c).map(|h| h.headers.len()), Ok(251));
    }

    #[test]
    fn bare_lf_rejected() {
        assert_eq!(status(b"GET / HTTP/1.1\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n\n"), 400);
    }

    #[test]
    fn obs_fold_rejected() {
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400);
    }

    #[test]
    fn space_before_colon_rejected() {
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"), 400);
    }

    #[test]
    fn invalid_tokens_rejected() {
        assert_eq!(status(b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHo[st: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET /\r\nHost: x\r\n\r\n"), 400);
    }

    #[test]
    fn ctl_in_value_rejected() {
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n"), 400);
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n"),
            400
        );
    }

    #[test]
    fn versions() {
        assert_eq!(ok(b"GET / HTTP/1.0\r\n\r\n").version, Version::Http10);
        assert_eq!(status(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/0.9\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/2\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / http/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / FOO\r\nHost: x\r\n\r\n"), 400);
    }

    #[test]
    fn host_rules() {
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
        ok(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
        ok(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
    }

    #[test]
    fn content_length_rules() {
        assert_eq!(
            ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n").body,
            BodyKind::Length(12)
        );
        assert_eq!(
            ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n").body,
            BodyKind::Length(7)
        );
        for bad in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
        ] {
            assert_eq!(status(bad), 400, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n").body,
            BodyKind::Length(u64::MAX)
        );
    }

    #[test]
    fn content_length_parser() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b""), None);
        assert_eq!(parse_content_length(b" 1"), None);
        assert_eq!(parse_content_length(b"99999999999999999999"), None);
    }

    #[test]
    fn body_too_large_by_content_length() {
        let c = Config {
            max_body_size: Some(10),
            ..cfg()
        };
        assert!(
            parse_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
                &c
            )
            .is_ok()
        );
        assert_eq!(
            parse_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n",
                &c
            ),
            Err(PeerError::BodyTooLarge)
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        let te = |v: &str| {
            let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {v}\r\n\r\n");
            parse_all(raw.as_bytes(), &cfg()).map(|h| h.body)
        };
        assert_eq!(te("chunked"), Ok(BodyKind::Chunked));
        assert_eq!(te("CHUNKED"), Ok(BodyKind::Chunked));
        assert_eq!(te(" chunked , "), Ok(BodyKind::Chunked));
        assert_eq!(te("gzip, chunked"), Err(PeerError::NotImplemented));
        assert_eq!(te("identity, chunked"), Err(PeerError::NotImplemented));
        assert_eq!(te("gzip"), Err(PeerError::NotImplemented));
        assert_eq!(te("identity"), Err(PeerError::NotImplemented));
        assert_eq!(te("foo;q=1, chunked"), Err(PeerError::NotImplemented));
        assert_eq!(te("chunked, gzip").map_err(|e| e.status_hint()), Err(400));
        assert_eq!(
            te("chunked, chunked").map_err(|e| e.status_hint()),
            Err(400)
        );
        assert_eq!(te("").map_err(|e| e.status_hint()), Err(400));
        assert_eq!(te(",").map_err(|e| e.status_hint()), Err(400));
        assert_eq!(te("chu nked").map_err(|e| e.status_hint()), Err(400));
        assert_eq!(te("\"chunked\"").map_err(|e| e.status_hint()), Err(400));
        // Two fields make one list: "chunked, chunked".
        assert_eq!(
            status(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                  Transfer-Encoding: chunked\r\n\r\n"
            ),
            400
        );
        // gzip then chunked over two fields.
        assert_eq!(
            status(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\
                  Transfer-Encoding: chunked\r\n\r\n"
            ),
            501
        );
    }

    #[test]
    fn cl_with_te_rejected() {
        assert_eq!(
            status(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\
                  Transfer-Encoding: chunked\r\n\r\n"
            ),
            400
        );
        assert_eq!(
            status(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                  Content-Length: 3\r\n\r\n"
            ),
            400
        );
    }

    #[test]
    fn te_in_http10_rejected() {
        assert_eq!(
            status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn keep_alive_rules() {
        assert!(ok(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, CLOSE\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            !ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n")
                .keep_alive
        );
    }

    #[test]
    fn expect_continue_rules() {
        assert!(
            ok(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .expect_continue
        );
        assert!(!ok(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
        assert!(!ok(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n").expect_continue);
    }

    #[test]
    fn upgrade_detection() {
        let h = ok(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\
                    Upgrade: WebSocket, h2c\r\n\r\n",
        );
        assert_eq!(h.upgrade.as_deref(), Some(&b"websocket"[..]));
        let h = ok(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n");
        assert_eq!(h.upgrade.as_deref(), Some(&b"h2c"[..]));
        // Upgrade without the connection option is ignored.
        let h = ok(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(h.upgrade, None);
        let h = ok(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n");
        assert_eq!(h.upgrade, None);
    }

    #[test]
    fn head_bytes_are_one_buffer() {
        let raw = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
        let h = ok(raw);
        // method and target are slices of the same allocation
        let m = h.method.as_ptr() as usize;
        let t = h.target.as_ptr() as usize;
        assert_eq!(t - m, 4);
    }
}
