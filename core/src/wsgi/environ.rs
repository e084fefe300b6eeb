//! A request's WSGI environ variables (PEP 3333 "environ Variables", from
//! CGI, RFC 3875 §4.1), decided from its scope.

use std::borrow::Cow;

use bytes::Bytes;

use crate::asgi::{HttpScope, HttpVersion};
use crate::http;

/// What a request header becomes in the environ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgiName {
    /// `CONTENT_TYPE` or `CONTENT_LENGTH`, which have no `HTTP_` prefix.
    Content(&'static str),
    /// `HTTP_` and the name, uppercase, `-` as `_`.
    Http(String),
    /// Left out: a name with `_` would read the same as one with `-`, so a
    /// client could pass `X_Forwarded_For` off as a proxy's
    /// `X-Forwarded-For` (gunicorn, nginx and Apache drop these too).
    Dropped,
}

/// The environ key of request header `name` (lowercase, as in the scope).
pub fn cgi_name(name: &[u8]) -> CgiName {
    match name {
        b"content-type" => CgiName::Content("CONTENT_TYPE"),
        b"content-length" => CgiName::Content("CONTENT_LENGTH"),
        _ if name.contains(&b'_') => CgiName::Dropped,
        _ => {
            let mut key = String::with_capacity(5 + name.len());
            key.push_str("HTTP_");
            key.extend(name.iter().map(|&b| match b {
                b'-' => '_',
                b => char::from(b.to_ascii_uppercase()),
            }));
            CgiName::Http(key)
        }
    }
}

/// A request's CGI variables. Byte values are decoded as ISO-8859-1 by
/// the frontend ("bytes as native strings", PEP 3333).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environ<'s> {
    /// `REQUEST_METHOD`.
    pub request_method: &'s str,
    /// `SCRIPT_NAME`: where the app is mounted (`--root-path`).
    pub script_name: &'s str,
    /// `PATH_INFO`: the percent-decoded path, as bytes.
    pub path_info: Cow<'s, [u8]>,
    /// `QUERY_STRING`, undecoded.
    pub query_string: &'s [u8],
    /// `SERVER_PROTOCOL`: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` or `HTTP/3`.
    pub server_protocol: &'static str,
    /// `SERVER_NAME`.
    pub server_name: Cow<'s, str>,
    /// `SERVER_PORT`.
    pub server_port: String,
    /// `REMOTE_ADDR`, when the peer has an address (after the proxy
    /// headers were applied, as for the ASGI scope).
    pub remote_addr: Option<&'s str>,
    /// `REMOTE_PORT`, when known (the frontend writes it in decimal).
    pub remote_port: Option<u16>,
    /// `wsgi.url_scheme`.
    pub url_scheme: &'static str,
    /// The request headers to pass on: each name (lowercase; its environ
    /// key is [`cgi_name`]'s) with the values of every field of that name
    /// joined (`,`; `; ` for cookies), in the order each name first
    /// appears. Names [`cgi_name`] drops are left out.
    pub headers: Vec<(&'s [u8], Cow<'s, [u8]>)>,
}

impl<'s> Environ<'s> {
    /// The environ of `scope`'s request.
    pub fn new(scope: &'s HttpScope) -> Self {
        let path = &scope.raw_path[scope.root_path.len().min(scope.raw_path.len())..];
        let (server_name, server_port) = server_of(scope);
        Self {
            request_method: &scope.method,
            script_name: &scope.root_path,
            path_info: http::percent_decode(path),
            query_string: &scope.query_string,
            server_protocol: match scope.http_version {
                HttpVersion::Http10 => "HTTP/1.0",
                HttpVersion::Http11 => "HTTP/1.1",
                HttpVersion::Http2 => "HTTP/2",
                HttpVersion::Http3 => "HTTP/3",
            },
            server_name,
            server_port,
            // A client named by a proxy's header may come without a port.
            remote_addr: scope
                .client
                .as_ref()
                .filter(|c| !c.host.is_empty())
                .map(|c| &*c.host),
            remote_port: scope
                .client
                .as_ref()
                .filter(|c| c.port != 0)
                .map(|c| c.port),
            url_scheme: scope.scheme,
            headers: joined_headers(&scope.headers),
        }
    }
}

/// `SERVER_NAME` and `SERVER_PORT`: the address the request came in on;
/// on a Unix socket, the `Host` the client named.
fn server_of(scope: &HttpScope) -> (Cow<'_, str>, String) {
    if let Some(s) = scope.server.as_ref().filter(|s| s.port != 0) {
        return (Cow::Borrowed(&*s.host), s.port.to_string());
    }
    let default_port = if scope.scheme == "https" { "443" } else { "80" };
    let host = scope
        .headers
        .iter()
        .find(|(n, _)| n.as_ref() == b"host")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .filter(|h| !h.is_empty());
    let Some(host) = host else {
        return (Cow::Borrowed("localhost"), default_port.to_owned());
    };
    // "[::1]:8000", "example.com:8000", "example.com"
    let split = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => Some(i),
        _ => None,
    };
    match split {
        Some(i) => (Cow::Borrowed(&host[..i]), host[i + 1..].to_owned()),
        None => (Cow::Borrowed(host), default_port.to_owned()),
    }
}

/// Joins the fields of each name, in first-appearance order.
fn joined_headers(fields: &[(Bytes, Bytes)]) -> Vec<(&[u8], Cow<'_, [u8]>)> {
    let mut out: Vec<(&[u8], Cow<'_, [u8]>)> = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        if name.contains(&b'_') {
            continue;
        }
        if let Some(i) = out.iter().position(|(n, _)| *n == name.as_ref()) {
            let joined = out[i].1.to_mut();
            joined.extend_from_slice(if name.as_ref() == b"cookie" {
                b"; "
            } else {
                b","
            });
            joined.extend_from_slice(value);
            continue;
        }
        out.push((name.as_ref(), Cow::Borrowed(value.as_ref())));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::asgi::{Address, ConnectionInfo};

    fn scope(target: &[u8], headers: &[(&str, &str)], root: &str, unix: bool) -> HttpScope {
        let addr = |host: &str, port| Address {
            host: Arc::from(host),
            port,
        };
        let conn = ConnectionInfo {
            scheme: "http",
            client: Some(if unix {
                addr("", 0)
            } else {
                addr("10.0.0.7", 51000)
            }),
            server: Some(if unix {
                addr("/run/app.sock", 0)
            } else {
                addr("127.0.0.1", 8000)
            }),
            root_path: root.into(),
        };
        let headers = headers
            .iter()
            .map(|(n, v)| (Bytes::from(n.to_string()), Bytes::from(v.to_string())))
            .collect();
        HttpScope::new(
            HttpVersion::Http11,
            b"POST",
            &Bytes::copy_from_slice(target),
            headers,
            &conn,
        )
        .unwrap()
    }

    #[test]
    fn cgi_variables_of_a_request() {
        let s = scope(
            b"/a%20b/%C3%A9?x=1&y=%20",
            &[("host", "example.com"), ("content-type", "text/plain")],
            "",
            false,
        );
        let e = Environ::new(&s);
        assert_eq!(e.request_method, "POST");
        assert_eq!(e.script_name, "");
        // Bytes, for the frontend to decode as ISO-8859-1 (PEP 3333).
        assert_eq!(&*e.path_info, "/a b/é".as_bytes());
        assert_eq!(e.query_string, b"x=1&y=%20");
        assert_eq!(e.server_protocol, "HTTP/1.1");
        assert_eq!((&*e.server_name, &*e.server_port), ("127.0.0.1", "8000"));
        assert_eq!(e.remote_addr, Some("10.0.0.7"));
        assert_eq!(e.remote_port, Some(51000));
        assert_eq!(e.url_scheme, "http");
        let got: Vec<(&[u8], &[u8])> = e.headers.iter().map(|(k, v)| (*k, &**v)).collect();
        assert_eq!(
            got,
            vec![
                (&b"host"[..], &b"example.com"[..]),
                (&b"content-type"[..], &b"text/plain"[..])
            ]
        );
    }

    #[test]
    fn the_root_path_is_script_name_and_not_path_info() {
        let s = scope(b"/users/1", &[], "/api", false);
        let e = Environ::new(&s);
        assert_eq!(e.script_name, "/api");
        assert_eq!(&*e.path_info, b"/users/1");
    }

    #[test]
    fn repeated_fields_are_joined_and_underscored_names_dropped() {
        let s = scope(
            b"/",
            &[
                ("accept", "a"),
                ("cookie", "a=1"),
                ("x-forwarded-for", "1.2.3.4"),
                ("x_forwarded_for", "6.6.6.6"),
                ("accept", "b"),
                ("cookie", "b=2"),
            ],
            "",
            false,
        );
        let e = Environ::new(&s);
        let got: Vec<(&[u8], &[u8])> = e.headers.iter().map(|(k, v)| (*k, &**v)).collect();
        assert_eq!(
            got,
            vec![
                (&b"accept"[..], &b"a,b"[..]),
                (&b"cookie"[..], &b"a=1; b=2"[..]),
                (&b"x-forwarded-for"[..], &b"1.2.3.4"[..]),
            ]
        );
    }

    #[test]
    fn on_a_unix_socket_the_host_names_the_server() {
        for (host, name, port) in [
            ("example.com:8080", "example.com", "8080"),
            ("example.com", "example.com", "80"),
            ("[::1]:9", "[::1]", "9"),
            ("[::1]", "[::1]", "80"),
        ] {
            let s = scope(b"/", &[("host", host)], "", true);
            let e = Environ::new(&s);
            assert_eq!((&*e.server_name, &*e.server_port), (name, port), "{host}");
            assert_eq!(e.remote_addr, None);
        }
        let mut s = scope(b"/", &[], "", true);
        assert_eq!(&*Environ::new(&s).server_name, "localhost");
        // A client a proxy's header named, without a port.
        s.client = Some(Address {
            host: Arc::from("203.0.113.9"),
            port: 0,
        });
        let e = Environ::new(&s);
        assert_eq!((e.remote_addr, e.remote_port), (Some("203.0.113.9"), None));
    }

    #[test]
    fn cgi_names() {
        assert_eq!(
            cgi_name(b"content-length"),
            CgiName::Content("CONTENT_LENGTH")
        );
        assert_eq!(
            cgi_name(b"x-api-key"),
            CgiName::Http("HTTP_X_API_KEY".into())
        );
        assert_eq!(cgi_name(b"x_api_key"), CgiName::Dropped);
    }
}
