//! Response encoding: the head, the framing decision, body framing, and the
//! output queue the driver drains.

use bytes::{BufMut, Bytes, BytesMut};

use super::head::parse_content_length;
use super::{ResponseHead, Version};
use crate::http::{decimal, is_field_value, is_token, list, trim_ows};
use crate::{PeerError, UsageError};

/// Body pieces up to this size are copied into the head buffer, so a small
/// response (or a run of small chunks) leaves as one contiguous buffer.
/// Larger ones stay separate `Bytes` segments: the driver writes all
/// segments with one vectored write, so copying them would only add a
/// memcpy. 2 KiB is about where the copy starts to cost more than an iovec.
const COPY_MAX: usize = 2 * 1024;

/// Least capacity reserved in the output buffer before a response head:
/// room for a typical head plus a small body, so a whole small response is
/// one buffer, and the same allocation is reclaimed response after response
/// once the driver has dropped the previous segments.
const OUT_MIN: usize = 4 * 1024;

/// Output queue: segments in order, the last one still open for appending.
#[derive(Debug, Default)]
pub(super) struct Output {
    /// Bytes after every segment, not yet frozen. Reused: once the driver
    /// drops the segments it was split into, `reserve` reclaims the space.
    buf: BytesMut,
    /// Frozen segments, oldest first.
    segments: Vec<Bytes>,
}

impl Output {
    /// Whether anything is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.segments.is_empty()
    }

    /// Moves everything into `out`, in order.
    pub(super) fn drain_into(&mut self, out: &mut Vec<Bytes>) {
        self.seal();
        out.append(&mut self.segments);
    }

    /// Closes the open buffer into a segment.
    fn seal(&mut self) {
        if !self.buf.is_empty() {
            self.segments.push(self.buf.split().freeze());
        }
    }

    /// Appends body bytes: copied when small, a segment of their own when
    /// large.
    fn push_data(&mut self, data: Bytes) {
        if data.len() <= COPY_MAX {
            self.buf.extend_from_slice(&data);
        } else {
            self.seal();
            self.segments.push(data);
        }
    }

    /// The open buffer, for writing framing.
    pub(super) fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
}

/// How the response body goes on the wire (RFC 9112 §6.1, §6.2, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body on the wire (HEAD, 1xx, 204, 304); body data is discarded.
    Empty,
    /// `Content-Length`: bytes still allowed.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Delimited by closing the connection (HTTP/1.0 without a length).
    Close,
}

/// What the head encoder needs to know about the connection.
#[derive(Debug)]
pub(super) struct HeadContext<'a> {
    /// Version of the request being answered.
    pub(super) version: Version,
    /// Whether the request method was HEAD.
    pub(super) head_request: bool,
    /// Whether the connection may stay open after this response, so far.
    pub(super) keep_alive: bool,
    /// `Server` value.
    pub(super) server: Option<&'a Bytes>,
    /// `Date` value.
    pub(super) date: Option<&'a Bytes>,
    /// Headers added to every response.
    pub(super) extra: &'a [(Bytes, Bytes)],
}

/// Result of encoding a final response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Encoded {
    pub(super) framing: Framing,
    /// Whether the connection may stay open after this response.
    pub(super) keep_alive: bool,
}

/// The canonical reason phrase of `status` (RFC 9110 §15), or "".
pub(super) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Writes the decimal digits of `n`.
fn put_decimal(out: &mut BytesMut, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0; 20]));
}

/// Writes the lowercase hex digits of `n`.
fn put_hex(out: &mut BytesMut, mut n: u64) {
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// `HTTP/1.1 <code> <reason>\r\n`. We always speak 1.1 on the wire, also to
/// 1.0 clients (RFC 9110 §2.5: a server sends its own highest version).
fn put_status_line(out: &mut BytesMut, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(status));
    out.put_u8(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Checks an application field: the name a token, the value field-value
/// bytes only (RFC 9110 §5.1, §5.5: CR, LF or NUL would split or end the
/// head; HTTP/2 refuses the other controls too, so both refuse them).
fn check_field(name: &[u8], value: &[u8]) -> Result<(), UsageError> {
    if !is_token(name) {
        return Err(UsageError::InvalidValue(format!(
            "invalid header name {:?}",
            String::from_utf8_lossy(name)
        )));
    }
    if !is_field_value(value) {
        return Err(UsageError::InvalidValue(format!(
            "invalid value for header {:?}",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

/// A rough size of the encoded head, to reserve once.
fn head_size_hint(head: &ResponseHead, ctx: &HeadContext<'_>) -> usize {
    let fields = |v: &[(Bytes, Bytes)]| v.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>();
    64 + ctx.server.map_or(0, |s| s.len() + 10)
        + ctx.date.map_or(0, |d| d.len() + 8)
        + fields(ctx.extra)
        + fields(&head.headers)
}

/// Encodes an informational (1xx other than 101) response. Nothing is
/// written on error.
pub(super) fn informational(out: &mut Output, head: &ResponseHead) -> Result<(), UsageError> {
    if !(100..200).contains(&head.status) || head.status == 101 {
        return Err(UsageError::InvalidValue(format!(
            "informational status must be 1xx other than 101, got {}",
            head.status
        )));
    }
    for (n, v) in &head.headers {
        check_field(n, v)?;
    }
    let buf = out.buf();
    put_status_line(buf, head.status);
    for (n, v) in &head.headers {
        put_field(buf, n, v);
    }
    buf.extend_from_slice(b"\r\n");
    Ok(())
}

/// Encodes a final response head (or 101) and decides the framing of its
/// body. Nothing is written on error.
pub(super) fn response(
    out: &mut Output,
    head: &ResponseHead,
    ctx: &HeadContext<'_>,
) -> Result<Encoded, UsageError> {
    let status = head.status;
    if !(100..=999).contains(&status) || ((100..200).contains(&status) && status != 101) {
        return Err(UsageError::InvalidValue(format!(
            "final response status must be 101 or 200..=999, got {status}"
        )));
    }
    let buf = out.buf();
    let start = buf.len();
    buf.reserve(head_size_hint(head, ctx).max(OUT_MIN));
    match write_response(buf, head, ctx) {
        Ok(enc) => Ok(enc),
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

fn write_response(
    buf: &mut BytesMut,
    head: &ResponseHead,
    ctx: &HeadContext<'_>,
) -> Result<Encoded, UsageError> {
    let status = head.status;
    put_status_and_server_fields(buf, status, ctx);

    let switching = status == 101;
    let mut length: Option<u64> = None;
    let mut app_close = false;
    for (name, value) in &head.headers {
        check_field(name, value)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(trim_ows(value)).ok_or_else(|| {
                UsageError::InvalidValue("invalid content-length value".to_owned())
            })?;
            if length.is_some_and(|l| l != n) {
                return Err(UsageError::InvalidValue(
                    "conflicting content-length headers".to_owned(),
                ));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // We frame the body ourselves (RFC 9112 §6.1); the
            // application's codings are dropped.
            continue;
        } else if name.eq_ignore_ascii_case(b"connection") && !switching {
            // Connection management is ours (RFC 9110 §7.6.1); we only take
            // the `close` option from the application.
            if list(value).any(|o| o.eq_ignore_ascii_case(b"close")) {
                app_close = true;
            }
            continue;
        }
        put_field(buf, name, value);
    }

    // RFC 9110 §6.4.1, RFC 9112 §6.3: no content after HEAD, 1xx, 204, 304.
    let no_body = ctx.head_request || status < 200 || status == 204 || status == 304;
    let framing = match (no_body, length) {
        (true, _) => {
            // A HEAD response announces the framing a GET would get.
            if ctx.head_request
                && length.is_none()
                && ctx.version == Version::Http11
                && status >= 200
                && status != 204
                && status != 304
            {
                put_field(buf, b"transfer-encoding", b"chunked");
            }
            Framing::Empty
        }
        (false, Some(n)) => Framing::Length(n),
        (false, None) if ctx.version == Version::Http11 => {
            put_field(buf, b"transfer-encoding", b"chunked");
            Framing::Chunked
        }
        // RFC 9112 §6.3 rule 8: a 1.0 client reads until close.
        (false, None) => Framing::Close,
    };

    let keep_alive = ctx.keep_alive && !app_close && !switching && framing != Framing::Close;
    if switching {
        // The application's `Connection: upgrade` was written as given.
    } else if !keep_alive {
        put_field(buf, b"connection", b"close");
    } else if ctx.version == Version::Http10 {
        put_field(buf, b"connection", b"keep-alive");
    }
    buf.extend_from_slice(b"\r\n");
    Ok(Encoded {
        framing,
        keep_alive,
    })
}

/// Queues a piece of body. On a length overrun nothing is written.
pub(super) fn body(out: &mut Output, framing: &mut Framing, data: Bytes) -> Result<(), UsageError> {
    match framing {
        Framing::Empty => {}
        Framing::Length(remaining) => {
            if data.len() as u64 > *remaining {
                return Err(UsageError::LengthMismatch);
            }
            *remaining -= data.len() as u64;
            if !data.is_empty() {
                out.push_data(data);
            }
        }
        Framing::Chunked => {
            // RFC 9112 §7.1: a zero-size chunk would end the body.
            if !data.is_empty() {
                let buf = out.buf();
                put_hex(buf, data.len() as u64);
                buf.extend_from_slice(b"\r\n");
                out.push_data(data);
                out.buf().extend_from_slice(b"\r\n");
            }
        }
        Framing::Close => {
            if !data.is_empty() {
                out.push_data(data);
            }
        }
    }
    Ok(())
}

/// Ends the body.
pub(super) fn end(out: &mut Output, framing: Framing) -> Result<(), UsageError> {
    match framing {
        Framing::Length(0) | Framing::Empty | Framing::Close => Ok(()),
        Framing::Length(_) => Err(UsageError::LengthMismatch),
        Framing::Chunked => {
            // last-chunk and an empty trailer section.
            out.buf().extend_from_slice(b"0\r\n\r\n");
            Ok(())
        }
    }
}

/// Ends a chunked body with a trailer section (RFC 9112 §7.1.2); for any
/// other framing the fields are dropped, as there is nowhere to put them.
/// Invalid fields write nothing.
pub(super) fn end_with_trailers(
    out: &mut Output,
    framing: Framing,
    fields: &[(Bytes, Bytes)],
) -> Result<(), UsageError> {
    if framing != Framing::Chunked {
        return end(out, framing);
    }
    for (name, value) in fields {
        check_field(name, value)?;
    }
    let buf = out.buf();
    buf.extend_from_slice(b"0\r\n");
    for (name, value) in fields {
        put_field(buf, name, value);
    }
    buf.extend_from_slice(b"\r\n");
    Ok(())
}

/// The bare `100 Continue` interim response (RFC 9110 §15.2.1).
pub(super) fn continue_100(out: &mut Output) {
    out.buf()
        .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// A complete minimal error response for `err`, closing the connection.
/// The status line, then the fields the server adds to every response:
/// `server`, `date` and the configured extra headers.
fn put_status_and_server_fields(buf: &mut BytesMut, status: u16, ctx: &HeadContext<'_>) {
    put_status_line(buf, status);
    if let Some(server) = ctx.server {
        put_field(buf, b"server", server);
    }
    if let Some(date) = ctx.date {
        put_field(buf, b"date", date);
    }
    for (n, v) in ctx.extra {
        put_field(buf, n, v);
    }
}

pub(super) fn error_response(out: &mut Output, err: &PeerError, ctx: &HeadContext<'_>) {
    let status = err.status_hint();
    let text = reason(status).as_bytes();
    let buf = out.buf();
    put_status_and_server_fields(buf, status, ctx);
    put_field(buf, b"content-type", b"text/plain; charset=utf-8");
    buf.extend_from_slice(b"content-length: ");
    put_decimal(buf, text.len() as u64);
    buf.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    if !ctx.head_request {
        buf.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(version: Version) -> HeadContext<'static> {
        HeadContext {
            version,
            head_request: false,
            keep_alive: true,
            server: None,
            date: None,
            extra: &[],
        }
    }

    fn h(status: u16, headers: &[(&'static str, &'static str)]) -> ResponseHead {
        ResponseHead {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        Bytes::from_static(n.as_bytes()),
                        Bytes::from_static(v.as_bytes()),
                    )
                })
                .collect(),
        }
    }

    fn text(out: &mut Output) -> String {
        let mut v = Vec::new();
        out.drain_into(&mut v);
        v.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn decimal_and_hex() {
        let mut b = BytesMut::new();
        put_decimal(&mut b, 0);
        b.extend_from_slice(b" ");
        put_decimal(&mut b, u64::MAX);
        b.extend_from_slice(b" ");
        put_hex(&mut b, 0);
        b.extend_from_slice(b" ");
        put_hex(&mut b, 0x1a2b);
        b.extend_from_slice(b" ");
        put_hex(&mut b, u64::MAX);
        assert_eq!(&b[..], b"0 18446744073709551615 0 1a2b ffffffffffffffff");
    }

    #[test]
    fn chunked_by_default_on_11() {
        let mut out = Output::default();
        let enc = response(&mut out, &h(200, &[("X-A", "b")]), &ctx(Version::Http11)).unwrap();
        assert_eq!(enc.framing, Framing::Chunked);
        assert!(enc.keep_alive);
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 200 OK\r\nX-A: b\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn trailers_end_a_chunked_body_and_are_dropped_otherwise() {
        let fields = [(Bytes::from_static(b"grpc-status"), Bytes::from_static(b"0"))];
        let mut out = Output::default();
        end_with_trailers(&mut out, Framing::Chunked, &fields).unwrap();
        assert_eq!(text(&mut out), "0\r\ngrpc-status: 0\r\n\r\n");
        end_with_trailers(&mut out, Framing::Length(0), &fields).unwrap();
        assert_eq!(text(&mut out), "");
        let bad = [(Bytes::from_static(b"x"), Bytes::from_static(b"a\r\nb"))];
        assert!(end_with_trailers(&mut out, Framing::Chunked, &bad).is_err());
        assert_eq!(text(&mut out), "");
    }

    #[test]
    fn close_delimited_on_10() {
        let mut out = Output::default();
        let mut c = ctx(Version::Http10);
        let enc = response(&mut out, &h(200, &[]), &c).unwrap();
        assert_eq!(
            enc,
            Encoded {
                framing: Framing::Close,
                keep_alive: false
            }
        );
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"
        );
        c.keep_alive = true;
        let enc = response(&mut out, &h(200, &[("content-length", "0")]), &c).unwrap();
        assert_eq!(
            enc,
            Encoded {
                framing: Framing::Length(0),
                keep_alive: true
            }
        );
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn server_date_extra_order() {
        let server = Bytes::from_static(b"cormorant");
        let date = Bytes::from_static(b"Sun, 06 Nov 1994 08:49:37 GMT");
        let extra = [(Bytes::from_static(b"x-extra"), Bytes::from_static(b"1"))];
        let c = HeadContext {
            server: Some(&server),
            date: Some(&date),
            extra: &extra,
            ..ctx(Version::Http11)
        };
        let mut out = Output::default();
        response(&mut out, &h(404, &[("Content-Length", "3")]), &c).unwrap();
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 404 Not Found\r\nserver: cormorant\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             x-extra: 1\r\nContent-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn unknown_status_has_empty_reason() {
        let mut out = Output::default();
        response(
            &mut out,
            &h(599, &[("content-length", "0")]),
            &ctx(Version::Http11),
        )
        .unwrap();
        assert!(text(&mut out).starts_with("HTTP/1.1 599 \r\n"));
    }

    #[test]
    fn invalid_heads_write_nothing() {
        let mut out = Output::default();
        for bad in [
            h(200, &[("bad name", "x")]),
            h(200, &[("", "x")]),
            h(200, &[("x", "a\r\nb")]),
            h(200, &[("x", "a\nb")]),
            h(200, &[("x", "a\0b")]),
            h(200, &[("content-length", "x")]),
            h(200, &[("content-length", "1"), ("content-length", "2")]),
            h(99, &[]),
            h(1000, &[]),
            h(100, &[]),
            h(103, &[]),
        ] {
            assert!(
                matches!(
                    response(&mut out, &bad, &ctx(Version::Http11)),
                    Err(UsageError::InvalidValue(_))
                ),
                "{bad:?}"
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn app_transfer_encoding_and_connection_replaced() {
        let mut out = Output::default();
        let head = h(
            200,
            &[
                ("Transfer-Encoding", "gzip, chunked"),
                ("Connection", "keep-alive"),
            ],
        );
        let enc = response(&mut out, &head, &ctx(Version::Http11)).unwrap();
        assert_eq!(enc.framing, Framing::Chunked);
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let enc = response(
            &mut out,
            &h(200, &[("Connection", "Close")]),
            &ctx(Version::Http11),
        )
        .unwrap();
        assert!(!enc.keep_alive);
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn no_body_statuses() {
        for status in [204, 304] {
            let mut out = Output::default();
            let enc = response(
                &mut out,
                &h(status, &[("transfer-encoding", "chunked")]),
                &ctx(Version::Http11),
            )
            .unwrap();
            assert_eq!(enc.framing, Framing::Empty);
            let t = text(&mut out);
            assert!(!t.contains("transfer-encoding"), "{t}");
        }
        let mut out = Output::default();
        let enc = response(
            &mut out,
            &h(304, &[("content-length", "10")]),
            &ctx(Version::Http11),
        )
        .unwrap();
        assert_eq!(enc.framing, Framing::Empty);
        assert!(text(&mut out).contains("content-length: 10\r\n"));
    }

    #[test]
    fn head_request_keeps_length_and_announces_chunked() {
        let c = HeadContext {
            head_request: true,
            ..ctx(Version::Http11)
        };
        let mut out = Output::default();
        let enc = response(&mut out, &h(200, &[("content-length", "10")]), &c).unwrap();
        assert_eq!(enc.framing, Framing::Empty);
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"
        );
        let enc = response(&mut out, &h(200, &[]), &c).unwrap();
        assert_eq!(enc.framing, Framing::Empty);
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn switching_protocols_keeps_connection_header() {
        let mut out = Output::default();
        let head = h(101, &[("Connection", "Upgrade"), ("Upgrade", "websocket")]);
        let enc = response(&mut out, &head, &ctx(Version::Http11)).unwrap();
        assert_eq!(
            enc,
            Encoded {
                framing: Framing::Empty,
                keep_alive: false
            }
        );
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        );
    }

    #[test]
    fn chunked_body_framing() {
        let mut out = Output::default();
        let mut f = Framing::Chunked;
        body(&mut out, &mut f, Bytes::from_static(b"hello")).unwrap();
        body(&mut out, &mut f, Bytes::new()).unwrap();
        body(&mut out, &mut f, Bytes::from(vec![b'x'; 26])).unwrap();
        end(&mut out, f).unwrap();
        let expected = format!("5\r\nhello\r\n1a\r\n{}\r\n0\r\n\r\n", "x".repeat(26));
        assert_eq!(text(&mut out), expected);
    }

    #[test]
    fn length_enforced() {
        let mut out = Output::default();
        let mut f = Framing::Length(5);
        body(&mut out, &mut f, Bytes::from_static(b"abc")).unwrap();
        assert_eq!(
            body(&mut out, &mut f, Bytes::from_static(b"def")),
            Err(UsageError::LengthMismatch)
        );
        assert_eq!(end(&mut out, f), Err(UsageError::LengthMismatch));
        body(&mut out, &mut f, Bytes::from_static(b"de")).unwrap();
        assert_eq!(end(&mut out, f), Ok(()));
        assert_eq!(text(&mut out), "abcde");
    }

    #[test]
    fn empty_framing_discards() {
        let mut out = Output::default();
        let mut f = Framing::Empty;
        body(&mut out, &mut f, Bytes::from_static(b"abc")).unwrap();
        end(&mut out, f).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn small_bodies_coalesce_large_stay_separate() {
        let mut out = Output::default();
        let enc = response(
            &mut out,
            &h(200, &[("content-length", "5")]),
            &ctx(Version::Http11),
        )
        .unwrap();
        let mut f = enc.framing;
        body(&mut out, &mut f, Bytes::from_static(b"hello")).unwrap();
        end(&mut out, f).unwrap();
        let mut segs = Vec::new();
        out.drain_into(&mut segs);
        assert_eq!(segs.len(), 1);

        let big = Bytes::from(vec![b'x'; COPY_MAX + 1]);
        let mut f = Framing::Chunked;
        body(&mut out, &mut f, big.clone()).unwrap();
        end(&mut out, f).unwrap();
        let mut segs = Vec::new();
        out.drain_into(&mut segs);
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[1].as_ptr(), big.as_ptr());
        assert_eq!(&segs[2][..], b"\r\n0\r\n\r\n");
    }

    #[test]
    fn informational_encoding() {
        let mut out = Output::default();
        informational(&mut out, &h(103, &[("Link", "</a>; rel=preload")])).unwrap();
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
        );
        assert!(informational(&mut out, &h(101, &[])).is_err());
        assert!(informational(&mut out, &h(200, &[])).is_err());
        assert!(informational(&mut out, &h(103, &[("a b", "c")])).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn error_response_shape() {
        let server = Bytes::from_static(b"cormorant");
        let c = HeadContext {
            server: Some(&server),
            ..ctx(Version::Http11)
        };
        let mut out = Output::default();
        error_response(&mut out, &PeerError::HeadersTooLarge, &c);
        assert_eq!(
            text(&mut out),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nserver: cormorant\r\n\
             content-type: text/plain; charset=utf-8\r\ncontent-length: 31\r\n\
             connection: close\r\n\r\nRequest Header Fields Too Large"
        );
    }
}
