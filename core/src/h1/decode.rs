//! Incremental request body decoding: `Content-Length` and chunked
//! (RFC 9112 §6, §7.1).
//!
//! Body data leaves as zero-copy slices of the receive buffer
//! (`BytesMut::split_to` then `freeze`).

use bytes::{Buf, Bytes, BytesMut};

use super::Config;
use crate::PeerError;
use crate::http::{is_field_value_byte, is_tchar, is_token, trim_ows};

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// A non-empty piece of the body.
    Data(Bytes),
    /// The body is complete (trailers, if any, consumed and dropped).
    End,
    /// The buffer holds nothing more of the body.
    NeedData,
}

/// Decoder of one request body.
#[derive(Debug)]
pub(super) enum Decoder {
    /// `Content-Length`: bytes still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunked),
}

/// Where a chunked decoder is in the body (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkPhase {
    /// Reading a `chunk-size [chunk-ext] CRLF` line.
    Size,
    /// Inside chunk data: bytes left in this chunk.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer fields after the last chunk.
    Trailers,
    /// Done.
    Done,
}

/// State of a chunked body.
#[derive(Debug)]
pub(super) struct Chunked {
    phase: ChunkPhase,
    /// Sum of the chunk sizes so far, checked against `max_body_size`.
    total: u64,
    /// Bytes of the current line already searched for LF.
    scanned: usize,
    /// Bytes of trailer section consumed, bounded by `max_head_size`.
    trailer_bytes: usize,
    /// Trailer fields seen, bounded by `max_headers`.
    trailer_fields: usize,
}

impl Decoder {
    /// A decoder for a body of `Content-Length: n`.
    pub(super) fn length(n: u64) -> Self {
        Self::Length(n)
    }

    /// A decoder for a chunked body.
    pub(super) fn chunked() -> Self {
        Self::Chunked(Chunked {
            phase: ChunkPhase::Size,
            total: 0,
            scanned: 0,
            trailer_bytes: 0,
            trailer_fields: 0,
        })
    }

    /// Decodes from the front of `buf`, consuming what it uses.
    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        config: &Config,
    ) -> Result<Decoded, PeerError> {
        match self {
            Self::Length(0) => Ok(Decoded::End),
            Self::Length(remaining) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedData);
                }
                let n = take_len(*remaining, buf.len());
                *remaining -= n as u64;
                Ok(Decoded::Data(buf.split_to(n).freeze()))
            }
            Self::Chunked(c) => c.decode(buf, config),
        }
    }
}

/// `min(remaining, available)` as a `usize`.
fn take_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

/// Outcome of looking for one line at the front of the buffer.
enum Line {
    /// The line's length without CRLF, and with it.
    Found(usize, usize),
    NeedData,
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut, config: &Config) -> Result<Decoded, PeerError> {
        loop {
            match self.phase {
                ChunkPhase::Size => {
                    let too_long = PeerError::BadRequest("chunk-size line too long");
                    let Line::Found(len, full) =
                        self.find_line(buf, config.max_chunk_line, too_long)?
                    else {
                        return Ok(Decoded::NeedData);
                    };
                    let size = parse_chunk_line(&buf[..len])?;
                    buf.advance(full);
                    if size == 0 {
                        self.phase = ChunkPhase::Trailers;
                        continue;
                    }
                    self.total = self
                        .total
                        .checked_add(size)
                        .ok_or(PeerError::BadRequest("chunked body size overflow"))?;
                    if config.max_body_size.is_some_and(|max| self.total > max) {
                        return Err(PeerError::BodyTooLarge);
                    }
                    self.phase = ChunkPhase::Data(size);
                }
                ChunkPhase::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedData);
                    }
                    let n = take_len(remaining, buf.len());
                    let left = remaining - n as u64;
                    self.phase = if left == 0 {
                        ChunkPhase::DataEnd
                    } else {
                        ChunkPhase::Data(left)
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                ChunkPhase::DataEnd => {
                    // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF
                    // chunk-data CRLF.
                    match buf.as_ref() {
                        [b'\r', b'\n', ..] => {
                            buf.advance(2);
                            self.phase = ChunkPhase::Size;
                        }
                        [] | [b'\r'] => return Ok(Decoded::NeedData),
                        _ => return Err(PeerError::BadRequest("missing CRLF after chunk data")),
                    }
                }
                ChunkPhase::Trailers => {
                    let limit = config.max_head_size.saturating_sub(self.trailer_bytes);
                    let Line::Found(len, full) =
                        self.find_line(buf, limit, PeerError::HeadersTooLarge)?
                    else {
                        return Ok(Decoded::NeedData);
                    };
                    if len == 0 {
                        buf.advance(full);
                        self.phase = ChunkPhase::Done;
                        return Ok(Decoded::End);
                    }
                    // RFC 9112 §7.1.2: trailer fields are validated like
                    // header fields, then dropped.
                    check_field_line(&buf[..len])?;
                    self.trailer_fields += 1;
                    if self.trailer_fields > config.max_headers {
                        return Err(PeerError::HeadersTooLarge);
                    }
                    self.trailer_bytes += full;
                    buf.advance(full);
                }
                ChunkPhase::Done => return Ok(Decoded::End),
            }
        }
    }

    /// Finds the CRLF-terminated line at the front of `buf`, whose content
    /// may not exceed `limit` bytes (`too_long` otherwise, even before the
    /// line is complete).
    fn find_line(
        &mut self,
        buf: &[u8],
        limit: usize,
        too_long: PeerError,
    ) -> Result<Line, PeerError> {
        // Never search further than the longest acceptable line.
        let window = buf.len().min(limit.saturating_add(2));
        let start = self.scanned.min(window);
        match memchr::memchr(b'\n', &buf[start..window]) {
            Some(off) => {
                let i = start + off;
                self.scanned = 0;
                if i == 0 || buf[i - 1] != b'\r' {
                    return Err(PeerError::BadRequest("bare LF in chunked body"));
                }
                if i - 1 > limit {
                    return Err(too_long);
                }
                Ok(Line::Found(i - 1, i + 1))
            }
            None => {
                self.scanned = window;
                let at_least = buf.len() - usize::from(buf.last() == Some(&b'\r'));
                if at_least > limit {
                    return Err(too_long);
                }
                Ok(Line::NeedData)
            }
        }
    }
}

/// Parses `chunk-size [ chunk-ext ]` (RFC 9112 §7.1, §7.1.1):
///
/// ```text
/// chunk-size     = 1*HEXDIG
/// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-name = token
/// chunk-ext-val  = token / quoted-string
/// ```
///
/// Extensions are validated and ignored.
pub(super) fn parse_chunk_line(line: &[u8]) -> Result<u64, PeerError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(PeerError::BadRequest("invalid chunk size"));
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(d)))
            .ok_or(PeerError::BadRequest("chunk size overflow"))?;
    }
    check_extensions(&line[digits..])?;
    Ok(size)
}

/// Validates the `chunk-ext` part of a chunk-size line.
fn check_extensions(ext: &[u8]) -> Result<(), PeerError> {
    const BAD: PeerError = PeerError::BadRequest("invalid chunk extension");
    let skip_ws = |mut p: usize| {
        while p < ext.len() && matches!(ext[p], b' ' | b'\t') {
            p += 1;
        }
        p
    };
    let token_end = |mut p: usize| {
        while p < ext.len() && is_tchar(ext[p]) {
            p += 1;
        }
        p
    };
    let mut p = 0;
    while p < ext.len() {
        // BWS is only allowed before ";", so trailing whitespace is refused.
        p = skip_ws(p);
        if ext.get(p) != Some(&b';') {
            return Err(BAD);
        }
        p = skip_ws(p + 1);
        let name_end = token_end(p);
        if name_end == p {
            return Err(BAD);
        }
        p = name_end;
        let after = skip_ws(p);
        if ext.get(after) == Some(&b'=') {
            p = skip_ws(after + 1);
            p = if ext.get(p) == Some(&b'"') {
                quoted_string_end(ext, p).ok_or(BAD)?
            } else {
                let end = token_end(p);
                if end == p {
                    return Err(BAD);
                }
                end
            };
        }
    }
    Ok(())
}

/// Given `s[start] == '"'`, the index just past the closing quote of a
/// `quoted-string` (RFC 9110 §5.6.4), or `None` if it is malformed.
fn quoted_string_end(s: &[u8], start: usize) -> Option<usize> {
    let mut p = start + 1;
    loop {
        match *s.get(p)? {
            b'"' => return Some(p + 1),
            b'\\' => {
                let q = *s.get(p + 1)?;
                if !(q == b'\t' || q == b' ' || (0x21..=0x7e).contains(&q) || q >= 0x80) {
                    return None;
                }
                p += 2;
            }
            b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => p += 1,
            _ => return None,
        }
    }
}

/// Validates one `field-line` (RFC 9112 §5): `field-name ":" OWS
/// field-value OWS`, no whitespace before the colon, no obs-fold.
fn check_field_line(line: &[u8]) -> Result<(), PeerError> {
    let colon = memchr::memchr(b':', line).ok_or(PeerError::BadRequest("invalid trailer field"))?;
    if !is_token(&line[..colon]) {
        return Err(PeerError::BadRequest("invalid trailer field name"));
    }
    if !trim_ows(&line[colon + 1..])
        .iter()
        .all(|&b| is_field_value_byte(b))
    {
        return Err(PeerError::BadRequest("invalid trailer field value"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a decoder over `input` fed in the given pieces; returns the body
    /// and the final outcome (`Ok(true)` complete, `Ok(false)` needs data)
    /// and the bytes left after the body.
    fn run(
        mut dec: Decoder,
        pieces: &[&[u8]],
        config: &Config,
    ) -> (Vec<u8>, Result<bool, PeerError>, Vec<u8>) {
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&mut buf, config) {
                    Ok(Decoded::Data(d)) => {
                        assert!(!d.is_empty());
                        body.extend_from_slice(&d);
                    }
                    Ok(Decoded::End) => {
                        // What is left: the buffer and the pieces not fed.
                        let mut rest = buf.to_vec();
                        pieces[i + 1..]
                            .iter()
                            .for_each(|p| rest.extend_from_slice(p));
                        return (body, Ok(true), rest);
                    }
                    Ok(Decoded::NeedData) => break,
                    Err(e) => return (body, Err(e), Vec::new()),
                }
            }
        }
        (body, Ok(false), buf.to_vec())
    }

    /// Runs whole, byte by byte, and split at every offset, and checks the
    /// outcomes agree.
    fn run_all_ways(
        mk: fn() -> Decoder,
        input: &[u8],
        config: &Config,
    ) -> (Vec<u8>, Result<bool, PeerError>, Vec<u8>) {
        let whole = run(mk(), &[input], config);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let by_byte = run(mk(), &bytes, config);
        assert_eq!(whole, by_byte, "byte by byte: {input:?}");
        for i in 0..=input.len() {
            let split = run(mk(), &[&input[..i], &input[i..]], config);
            assert_eq!(whole, split, "split at {i}: {input:?}");
        }
        whole
    }

    fn chunked(input: &[u8]) -> (Vec<u8>, Result<bool, PeerError>, Vec<u8>) {
        run_all_ways(Decoder::chunked, input, &Config::default())
    }

    fn chunked_err(input: &[u8]) -> u16 {
        match chunked(input).1 {
            Err(e) => e.status_hint(),
            Ok(done) => panic!("expected an error, got {done}: {input:?}"),
        }
    }

    #[test]
    fn length_body() {
        let c = Config::default();
        let mk = || Decoder::length(5);
        let (body, done, rest) = run_all_ways(mk, b"hello", &c);
        assert_eq!(
            (body.as_slice(), done, rest.as_slice()),
            (&b"hello"[..], Ok(true), &b""[..])
        );
        let (body, done, rest) = run_all_ways(mk, b"helloGET /", &c);
        assert_eq!(
            (body.as_slice(), done, rest.as_slice()),
            (&b"hello"[..], Ok(true), &b"GET /"[..])
        );
        let (body, done, _) = run(Decoder::length(5), &[b"hel"], &c);
        assert_eq!((body.as_slice(), done), (&b"hel"[..], Ok(false)));
    }

    #[test]
    fn zero_length_ends_at_once() {
        let mut buf = BytesMut::new();
        assert_eq!(
            Decoder::length(0).decode(&mut buf, &Config::default()),
            Ok(Decoded::End)
        );
    }

    #[test]
    fn chunked_simple() {
        let (body, done, rest) = chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        assert_eq!(body, b"hello world");
        assert_eq!(done, Ok(true));
        assert!(rest.is_empty());
    }

    #[test]
    fn chunked_keeps_trailing_bytes() {
        let (body, done, rest) = chunked(b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
        assert_eq!((body.as_slice(), done), (&b"abc"[..], Ok(true)));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn chunked_hex_sizes() {
        let mut input = b"1A\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 26]);
        input.extend_from_slice(b"\r\n000\r\n\r\n");
        let (body, done, _) = chunked(&input);
        assert_eq!((body.len(), done), (26, Ok(true)));
        let (body, done, _) = chunked(b"00001\r\nz\r\n0\r\n\r\n");
        assert_eq!((body.as_slice(), done), (&b"z"[..], Ok(true)));
    }

    #[test]
    fn chunked_incomplete() {
        assert_eq!(chunked(b"5\r\nhel").1, Ok(false));
        assert_eq!(chunked(b"5\r\nhello\r\n0\r\n").1, Ok(false));
    }

    #[test]
    fn chunk_extensions() {
        for ok in [
            &b"3;foo\r\nabc\r\n0\r\n\r\n"[..],
            b"3;foo=bar\r\nabc\r\n0\r\n\r\n",
            b"3 ; foo = bar ;baz\r\nabc\r\n0\r\n\r\n",
            b"3;foo=\"a b\\\"c;\"\r\nabc\r\n0;last\r\n\r\n",
            b"3\t;foo=\"\"\r\nabc\r\n0\r\n\r\n",
        ] {
            assert_eq!(chunked(ok).1, Ok(true), "{ok:?}");
        }
        for bad in [
            &b"3;\r\nabc\r\n0\r\n\r\n"[..],
            b"3;=x\r\nabc\r\n0\r\n\r\n",
            b"3;a=\r\nabc\r\n0\r\n\r\n",
            b"3;a=\"unterminated\r\nabc\r\n0\r\n\r\n",
            b"3;a=b c\r\nabc\r\n0\r\n\r\n",
            b"3;a b\r\nabc\r\n0\r\n\r\n",
            b"3;a\0\r\nabc\r\n0\r\n\r\n",
            b"3;a=\"\x01\"\r\nabc\r\n0\r\n\r\n",
        ] {
            assert_eq!(chunked_err(bad), 400, "{bad:?}");
        }
    }

    #[test]
    fn chunk_line_limit() {
        let c = Config {
            max_chunk_line: 16,
            ..Config::default()
        };
        let ok = b"3;aaaaaaaaaaaaaa\r\nabc\r\n0\r\n\r\n"; // line of exactly 16
        assert_eq!(run_all_ways(Decoder::chunked, ok, &c).1, Ok(true));
        let bad = b"3;aaaaaaaaaaaaaaa\r\nabc\r\n0\r\n\r\n";
        assert_eq!(
            run_all_ways(Decoder::chunked, bad, &c)
                .1
                .map_err(|e| e.status_hint()),
            Err(400)
        );
        // Detected before the line ends.
        let (_, res, _) = run(Decoder::chunked(), &[b"3;aaaaaaaaaaaaaaaaaaaaaa"], &c);
        assert!(res.is_err());
    }

    #[test]
    fn bad_chunk_sizes() {
        for bad in [
            &b"\r\nabc\r\n0\r\n\r\n"[..],
            b"x\r\nabc\r\n0\r\n\r\n",
            b"-3\r\nabc\r\n0\r\n\r\n",
            b"+3\r\nabc\r\n0\r\n\r\n",
            b"0x3\r\nabc\r\n0\r\n\r\n",
            b"3 \r\nabc\r\n0\r\n\r\n",
            b" 3\r\nabc\r\n0\r\n\r\n",
            b"3x\r\nabc\r\n0\r\n\r\n",
            b"10000000000000000\r\n",
            b"FFFFFFFFFFFFFFFFF\r\n",
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabc\n0\r\n\r\n",
            b"3\r\nabcd\r\n0\r\n\r\n",
            b"3\r\nabc\r\r\n0\r\n\r\n",
            b"3\r\nabc0\r\n\r\n",
        ] {
            assert_eq!(chunked_err(bad), 400, "{bad:?}");
        }
    }

    #[test]
    fn huge_chunk_size_ok_without_limit() {
        let (_, res, _) = run(
            Decoder::chunked(),
            &[b"FFFFFFFFFFFFFFFF\r\nabc"],
            &Config::default(),
        );
        assert_eq!(res, Ok(false));
    }

    #[test]
    fn total_overflow_is_rejected() {
        let mut buf = BytesMut::from(&b"FFFFFFFFFFFFFFFF\r\n"[..]);
        let mut dec = Decoder::Chunked(Chunked {
            phase: ChunkPhase::Size,
            total: 1,
            scanned: 0,
            trailer_bytes: 0,
            trailer_fields: 0,
        });
        assert_eq!(
            dec.decode(&mut buf, &Config::default())
                .map_err(|e| e.status_hint()),
            Err(400)
        );
    }

    #[test]
    fn chunked_body_limit() {
        let c = Config {
            max_body_size: Some(5),
            ..Config::default()
        };
        let ok = b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n";
        assert_eq!(run_all_ways(Decoder::chunked, ok, &c).1, Ok(true));
        let bad = b"2\r\nab\r\n4\r\ncdef\r\n0\r\n\r\n";
        let (body, res, _) = run_all_ways(Decoder::chunked, bad, &c);
        assert_eq!(res, Err(PeerError::BodyTooLarge));
        assert_eq!(body, b"ab");
    }

    #[test]
    fn trailers_parsed_and_dropped() {
        let (body, done, rest) =
            chunked(b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum:  abc \r\n\r\nNEXT");
        assert_eq!((body.as_slice(), done), (&b"abc"[..], Ok(true)));
        assert_eq!(rest, b"NEXT");
    }

    #[test]
    fn bad_trailers() {
        for bad in [
            &b"0\r\nNoColon\r\n\r\n"[..],
            b"0\r\nX : y\r\n\r\n",
            b"0\r\n y: z\r\n\r\n",
            b"0\r\nX: a\r\n folded\r\n\r\n",
            b"0\r\nX: a\0b\r\n\r\n",
            b"0\r\nX: a\rb\r\n\r\n",
            b"0\r\n: y\r\n\r\n",
            b"0\r\nX: y\n\r\n",
        ] {
            assert_eq!(chunked_err(bad), 400, "{bad:?}");
        }
    }

    #[test]
    fn trailer_limits() {
        let c = Config {
            max_headers: 1,
            ..Config::default()
        };
        let two = b"0\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            run_all_ways(Decoder::chunked, two, &c).1,
            Err(PeerError::HeadersTooLarge)
        );
        let c = Config {
            max_head_size: 10,
            ..Config::default()
        };
        let long = b"0\r\nA: 1234567890\r\n\r\n";
        assert_eq!(
            run_all_ways(Decoder::chunked, long, &c).1,
            Err(PeerError::HeadersTooLarge)
        );
    }

    #[test]
    fn data_is_zero_copy() {
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let mut dec = Decoder::chunked();
        let Ok(Decoded::Data(d)) = dec.decode(&mut buf, &Config::default()) else {
            panic!("expected data");
        };
        assert_eq!(d.as_ptr() as usize, base + 3);
    }
}
