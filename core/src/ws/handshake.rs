//! The opening handshake, server side (RFC 6455 §4.2) and the negotiation
//! of permessage-deflate (RFC 7692 §5, §7.1).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use sha1::{Digest, Sha1};

use crate::h1::{ResponseHead, Version};
use crate::http::{is_token, list, trim_ows};

/// The GUID appended to the key (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64 of the SHA-1 of
/// the key followed by the GUID (RFC 6455 §4.2.2 item 5.4).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    BASE64.encode(sha.finalize())
}

/// Why an upgrade request is not a valid WebSocket opening handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The method is not GET (RFC 6455 §4.2.1 item 1).
    #[error("websocket handshake method must be GET")]
    Method,
    /// The request is HTTP/1.0 (RFC 6455 §4.2.1 item 1 asks for 1.1).
    #[error("websocket handshake needs HTTP/1.1")]
    HttpVersion,
    /// No `Upgrade` field with the `websocket` token (item 3).
    #[error("missing upgrade: websocket")]
    MissingUpgrade,
    /// No `Connection` field with the `upgrade` token (item 4).
    #[error("missing connection: upgrade")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` is missing, repeated or not the base64 of 16
    /// bytes (item 5).
    #[error("invalid or missing sec-websocket-key")]
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing, repeated or not 13 (item 6);
    /// answer 426 with `Sec-WebSocket-Version: 13` (§4.2.2 item 4).
    #[error("unsupported sec-websocket-version")]
    UnsupportedVersion,
    /// The upgrade request has a body: the bytes after its head belong to
    /// the WebSocket connection, so a body would be read as frames.
    #[error("websocket handshake with a request body")]
    Body,
    /// An extended CONNECT (RFC 8441 §4, RFC 9220 §3) names a protocol other
    /// than `websocket` in `:protocol`: one this server does not speak.
    #[error("extended connect for a protocol other than websocket")]
    Protocol,
}

impl HandshakeError {
    /// The HTTP status to answer with: 426 Upgrade Required for a version
    /// problem, 501 Not Implemented for a tunnel to another protocol, 400
    /// otherwise.
    pub fn status_hint(&self) -> u16 {
        match self {
            Self::UnsupportedVersion => 426,
            Self::Protocol => 501,
            _ => 400,
        }
    }

    /// The answer to a refused handshake, on any protocol: the head (see
    /// [`denial_head`]) and its plain-text body.
    pub fn response(&self) -> (ResponseHead, &'static [u8]) {
        let status = self.status_hint();
        let body: &'static [u8] = match status {
            426 => b"Upgrade Required",
            501 => b"Not Implemented",
            _ => b"Bad WebSocket handshake",
        };
        (denial_head(status, body), body)
    }
}

/// The head of a handshake answered with `status` and a plain-text `body`
/// (a refusal, or the application's denial): a `426` names the version
/// spoken in `Sec-WebSocket-Version: 13` (RFC 6455 §4.4); an empty body
/// has no type, only its length.
pub fn denial_head(status: u16, body: &[u8]) -> ResponseHead {
    let mut headers = crate::http::plain_text_fields(body);
    if body.is_empty() {
        headers.remove(0);
    }
    if status == 426 {
        headers.push((
            Bytes::from_static(b"sec-websocket-version"),
            Bytes::from_static(b"13"),
        ));
    }
    ResponseHead { status, headers }
}

/// One permessage-deflate offer from `Sec-WebSocket-Extensions` (RFC 7692
/// §7.1). Offers with unknown, repeated or invalid parameters are dropped
/// while parsing (§7.1: the server declines them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateOffer {
    /// The client asks the server not to keep its compression context.
    pub server_no_context_takeover: bool,
    /// The client will not keep its compression context.
    pub client_no_context_takeover: bool,
    /// The largest window (8..=15) the server may compress with.
    pub server_max_window_bits: Option<u8>,
    /// The client supports limiting its window: `Some(None)` without a
    /// value, `Some(Some(n))` with its own limit.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// The agreed permessage-deflate parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// LZ77 window of the server's compressor, 8..=15.
    pub server_max_window_bits: u8,
    /// LZ77 window of the client's compressor, 8..=15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// A validated WebSocket opening handshake: an HTTP/1.1 upgrade request,
/// or an HTTP/2 or HTTP/3 extended CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The `Sec-WebSocket-Key` value of an HTTP/1.1 upgrade, trimmed (give
    /// it to [`accept_key`]); None for an extended CONNECT, which has no key
    /// (RFC 8441 §5).
    pub key: Option<Bytes>,
    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in order.
    pub subprotocols: Vec<String>,
    /// The valid permessage-deflate offers, in order of preference.
    pub deflate_offers: Vec<DeflateOffer>,
}

/// Splits on `sep` outside of quoted strings.
fn split_unquoted(s: &[u8], sep: u8) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in s.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A window size value: `8`..`15` without leading zeros, possibly quoted
/// (RFC 7692 §7.1.2.1, §7.1.2.2).
fn window_bits(value: &[u8]) -> Option<u8> {
    let v = match value {
        [b'"', inner @ .., b'"'] => inner,
        v => v,
    };
    let n = match v {
        [d @ b'8'..=b'9'] => d - b'0',
        [b'1', d @ b'0'..=b'5'] => 10 + d - b'0',
        _ => return None,
    };
    Some(n)
}

/// Parses the parameters of one permessage-deflate offer; `None` if it must
/// be declined.
fn parse_offer(params: &[&[u8]]) -> Option<DeflateOffer> {
    let mut offer = DeflateOffer {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        client_max_window_bits: None,
    };
    for param in params {
        let (name, value) = match param.iter().position(|&b| b == b'=') {
            Some(i) => (trim_ows(&param[..i]), Some(trim_ows(&param[i + 1..]))),
            None => (trim_ows(param), None),
        };
        match (name.to_ascii_lowercase().as_slice(), value) {
            (b"server_no_context_takeover", None) if !offer.server_no_context_takeover => {
                offer.server_no_context_takeover = true;
            }
            (b"client_no_context_takeover", None) if !offer.client_no_context_takeover => {
                offer.client_no_context_takeover = true;
            }
            (b"server_max_window_bits", Some(v)) if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(v)?);
            }
            (b"client_max_window_bits", v) if offer.client_max_window_bits.is_none() => {
                offer.client_max_window_bits = Some(match v {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                });
            }
            // Unknown, repeated, or with a missing or extra value.
            _ => return None,
        }
    }
    Some(offer)
}

/// The values of the fields named `name` (lowercase).
fn field_values<'a>(
    headers: &'a [(Bytes, Bytes)],
    name: &'static [u8],
) -> impl Iterator<Item = &'a Bytes> {
    headers
        .iter()
        .filter(move |(n, _)| n.as_ref() == name)
        .map(|(_, v)| v)
}

/// `Sec-WebSocket-Version` must be present once, and 13 (RFC 6455 §4.2.1
/// item 6; RFC 8441 §5 keeps it).
fn check_version(headers: &[(Bytes, Bytes)]) -> Result<(), HandshakeError> {
    let mut versions = field_values(headers, b"sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some(v), None) if trim_ows(v) == b"13" => Ok(()),
        _ => Err(HandshakeError::UnsupportedVersion),
    }
}

impl Handshake {
    /// Validates an upgrade request (RFC 6455 §4.2.1): method GET, HTTP/1.1,
    /// `Upgrade` with the `websocket` token (case-insensitive, in a list),
    /// `Connection` with the `upgrade` token, `Sec-WebSocket-Version: 13`
    /// and a `Sec-WebSocket-Key` that is the base64 of 16 bytes; and no
    /// request body.
    pub fn from_head(head: &crate::h1::RequestHead) -> Result<Self, HandshakeError> {
        if head.body != crate::h1::BodyKind::Empty {
            return Err(HandshakeError::Body);
        }
        Self::from_request(&head.method, head.version, &head.headers)
    }

    /// [`Self::from_head`] for the parts of a head. `headers` are
    /// (lowercase name, value) pairs as in
    /// [`crate::h1::RequestHead::headers`].
    pub fn from_request(
        method: &[u8],
        version: Version,
        headers: &[(Bytes, Bytes)],
    ) -> Result<Self, HandshakeError> {
        if method != b"GET" {
            return Err(HandshakeError::Method);
        }
        if version != Version::Http11 {
            return Err(HandshakeError::HttpVersion);
        }
        let values = |name| field_values(headers, name);
        let has_token = |name: &'static [u8], token: &[u8]| {
            values(name).any(|v| list(v).any(|t| t.eq_ignore_ascii_case(token)))
        };
        if !has_token(b"upgrade", b"websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !has_token(b"connection", b"upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        check_version(headers)?;
        let mut keys = values(b"sec-websocket-key");
        let (Some(key), None) = (keys.next(), keys.next()) else {
            return Err(HandshakeError::InvalidKey);
        };
        let raw = trim_ows(key);
        // 16 bytes are 24 base64 characters with padding.
        let decoded = (raw.len() == 24)
            .then(|| BASE64.decode(raw).ok())
            .flatten()
            .filter(|d| d.len() == 16);
        if decoded.is_none() {
            return Err(HandshakeError::InvalidKey);
        }
        let start = key.len() - key.trim_ascii_start().len();
        let key = key.slice(start..start + raw.len());
        Ok(Self::offers(Some(key), headers))
    }

    /// Validates an extended CONNECT, the opening handshake of a WebSocket
    /// over an HTTP/2 stream (RFC 8441 §4-5) or an HTTP/3 stream (RFC 9220
    /// §3): `protocol` is the `:protocol` value, which must be `websocket`,
    /// and `Sec-WebSocket-Version` must be 13. There is no key, and no
    /// `Upgrade` or `Connection` field (those are HTTP/1.1's). The stack
    /// checked the rest: the method is CONNECT, and `:protocol` was allowed
    /// by the `SETTINGS_ENABLE_CONNECT_PROTOCOL` it sent.
    pub fn from_extended_connect(
        protocol: &[u8],
        headers: &[(Bytes, Bytes)],
    ) -> Result<Self, HandshakeError> {
        if !protocol.eq_ignore_ascii_case(b"websocket") {
            return Err(HandshakeError::Protocol);
        }
        check_version(headers)?;
        Ok(Self::offers(None, headers))
    }

    /// The subprotocols and extensions offered in `headers`.
    fn offers(key: Option<Bytes>, headers: &[(Bytes, Bytes)]) -> Self {
        let values = |name| field_values(headers, name);
        let subprotocols = values(b"sec-websocket-protocol")
            .flat_map(|v| list(v))
            .filter(|t| is_token(t))
            .filter_map(|t| std::str::from_utf8(t).ok())
            .map(str::to_owned)
            .collect();

        let mut deflate_offers = Vec::new();
        for value in values(b"sec-websocket-extensions") {
            for ext in split_unquoted(value, b',') {
                let mut parts = split_unquoted(ext, b';').into_iter();
                let name = parts.next().map(trim_ows).unwrap_or_default();
                if !name.eq_ignore_ascii_case(b"permessage-deflate") {
                    continue;
                }
                let params: Vec<&[u8]> = parts.collect();
                if let Some(offer) = parse_offer(&params) {
                    deflate_offers.push(offer);
                }
            }
        }
        Self {
            key,
            subprotocols,
            deflate_offers,
        }
    }

    /// Whether this is an extended CONNECT (HTTP/2, HTTP/3), answered with
    /// a `200` that opens the stream as the tunnel, rather than an HTTP/1.1
    /// upgrade, answered with a `101`.
    pub fn is_extended_connect(&self) -> bool {
        self.key.is_none()
    }

    /// The `Sec-WebSocket-Accept` value for an HTTP/1.1 upgrade request
    /// (None for an extended CONNECT).
    pub fn accept(&self) -> Option<String> {
        self.key.as_deref().map(accept_key)
    }

    /// The header fields of the answer. For an HTTP/1.1 upgrade, the `101
    /// Switching Protocols` carries `Upgrade`, `Connection` and
    /// `Sec-WebSocket-Accept`; the `200` to an extended CONNECT has none of
    /// them (RFC 8441 §5). Both carry `Sec-WebSocket-Protocol` when a
    /// `subprotocol` was chosen.
    pub fn response_headers(&self, subprotocol: Option<&str>) -> Vec<(Bytes, Bytes)> {
        let mut headers = Vec::with_capacity(4);
        if let Some(accept) = self.accept() {
            headers.extend([
                (
                    Bytes::from_static(b"upgrade"),
                    Bytes::from_static(b"websocket"),
                ),
                (
                    Bytes::from_static(b"connection"),
                    Bytes::from_static(b"Upgrade"),
                ),
                (
                    Bytes::from_static(b"sec-websocket-accept"),
                    Bytes::from(accept),
                ),
            ]);
        }
        if let Some(p) = subprotocol {
            headers.push((
                Bytes::from_static(b"sec-websocket-protocol"),
                Bytes::copy_from_slice(p.as_bytes()),
            ));
        }
        headers
    }

    /// Picks the first acceptable permessage-deflate offer (RFC 7692 §5,
    /// §7.1): the parameters to use and the value of the response's
    /// `Sec-WebSocket-Extensions` field. `None` when `enabled` is false or
    /// nothing was offered.
    ///
    /// Every valid offer is acceptable (all windows are supported), so the
    /// first one wins. The response echoes the offer's parameters:
    /// `server_max_window_bits` with the offered value (§7.1.2.1),
    /// `client_max_window_bits` only when the offer gave a value (§7.1.2.2).
    pub fn negotiate_deflate(&self, enabled: bool) -> Option<(DeflateParams, String)> {
        if !enabled {
            return None;
        }
        let offer = self.deflate_offers.first()?;
        let mut header = String::from("permessage-deflate");
        if offer.server_no_context_takeover {
            header.push_str("; server_no_context_takeover");
        }
        if offer.client_no_context_takeover {
            header.push_str("; client_no_context_takeover");
        }
        if let Some(n) = offer.server_max_window_bits {
            header.push_str(&format!("; server_max_window_bits={n}"));
        }
        if let Some(Some(n)) = offer.client_max_window_bits {
            header.push_str(&format!("; client_max_window_bits={n}"));
        }
        let params = DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover,
            server_max_window_bits: offer.server_max_window_bits.unwrap_or(15),
            client_max_window_bits: offer.client_max_window_bits.flatten().unwrap_or(15),
        };
        Some((params, header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
        let mut h: Vec<(Bytes, Bytes)> = [
            ("host", "example.com"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]
        .iter()
        .map(|(n, v)| (Bytes::from(*n), Bytes::from(*v)))
        .collect();
        for (n, v) in extra {
            if let Some(slot) = h.iter_mut().find(|(name, _)| name == n.as_bytes()) {
                slot.1 = Bytes::from(v.to_string());
            } else {
                h.push((Bytes::from(n.to_string()), Bytes::from(v.to_string())));
            }
        }
        h.retain(|(_, v)| v.as_ref() != b"<none>");
        h
    }

    fn parse(extra: &[(&str, &str)]) -> Result<Handshake, HandshakeError> {
        Handshake::from_request(b"GET", Version::Http11, &req(extra))
    }

    #[test]
    fn rfc6455_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let h = parse(&[]).unwrap();
        assert_eq!(h.key.as_deref(), Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..]));
        assert_eq!(h.accept().as_deref(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!h.is_extended_connect());
    }

    #[test]
    fn valid_variants() {
        assert!(parse(&[("upgrade", "WebSocket")]).is_ok());
        assert!(parse(&[("upgrade", "foo, websocket")]).is_ok());
        assert!(parse(&[("connection", "keep-alive, Upgrade")]).is_ok());
        assert!(parse(&[("sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ== ")]).is_ok());
        let h = parse(&[("sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ== ")]).unwrap();
        assert_eq!(h.key.as_deref(), Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..]));
    }

    #[test]
    fn invalid_requests() {
        use HandshakeError as E;
        let h = req(&[]);
        assert_eq!(
            Handshake::from_request(b"POST", Version::Http11, &h),
            Err(E::Method)
        );
        assert_eq!(
            Handshake::from_request(b"GET", Version::Http10, &h),
            Err(E::HttpVersion)
        );
        for (extra, err) in [
            (("upgrade", "<none>"), E::MissingUpgrade),
            (("upgrade", "h2c"), E::MissingUpgrade),
            (("upgrade", "websocketx"), E::MissingUpgrade),
            (("connection", "<none>"), E::MissingConnectionUpgrade),
            (("connection", "keep-alive"), E::MissingConnectionUpgrade),
            (("sec-websocket-version", "<none>"), E::UnsupportedVersion),
            (("sec-websocket-version", "8"), E::UnsupportedVersion),
            (("sec-websocket-version", "13, 8"), E::UnsupportedVersion),
            (("sec-websocket-key", "<none>"), E::InvalidKey),
            (("sec-websocket-key", "dGhlIHNhbXBsZQ=="), E::InvalidKey),
            (
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ"),
                E::InvalidKey,
            ),
            (
                ("sec-websocket-key", "!!!!!!!!!!!!!!!!!!!!!!=="),
                E::InvalidKey,
            ),
        ] {
            assert_eq!(parse(&[extra]).map(|_| ()), Err(err.clone()), "{extra:?}");
        }
        assert_eq!(E::UnsupportedVersion.status_hint(), 426);
        assert_eq!(E::InvalidKey.status_hint(), 400);
        let mut twice = req(&[]);
        twice.push((
            Bytes::from_static(b"sec-websocket-key"),
            Bytes::from_static(b"dGhlIHNhbXBsZSBub25jZQ=="),
        ));
        assert_eq!(
            Handshake::from_request(b"GET", Version::Http11, &twice),
            Err(E::InvalidKey)
        );
    }

    fn fields(list: &[(&'static str, &'static str)]) -> Vec<(Bytes, Bytes)> {
        list.iter()
            .map(|(n, v)| {
                (
                    Bytes::from_static(n.as_bytes()),
                    Bytes::from_static(v.as_bytes()),
                )
            })
            .collect()
    }

    #[test]
    fn extended_connect() {
        use HandshakeError as E;
        let offer = fields(&[
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "chat, v2"),
            ("sec-websocket-extensions", "permessage-deflate"),
        ]);
        let h = Handshake::from_extended_connect(b"websocket", &offer).unwrap();
        assert!(h.is_extended_connect());
        assert_eq!(h.accept(), None);
        assert_eq!(h.subprotocols, ["chat", "v2"]);
        assert!(h.negotiate_deflate(true).is_some());
        // The 200 names the subprotocol and nothing of HTTP/1.1's upgrade.
        assert_eq!(
            h.response_headers(Some("v2")),
            fields(&[("sec-websocket-protocol", "v2")])
        );
        assert!(h.response_headers(None).is_empty());
        assert!(Handshake::from_extended_connect(b"WebSocket", &offer).is_ok());
        for (protocol, list, err) in [
            (&b"connect-udp"[..], &offer[..], E::Protocol),
            (b"", &offer[..], E::Protocol),
            (b"websocket", &[][..], E::UnsupportedVersion),
            (
                b"websocket",
                &fields(&[("sec-websocket-version", "8")])[..],
                E::UnsupportedVersion,
            ),
        ] {
            assert_eq!(Handshake::from_extended_connect(protocol, list), Err(err));
        }
        assert_eq!(E::Protocol.status_hint(), 501);
    }

    #[test]
    fn subprotocols() {
        let mut h = req(&[("sec-websocket-protocol", "chat, superchat")]);
        h.push((
            Bytes::from_static(b"sec-websocket-protocol"),
            Bytes::from_static(b" v2.bin ,,"),
        ));
        let h = Handshake::from_request(b"GET", Version::Http11, &h).unwrap();
        assert_eq!(h.subprotocols, ["chat", "superchat", "v2.bin"]);
    }

    fn negotiate(ext: &str) -> Option<(DeflateParams, String)> {
        parse(&[("sec-websocket-extensions", ext)])
            .unwrap()
            .negotiate_deflate(true)
    }

    #[test]
    fn deflate_negotiation() {
        let (p, h) = negotiate("permessage-deflate").unwrap();
        assert_eq!(p, DeflateParams::default());
        assert_eq!(h, "permessage-deflate");
        let (p, h) = negotiate("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(p, DeflateParams::default());
        assert_eq!(h, "permessage-deflate");
        let (p, h) = negotiate(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=\"9\"",
        )
        .unwrap();
        assert_eq!(
            p,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 10,
                client_max_window_bits: 9,
            }
        );
        assert_eq!(
            h,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9"
        );
        let (p, _) = negotiate("permessage-deflate; server_max_window_bits=8").unwrap();
        assert_eq!(p.server_max_window_bits, 8);
        assert!(
            parse(&[("sec-websocket-extensions", "permessage-deflate")])
                .unwrap()
                .negotiate_deflate(false)
                .is_none()
        );
    }

    #[test]
    fn bad_offers_are_skipped() {
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "x-webkit-deflate-frame",
        ] {
            assert!(negotiate(bad).is_none(), "{bad}");
            // The next offer is taken instead.
            let (p, h) = negotiate(&format!(
                "{bad}, permessage-deflate; client_no_context_takeover"
            ))
            .unwrap();
            assert!(p.client_no_context_takeover, "{bad}");
            assert_eq!(h, "permessage-deflate; client_no_context_takeover");
        }
        // A quoted comma in another extension does not split it.
        let (_, h) = negotiate("foo; a=\"x,permessage-deflate\", permessage-deflate").unwrap();
        assert_eq!(h, "permessage-deflate");
        let offers = parse(&[(
            "sec-websocket-extensions",
            "permessage-deflate; server_max_window_bits=12, permessage-deflate",
        )])
        .unwrap()
        .deflate_offers;
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].server_max_window_bits, Some(12));
    }
}
