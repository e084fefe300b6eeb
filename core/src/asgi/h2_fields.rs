//! How HTTP/2 (and HTTP/3) fields map onto ASGI and back: the rules that
//! differ from HTTP/1.1, decided here so that every frontend maps the same
//! way whichever protocol library carries the frames.

use bytes::Bytes;

/// The scope's header list for a request: `host` first, made from
/// `:authority` (RFC 9113 §8.3.1, which then wins over a `host` field), then
/// the fields in order, the `cookie` fields joined into one with `"; "`
/// (RFC 9113 §8.2.3), as an HTTP/1.1 application expects them.
pub fn request_headers<'a>(
    authority: Option<&[u8]>,
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Vec<(Bytes, Bytes)> {
    let fields = fields.into_iter();
    let mut out = Vec::with_capacity(fields.size_hint().0 + 1);
    if let Some(a) = authority {
        out.push((Bytes::from_static(b"host"), Bytes::copy_from_slice(a)));
    }
    let mut cookie: Option<Vec<u8>> = None;
    for (name, value) in fields {
        if name == b"host" && authority.is_some() {
            continue;
        }
        if name == b"cookie" {
            match &mut cookie {
                Some(c) => {
                    c.extend_from_slice(b"; ");
                    c.extend_from_slice(value);
                }
                None => cookie = Some(value.to_vec()),
            }
            continue;
        }
        out.push((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
    }
    if let Some(c) = cookie {
        out.push((Bytes::from_static(b"cookie"), Bytes::from(c)));
    }
    out
}

/// Whether a response field only means something on an HTTP/1.1
/// connection (RFC 9113 §8.2.2): such fields are dropped from what the
/// application sends, since sending them is a protocol error.
pub fn is_connection_specific(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// The fields the server adds to every response of its own protocol
/// stack: `server`, `date` and the configured extras, in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFields {
    /// The `server` value, or `None` to send none.
    pub server: Option<Bytes>,
    /// Whether to send `date`.
    pub date: bool,
    /// Fields added to every response.
    pub extra: Vec<(Bytes, Bytes)>,
}

/// The field list of an HTTP/2 or HTTP/3 response: the server's own fields
/// first (`date` is asked for only when sent), then the application's
/// without the connection-specific ones (RFC 9113 §8.2.2).
pub fn response_fields(
    own: &ServerFields,
    date: impl FnOnce() -> Bytes,
    app: Vec<(Bytes, Bytes)>,
) -> Vec<(Bytes, Bytes)> {
    let mut out = Vec::with_capacity(app.len() + own.extra.len() + 2);
    if let Some(server) = &own.server {
        out.push((Bytes::from_static(b"server"), server.clone()));
    }
    if own.date {
        out.push((Bytes::from_static(b"date"), date()));
    }
    out.extend(own.extra.iter().cloned());
    out.extend(app.into_iter().filter(|(n, _)| !is_connection_specific(n)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(
        authority: Option<&[u8]>,
        fields: &[(&'static [u8], &'static [u8])],
    ) -> Vec<(Bytes, Bytes)> {
        request_headers(authority, fields.iter().map(|&(n, v)| (n, v)))
    }

    #[test]
    fn authority_becomes_host_first_and_wins() {
        let h = map(
            Some(b"example.com"),
            &[(b"accept", b"*/*"), (b"host", b"other")],
        );
        assert_eq!(
            h[0],
            (
                Bytes::from_static(b"host"),
                Bytes::from_static(b"example.com")
            )
        );
        assert_eq!(h.len(), 2, "the host field gives way to :authority: {h:?}");
        let h = map(None, &[(b"host", b"h")]);
        assert_eq!(h, [(Bytes::from_static(b"host"), Bytes::from_static(b"h"))]);
    }

    #[test]
    fn cookies_join_into_one_field() {
        let h = map(
            None,
            &[(b"cookie", b"a=1"), (b"x", b"y"), (b"cookie", b"b=2")],
        );
        assert_eq!(h[0].0.as_ref(), b"x");
        assert_eq!(
            h[1],
            (
                Bytes::from_static(b"cookie"),
                Bytes::from_static(b"a=1; b=2")
            )
        );
    }

    #[test]
    fn connection_specific_fields() {
        for n in [
            "Connection",
            "keep-alive",
            "Transfer-Encoding",
            "upgrade",
            "proxy-connection",
        ] {
            assert!(is_connection_specific(n.as_bytes()), "{n}");
        }
        assert!(!is_connection_specific(b"content-length"));
        assert!(!is_connection_specific(b"te"));
    }

    #[test]
    fn response_fields_put_the_servers_first_and_drop_hop_by_hop() {
        let own = ServerFields {
            server: Some(Bytes::from_static(b"cormorant")),
            date: false,
            extra: vec![(Bytes::from_static(b"x-a"), Bytes::from_static(b"1"))],
        };
        let app = vec![
            (
                Bytes::from_static(b"Connection"),
                Bytes::from_static(b"close"),
            ),
            (
                Bytes::from_static(b"content-type"),
                Bytes::from_static(b"text/plain"),
            ),
        ];
        let names: Vec<_> = response_fields(&own, || unreachable!("no date"), app)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["server", "x-a", "content-type"]);
    }
}
