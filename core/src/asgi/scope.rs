//! The ASGI connection scope as plain data (ASGI HTTP spec 2.5, "Connection
//! Scope"). Frontends turn it into their host language's mapping.

use bytes::Bytes;

use crate::PeerError;
use crate::http;

/// `asgi["version"]`: the ASGI version this server speaks.
pub const ASGI_VERSION: &str = "3.0";
/// `asgi["spec_version"]` of the HTTP scope.
pub const HTTP_SPEC_VERSION: &str = "2.5";

/// The HTTP version named in `scope["http_version"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// "1.0"
    Http10,
    /// "1.1"
    Http11,
    /// "2"
    Http2,
    /// "3"
    Http3,
}

impl HttpVersion {
    /// The string ASGI uses for this version.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "1.0",
            Self::Http11 => "1.1",
            Self::Http2 => "2",
            Self::Http3 => "3",
        }
    }
}

impl From<crate::h1::Version> for HttpVersion {
    fn from(v: crate::h1::Version) -> Self {
        match v {
            crate::h1::Version::Http10 => Self::Http10,
            crate::h1::Version::Http11 => Self::Http11,
        }
    }
}

/// A host and port, as in `scope["client"]` and `scope["server"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// IP address in text form, or a Unix socket path. Shared: each
    /// request's scope clones its connection's addresses.
    pub host: std::sync::Arc<str>,
    /// Port; 0 for a Unix socket.
    pub port: u16,
}

/// The scope of one HTTP request, as plain data. `state` and `extensions`
/// are host objects and are added by the frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpScope {
    /// `scope["http_version"]`.
    pub http_version: HttpVersion,
    /// `scope["method"]`, uppercase as sent.
    pub method: String,
    /// `scope["scheme"]`: "http" or "https".
    pub scheme: &'static str,
    /// `scope["path"]`: `root_path` followed by the percent-decoded path.
    pub path: String,
    /// `scope["raw_path"]`: the path as sent, without the query string,
    /// prefixed by `root_path`.
    pub raw_path: Bytes,
    /// `scope["query_string"]`: the bytes after `?`, undecoded.
    pub query_string: Bytes,
    /// `scope["root_path"]`.
    pub root_path: String,
    /// `scope["headers"]`: lowercase names, order and duplicates kept.
    pub headers: Vec<(Bytes, Bytes)>,
    /// `scope["client"]`, when known.
    pub client: Option<Address>,
    /// `scope["server"]`, when known.
    pub server: Option<Address>,
}

/// What the frontend knows about the connection a request arrived on.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    /// "http" or "https".
    pub scheme: &'static str,
    /// The peer address.
    pub client: Option<Address>,
    /// The local address.
    pub server: Option<Address>,
    /// The mount point of the application (`--root-path`).
    pub root_path: String,
}

impl HttpScope {
    /// Builds the scope of a request from its method, request-target and
    /// headers. The target may be in origin-form (`/a?b`), absolute-form
    /// (`http://h/a?b`, RFC 9112 §3.2.2) or asterisk-form (`*`).
    ///
    /// `raw_path` and `query_string` are views of `target`, not copies.
    pub fn new(
        http_version: HttpVersion,
        method: &[u8],
        target: &Bytes,
        headers: Vec<(Bytes, Bytes)>,
        conn: &ConnectionInfo,
    ) -> Result<Self, PeerError> {
        let method = std::str::from_utf8(method)
            .map_err(|_| PeerError::BadRequest("invalid method"))?
            .to_owned();
        let (raw_path, query_string) = split_target(target)?;
        let view = |part: &[u8]| {
            let within = target.as_ptr_range();
            if part.is_empty() {
                Bytes::new()
            } else if within.contains(&part.as_ptr()) {
                target.slice_ref(part)
            } else {
                // The "/" an absolute-form target without a path stands for.
                Bytes::copy_from_slice(part)
            }
        };
        let decoded = percent_decode(raw_path);
        let path = if conn.root_path.is_empty() {
            decoded
        } else {
            let mut p = String::with_capacity(conn.root_path.len() + decoded.len());
            p.push_str(&conn.root_path);
            p.push_str(&decoded);
            p
        };
        let raw_path = if conn.root_path.is_empty() {
            view(raw_path)
        } else {
            let mut v = Vec::with_capacity(conn.root_path.len() + raw_path.len());
            v.extend_from_slice(conn.root_path.as_bytes());
            v.extend_from_slice(raw_path);
            Bytes::from(v)
        };
        Ok(Self {
            http_version,
            method,
            scheme: if conn.scheme.is_empty() {
                "http"
            } else {
                conn.scheme
            },
            path,
            raw_path,
            query_string: view(query_string),
            root_path: conn.root_path.clone(),
            headers,
            client: conn.client.clone(),
            server: conn.server.clone(),
        })
    }
}

/// Splits a request-target into its path and query (RFC 9112 §3.2).
fn split_target(target: &[u8]) -> Result<(&[u8], &[u8]), PeerError> {
    if target.is_empty() {
        return Err(PeerError::BadRequest("empty request-target"));
    }
    let target = if target[0] == b'/' || target == b"*" {
        target
    } else {
        // absolute-form: scheme "://" authority path-abempty [ "?" query ]
        let after_scheme = memchr::memmem::find(target, b"://")
            .map(|i| &target[i + 3..])
            .ok_or(PeerError::BadRequest("invalid request-target"))?;
        match memchr::memchr2(b'/', b'?', after_scheme) {
            Some(i) if after_scheme[i] == b'/' => &after_scheme[i..],
            // "http://h?q" has an empty path, which means "/"
            Some(i) => {
                return Ok((b"/", &after_scheme[i + 1..]));
            }
            None => b"/",
        }
    };
    Ok(match memchr::memchr(b'?', target) {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    })
}

/// Percent-decodes a path into UTF-8; invalid UTF-8 becomes U+FFFD, as
/// Python's `urllib.parse.unquote` does.
fn percent_decode(raw: &[u8]) -> String {
    String::from_utf8_lossy(&http::percent_decode(raw)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(target: &[u8], root: &str) -> HttpScope {
        let conn = ConnectionInfo {
            root_path: root.into(),
            ..Default::default()
        };
        HttpScope::new(
            HttpVersion::Http11,
            b"GET",
            &Bytes::copy_from_slice(target),
            vec![],
            &conn,
        )
        .unwrap()
    }

    #[test]
    fn origin_form_splits_path_and_query() {
        let s = scope(b"/a/b?x=1&y=%20", "");
        assert_eq!(s.path, "/a/b");
        assert_eq!(&s.raw_path[..], b"/a/b");
        assert_eq!(&s.query_string[..], b"x=1&y=%20");
        assert_eq!(s.scheme, "http");
    }

    #[test]
    fn raw_path_and_query_string_are_views_of_the_target() {
        let target = Bytes::from_static(b"/a/b?x=1");
        let s = HttpScope::new(
            HttpVersion::Http11,
            b"GET",
            &target,
            vec![],
            &ConnectionInfo::default(),
        )
        .unwrap();
        let within = target.as_ptr_range();
        assert!(within.contains(&s.raw_path.as_ptr()));
        assert!(within.contains(&s.query_string.as_ptr()));
        assert_eq!(
            (&s.raw_path[..], &s.query_string[..]),
            (&b"/a/b"[..], &b"x=1"[..])
        );
    }

    #[test]
    fn path_is_percent_decoded_utf8() {
        let s = scope(b"/caf%C3%A9/%2F%zz%", "");
        assert_eq!(s.path, "/caf\u{e9}//%zz%");
        assert_eq!(&s.raw_path[..], b"/caf%C3%A9/%2F%zz%");
        let s = scope(b"/bad%FF", "");
        assert_eq!(s.path, "/bad\u{fffd}");
    }

    #[test]
    fn absolute_form_keeps_only_path() {
        let s = scope(b"http://example.com/x?q", "");
        assert_eq!(s.path, "/x");
        assert_eq!(&s.query_string[..], b"q");
        let s = scope(b"http://example.com", "");
        assert_eq!(s.path, "/");
        let s = scope(b"http://example.com?z", "");
        assert_eq!(s.path, "/");
        assert_eq!(&s.query_string[..], b"z");
    }

    #[test]
    fn root_path_prefixes_path_and_raw_path() {
        let s = scope(b"/items", "/api");
        assert_eq!(s.path, "/api/items");
        assert_eq!(&s.raw_path[..], b"/api/items");
        assert_eq!(s.root_path, "/api");
    }

    #[test]
    fn asterisk_form() {
        assert_eq!(scope(b"*", "").path, "*");
    }

    #[test]
    fn garbage_target_is_rejected() {
        let conn = ConnectionInfo::default();
        let r = HttpScope::new(
            HttpVersion::Http11,
            b"GET",
            &Bytes::from_static(b"nope"),
            vec![],
            &conn,
        );
        assert_eq!(r.unwrap_err().status_hint(), 400);
    }
}
