//! `--access-log-format`: the access line compiled once into literal text
//! and named atoms, then rendered per request without parsing or Python.
//!
//! The syntax is Python's `%`-style, as granian's and gunicorn's formats:
//! `%(client)s - "%(request)s" %(status)d`, with `%({name}i)s` for a request
//! header. Atoms:
//!
//! | atom | value |
//! |---|---|
//! | `client`, `addr`, `h` | client `host:port` |
//! | `method`, `m` | request method |
//! | `path`, `U` | path, without the query |
//! | `query`, `query_string`, `q` | query string (empty when none) |
//! | `request`, `r` | `METHOD target HTTP/version` |
//! | `protocol`, `H` | `HTTP/1.1`, `HTTP/2`... |
//! | `scheme` | `http`, `https`, `ws`, `wss` |
//! | `status`, `s` | response status |
//! | `bytes`, `size`, `b` | response body bytes |
//! | `duration`, `dt_ms`, `M` | milliseconds, 3 decimals unless a precision is given |
//! | `request_id` | the request's ID (`--request-id`; `-` when off) |
//! | `trace_id`, `span_id` | from the W3C `traceparent` header (`-` when absent or malformed) |
//! | `{name}i` | the request header `name` (`-` when absent) |

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// What one access line can show about a request.
pub struct AccessEntry<'a> {
    pub client: &'a str,
    pub method: &'a [u8],
    /// The request-target as sent (path and query).
    pub target: &'a [u8],
    /// "1.0", "1.1" or "2".
    pub version: &'a str,
    pub scheme: &'a str,
    pub status: u16,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Values of the headers the format names, in `AccessFormat::headers`
    /// order (None when absent).
    pub headers: &'a [Option<Bytes>],
    /// The request's ID, with `--request-id`.
    pub request_id: Option<&'a [u8]>,
}

/// What is kept of a request from its start until its access line.
pub struct AccessStart {
    pub started: Instant,
    pub method: Bytes,
    /// The request-target as sent.
    pub target: Bytes,
    /// "1.0", "1.1" or "2".
    pub version: &'static str,
    /// The request headers the format shows.
    pub headers: Vec<Option<Bytes>>,
    /// The client named by a trusted proxy, shown instead of the peer.
    pub forwarded_client: Option<String>,
    /// The request's ID, with `--request-id`.
    pub request_id: Option<Bytes>,
}

impl AccessStart {
    /// Notes the client a trusted proxy named (`client` of the scope after
    /// the proxy headers were applied).
    pub fn forwarded(&mut self, client: Option<&cormorant_core::asgi::Address>) {
        self.forwarded_client = Some(match client {
            Some(c) => format!("{}:{}", c.host, c.port),
            None => "-".to_owned(),
        });
    }

    /// The entry for the finished request.
    pub fn entry<'a>(
        &'a self,
        client: &'a str,
        scheme: &'a str,
        status: u16,
        bytes: u64,
    ) -> AccessEntry<'a> {
        AccessEntry {
            client: self.forwarded_client.as_deref().unwrap_or(client),
            method: &self.method,
            target: &self.target,
            version: self.version,
            scheme,
            status,
            bytes,
            elapsed: self.started.elapsed(),
            headers: &self.headers,
            request_id: self.request_id.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Client,
    Method,
    Path,
    Query,
    Request,
    Protocol,
    Scheme,
    Status,
    Bytes,
    Duration(usize),
    Header(usize),
    RequestId,
    /// The trace or span ID of the `traceparent` header captured at this
    /// index.
    Trace(usize, TracePart),
}

/// Which ID of a W3C `traceparent` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TracePart {
    Trace,
    Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Atom(Atom),
}

/// A compiled access-log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFormat {
    parts: Vec<Part>,
    /// Lowercase names of the request headers the format shows.
    headers: Vec<Vec<u8>>,
}

/// The line written when no format is given (also uvicorn's shape).
pub const DEFAULT_FORMAT: &str =
    r#"%(client)s - "%(request)s" %(status)s %(bytes)s %(duration)sms"#;

impl AccessFormat {
    /// Compiles `format`; the error names what is wrong.
    pub fn parse(format: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut headers: Vec<Vec<u8>> = Vec::new();
        let mut text = String::new();
        let mut rest = format;
        while let Some(i) = rest.find('%') {
            text.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('%') {
                text.push('%');
                rest = r;
                continue;
            }
            let Some(r) = rest.strip_prefix('(') else {
                return Err(format!(
                    "invalid access log format {format:?}: '%' must start '%(name)s' (or be '%%')"
                ));
            };
            let close = r
                .find(')')
                .ok_or_else(|| format!("invalid access log format {format:?}: unclosed '%('"))?;
            let name = &r[..close];
            rest = &r[close + 1..];
            // The conversion: flags, width, precision, then a type letter.
            let spec_len = rest
                .find(|c: char| c.is_ascii_alphabetic())
                .ok_or_else(|| {
                    format!(
                        "invalid access log format {format:?}: '%({name})' needs a type such as 's'"
                    )
                })?;
            let spec = &rest[..spec_len];
            rest = &rest[spec_len + 1..];
            let precision = spec
                .split_once('.')
                .and_then(|(_, p)| p.parse::<usize>().ok());
            let atom = match name {
                "client" | "addr" | "h" => Atom::Client,
                "method" | "m" => Atom::Method,
                "path" | "U" => Atom::Path,
                "query" | "query_string" | "q" => Atom::Query,
                "request" | "r" => Atom::Request,
                "protocol" | "H" => Atom::Protocol,
                "scheme" => Atom::Scheme,
                "status" | "s" => Atom::Status,
                "bytes" | "size" | "b" => Atom::Bytes,
                "duration" | "dt_ms" | "M" => Atom::Duration(precision.unwrap_or(3)),
                "request_id" => Atom::RequestId,
                "trace_id" => Atom::Trace(capture(&mut headers, "traceparent"), TracePart::Trace),
                "span_id" => Atom::Trace(capture(&mut headers, "traceparent"), TracePart::Span),
                _ => match name.strip_prefix('{').and_then(|n| n.strip_suffix("}i")) {
                    Some(header) => Atom::Header(capture(&mut headers, header)),
                    None => {
                        return Err(format!(
                            "unknown access log atom {name:?} (known: client, method, path, query, request, protocol, scheme, status, bytes, duration, request_id, trace_id, span_id, {{header}}i)"
                        ));
                    }
                },
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Atom(atom));
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { parts, headers })
    }

    /// The request headers the format shows, lowercase.
    #[cfg(test)]
    pub fn headers(&self) -> &[Vec<u8>] {
        &self.headers
    }

    /// The values of `headers` in a request's header list.
    pub fn capture(&self, request_headers: &[(Bytes, Bytes)]) -> Vec<Option<Bytes>> {
        self.headers
            .iter()
            .map(|want| {
                request_headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(want))
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }

    /// Appends the line for `e` (without a newline).
    pub fn render(&self, e: &AccessEntry<'_>, out: &mut String) {
        let (path, query) = split_target(e.target);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Atom(a) => match *a {
                    Atom::Client => out.push_str(e.client),
                    Atom::Method => push_lossy(out, e.method),
                    Atom::Path => push_lossy(out, path),
                    Atom::Query => push_lossy(out, query),
                    Atom::Request => {
                        push_lossy(out, e.method);
                        out.push(' ');
                        push_lossy(out, e.target);
                        let _ = write!(out, " HTTP/{}", e.version);
                    }
                    Atom::Protocol => {
                        let _ = write!(out, "HTTP/{}", e.version);
                    }
                    Atom::Scheme => out.push_str(e.scheme),
                    Atom::Status => {
                        let _ = write!(out, "{}", e.status);
                    }
                    Atom::Bytes => {
                        let _ = write!(out, "{}", e.bytes);
                    }
                    Atom::Duration(p) => {
                        let _ = write!(out, "{:.*}", p, e.elapsed.as_secs_f64() * 1000.0);
                    }
                    Atom::Header(i) => match e.headers.get(i).and_then(Option::as_ref) {
                        Some(v) => push_lossy(out, v),
                        None => out.push('-'),
                    },
                    Atom::RequestId => push_lossy(out, e.request_id.unwrap_or(b"-")),
                    Atom::Trace(i, part) => {
                        let ids = e
                            .headers
                            .get(i)
                            .and_then(Option::as_deref)
                            .and_then(traceparent);
                        push_lossy(
                            out,
                            ids.map_or(b"-", |(trace, span)| match part {
                                TracePart::Trace => trace,
                                TracePart::Span => span,
                            }),
                        );
                    }
                },
            }
        }
    }

    /// Appends `e` as one JSON object (for `--log-json`), with every atom.
    pub fn render_json(&self, e: &AccessEntry<'_>, out: &mut String) {
        let (path, query) = split_target(e.target);
        out.push_str("{\"level\":\"INFO\",\"logger\":\"cormorant.access\",\"client\":");
        json_str(out, e.client.as_bytes());
        out.push_str(",\"method\":");
        json_str(out, e.method);
        out.push_str(",\"path\":");
        json_str(out, path);
        out.push_str(",\"query\":");
        json_str(out, query);
        let _ = write!(
            out,
            ",\"protocol\":\"HTTP/{}\",\"scheme\":\"{}\",\"status\":{},\"bytes\":{},\"duration_ms\":{:.3}",
            e.version,
            e.scheme,
            e.status,
            e.bytes,
            e.elapsed.as_secs_f64() * 1000.0
        );
        if let Some(id) = e.request_id {
            out.push_str(",\"request_id\":");
            json_str(out, id);
        }
        for (name, value) in self.headers.iter().zip(e.headers) {
            out.push(',');
            json_str(out, name);
            out.push(':');
            match value {
                Some(v) => json_str(out, v),
                None => out.push_str("null"),
            }
        }
        out.push('}');
    }
}

impl Default for AccessFormat {
    fn default() -> Self {
        Self::parse(DEFAULT_FORMAT).unwrap_or(Self {
            parts: Vec::new(),
            headers: Vec::new(),
        })
    }
}

/// The index of request header `name` (lowercased) among those captured,
/// added if new.
fn capture(headers: &mut Vec<Vec<u8>>, name: &str) -> usize {
    let name = name.to_ascii_lowercase().into_bytes();
    headers.iter().position(|h| *h == name).unwrap_or_else(|| {
        headers.push(name);
        headers.len() - 1
    })
}

/// The trace ID and parent (span) ID of a W3C Trace Context `traceparent`
/// value, `00-<32 hex>-<16 hex>-<2 hex>`; None when malformed or all-zero
/// (an invalid ID, says the spec). Later versions may add fields after
/// the flags, which are ignored.
fn traceparent(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let hex = |s: &[u8], n: usize| {
        s.len() == n
            && s.iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    let mut fields = v.split(|&c| c == b'-');
    let (version, trace, span, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let ok = hex(version, 2)
        && version != b"ff"
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.iter().any(|&c| c != b'0')
        && span.iter().any(|&c| c != b'0')
        && (version != b"00" || fields.next().is_none());
    ok.then_some((trace, span))
}

fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|&c| c == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &[]),
    }
}

fn push_lossy(out: &mut String, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(b)),
    }
}

/// A JSON string literal of `b` (invalid UTF-8 replaced).
fn json_str(out: &mut String, b: &[u8]) {
    out.push('"');
    for c in String::from_utf8_lossy(b).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(headers: &'a [Option<Bytes>]) -> AccessEntry<'a> {
        AccessEntry {
            client: "1.2.3.4:5",
            method: b"GET",
            target: b"/a/b?x=1",
            version: "1.1",
            scheme: "https",
            status: 201,
            bytes: 42,
            elapsed: Duration::from_micros(1500),
            headers,
            request_id: None,
        }
    }

    #[test]
    fn request_and_trace_ids() {
        let f = AccessFormat::parse("%(request_id)s %(trace_id)s %(span_id)s").unwrap();
        assert_eq!(f.headers(), [b"traceparent".to_vec()]);
        let tp = Bytes::from_static(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let headers = [Some(tp)];
        let mut e = entry(&headers);
        e.request_id = Some(b"abc");
        let mut out = String::new();
        f.render(&e, &mut out);
        assert_eq!(out, "abc 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7");
        for bad in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            let headers = [Some(Bytes::copy_from_slice(bad))];
            let mut out = String::new();
            f.render(&entry(&headers), &mut out);
            assert_eq!(out, "- - -", "{bad:?}");
        }
        // A later version may add fields.
        let headers = [Some(Bytes::from_static(
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ))];
        let mut out = String::new();
        f.render(&entry(&headers), &mut out);
        assert_eq!(out, "- 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7");
    }

    fn render(format: &str, headers: &[Option<Bytes>]) -> String {
        let mut out = String::new();
        AccessFormat::parse(format)
            .unwrap()
            .render(&entry(headers), &mut out);
        out
    }

    #[test]
    fn default_format_is_the_classic_line() {
        assert_eq!(
            render(DEFAULT_FORMAT, &[]),
            r#"1.2.3.4:5 - "GET /a/b?x=1 HTTP/1.1" 201 42 1.500ms"#
        );
    }

    #[test]
    fn every_atom_and_its_aliases() {
        assert_eq!(
            render(
                "%(addr)s|%(m)s|%(path)s|%(query_string)s|%(protocol)s|%(scheme)s|%(s)d|%(size)d|%(dt_ms).1f|100%%",
                &[]
            ),
            "1.2.3.4:5|GET|/a/b|x=1|HTTP/1.1|https|201|42|1.5|100%"
        );
    }

    #[test]
    fn header_atoms_are_captured_case_insensitively() {
        let f =
            AccessFormat::parse("%({User-Agent}i)s %({x-missing}i)s %({user-agent}i)s").unwrap();
        assert_eq!(f.headers(), [b"user-agent".to_vec(), b"x-missing".to_vec()]);
        let captured = f.capture(&[(
            Bytes::from_static(b"user-agent"),
            Bytes::from_static(b"curl/8"),
        )]);
        let mut out = String::new();
        f.render(&entry(&captured), &mut out);
        assert_eq!(out, "curl/8 - curl/8");
    }

    #[test]
    fn bad_formats_are_refused_with_a_reason() {
        for (f, needle) in [
            ("%(nope)s", "unknown access log atom"),
            ("%(client", "unclosed"),
            ("%d", "must start"),
            ("%(client)", "needs a type"),
        ] {
            let e = AccessFormat::parse(f).unwrap_err();
            assert!(e.contains(needle), "{f}: {e}");
        }
    }

    #[test]
    fn json_lines_escape_and_carry_every_field() {
        let f = AccessFormat::parse("%({referer}i)s").unwrap();
        let headers = [Some(Bytes::from_static(b"a\"b"))];
        let mut out = String::new();
        f.render_json(&entry(&headers), &mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["status"], 201);
        assert_eq!(v["path"], "/a/b");
        assert_eq!(v["query"], "x=1");
        assert_eq!(v["referer"], "a\"b");
        assert_eq!(v["duration_ms"], 1.5);
    }
}
