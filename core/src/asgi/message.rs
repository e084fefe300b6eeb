//! The one decoder of the messages an application passes to `send()`, for
//! HTTP, WebSocket and lifespan.
//!
//! A frontend implements [`FieldReader`] once for its host language's
//! mappings (Python dicts in the bridge, JSON in the sandbox); the decoding
//! (which fields each message has, their defaults, and the checks on
//! headers, status codes and close codes) happens here, so the rules and
//! the error text are the same on every frontend by construction.
//!
//! # Call order
//! A frontend calls [`http_message`], [`ws_message`] or [`lifespan_message`]
//! with a reader over the message, and on error raises the exception that
//! [`MessageError`]'s variant names. Order (a body before the start...) is
//! checked afterwards by the stream's `handle_app`.

use bytes::Bytes;

use super::http::AppMessage;
use super::lifespan::LifespanMessage;
use super::websocket::WsAppMessage;
use crate::http::{field_error, is_field_value};

/// Why a message was refused before its order was looked at. Frontends
/// raise `TypeError`, `ValueError` and `RuntimeError` for the three kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// A field or the message has the wrong type (`TypeError`).
    #[error("{0}")]
    Type(String),
    /// A field is missing or has a value out of range (`ValueError`).
    #[error("{0}")]
    Value(String),
    /// The message type has no place on this connection (`RuntimeError`).
    #[error("{0}")]
    Unexpected(String),
}

impl MessageError {
    /// "`what` must be `expected`, got `got`": the text of every type error,
    /// `got` being the host language's name of the type it got.
    pub fn must_be(what: &str, expected: &str, got: &str) -> Self {
        Self::Type(format!("{what} must be {expected}, got {got}"))
    }
}

/// The fields a message may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Key {
    /// `type`
    Type,
    /// `status`
    Status,
    /// `headers`
    Headers,
    /// `trailers`
    Trailers,
    /// `body`
    Body,
    /// `more_body`
    MoreBody,
    /// `more_trailers`
    MoreTrailers,
    /// `links`
    Links,
    /// `path`
    Path,
    /// `text`
    Text,
    /// `bytes`
    Bytes,
    /// `subprotocol`
    Subprotocol,
    /// `code`
    Code,
    /// `reason`
    Reason,
    /// `message`
    Message,
}

impl Key {
    /// Every key, each at its [`Self::index`].
    pub const ALL: [Self; 15] = [
        Self::Type,
        Self::Status,
        Self::Headers,
        Self::Trailers,
        Self::Body,
        Self::MoreBody,
        Self::MoreTrailers,
        Self::Links,
        Self::Path,
        Self::Text,
        Self::Bytes,
        Self::Subprotocol,
        Self::Code,
        Self::Reason,
        Self::Message,
    ];

    /// The key's position in [`Self::ALL`]: a reader may keep the fields of
    /// a message in an array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The field's name in the message.
    pub fn name(self) -> &'static str {
        match self {
            Self::Type => "type",
            Self::Status => "status",
            Self::Headers => "headers",
            Self::Trailers => "trailers",
            Self::Body => "body",
            Self::MoreBody => "more_body",
            Self::MoreTrailers => "more_trailers",
            Self::Links => "links",
            Self::Path => "path",
            Self::Text => "text",
            Self::Bytes => "bytes",
            Self::Subprotocol => "subprotocol",
            Self::Code => "code",
            Self::Reason => "reason",
            Self::Message => "message",
        }
    }

    /// The field's name quoted, as error text names it: `'body'`.
    pub fn quoted(self) -> String {
        format!("'{}'", self.name())
    }
}

/// What names an element of a `headers` pair or a `links` list in error
/// text, for readers that convert the elements.
pub const HEADER_NAME: &str = "header name";
/// See [`HEADER_NAME`].
pub const HEADER_VALUE: &str = "header value";
/// See [`HEADER_NAME`].
pub const LINK: &str = "each of 'links'";
/// The text of a `headers` element that is not a pair.
pub const NOT_A_PAIR: &str = "each header must be a pair of bytes: [name, value]";

/// The message types, parsed from `type` without allocating for the known
/// ones.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the ASGI type it is named after
pub enum Kind {
    HttpResponseStart,
    HttpResponseBody,
    HttpResponseTrailers,
    HttpResponseEarlyHint,
    HttpResponsePathsend,
    WebsocketAccept,
    WebsocketSend,
    WebsocketClose,
    WebsocketHttpResponseStart,
    WebsocketHttpResponseBody,
    LifespanStartupComplete,
    LifespanStartupFailed,
    LifespanShutdownComplete,
    LifespanShutdownFailed,
    /// Any other type.
    Other(String),
}

/// Every known kind with its `type` string: one table for both directions.
const KINDS: [(&str, Kind); 14] = [
    ("http.response.start", Kind::HttpResponseStart),
    ("http.response.body", Kind::HttpResponseBody),
    ("http.response.trailers", Kind::HttpResponseTrailers),
    ("http.response.early_hint", Kind::HttpResponseEarlyHint),
    ("http.response.pathsend", Kind::HttpResponsePathsend),
    ("websocket.accept", Kind::WebsocketAccept),
    ("websocket.send", Kind::WebsocketSend),
    ("websocket.close", Kind::WebsocketClose),
    (
        "websocket.http.response.start",
        Kind::WebsocketHttpResponseStart,
    ),
    (
        "websocket.http.response.body",
        Kind::WebsocketHttpResponseBody,
    ),
    ("lifespan.startup.complete", Kind::LifespanStartupComplete),
    ("lifespan.startup.failed", Kind::LifespanStartupFailed),
    ("lifespan.shutdown.complete", Kind::LifespanShutdownComplete),
    ("lifespan.shutdown.failed", Kind::LifespanShutdownFailed),
];

impl Kind {
    /// The kind a `type` value names.
    pub fn parse(ty: &str) -> Self {
        KINDS
            .iter()
            .find(|(name, _)| *name == ty)
            .map_or_else(|| Self::Other(ty.to_owned()), |(_, k)| k.clone())
    }

    fn name(&self) -> &str {
        match self {
            Self::Other(s) => s,
            known => KINDS
                .iter()
                .find(|(_, k)| k == known)
                .map_or("", |(name, _)| name),
        }
    }

    fn unexpected(&self, on: &str) -> MessageError {
        MessageError::Unexpected(format!(
            "unexpected ASGI message type {:?} on {on}",
            self.name()
        ))
    }
}

/// Read access to one message, implemented by a frontend for its host
/// language's mapping. A field that is absent or holds the language's
/// `None` reads as absent. Type errors use [`MessageError::must_be`] with
/// [`Key::quoted`] (or the element names above) and the host's type name.
pub trait FieldReader {
    /// The `type` field, parsed with [`Kind::parse`]; `Ok(None)` when
    /// absent.
    fn kind(&self) -> Result<Option<Kind>, MessageError>;
    /// A string field.
    fn text(&self, key: Key) -> Result<Option<String>, MessageError>;
    /// A byte-string field.
    fn bytes(&self, key: Key) -> Result<Option<Bytes>, MessageError>;
    /// An integer field.
    fn int(&self, key: Key) -> Result<Option<i64>, MessageError>;
    /// A boolean field, false when absent (the host language's truth test).
    fn flag(&self, key: Key) -> Result<bool, MessageError>;
    /// A list of `[name, value]` byte-string pairs, empty when absent.
    fn pairs(&self, key: Key) -> Result<Vec<(Bytes, Bytes)>, MessageError>;
    /// A list of byte strings, empty when absent.
    fn byte_list(&self, key: Key) -> Result<Vec<Bytes>, MessageError>;
    /// A file system path (a string, or what the language takes for one).
    fn path(&self, key: Key) -> Result<Option<String>, MessageError>;
}

fn kind(m: &impl FieldReader) -> Result<Kind, MessageError> {
    m.kind()?
        .ok_or_else(|| MessageError::Value("ASGI message has no 'type'".into()))
}

/// `status`: required, an HTTP status code.
fn status(m: &impl FieldReader, kind: &Kind) -> Result<u16, MessageError> {
    let status = m
        .int(Key::Status)?
        .ok_or_else(|| MessageError::Value(format!("'{}' needs a 'status'", kind.name())))?;
    u16::try_from(status)
        .map_err(|_| MessageError::Value(format!("invalid HTTP status code {status}")))
}

/// `headers`: names are tokens and values field values (RFC 9110 §5.1,
/// §5.5), so a header can neither split the head nor smuggle a message.
fn headers(m: &impl FieldReader, key: Key) -> Result<Vec<(Bytes, Bytes)>, MessageError> {
    let pairs = m.pairs(key)?;
    if let Some(e) = pairs.iter().find_map(|(n, v)| field_error(n, v)) {
        return Err(MessageError::Value(e));
    }
    Ok(pairs)
}

/// Decodes a `send()` message of an HTTP connection.
pub fn http_message(m: &impl FieldReader) -> Result<AppMessage, MessageError> {
    let kind = kind(m)?;
    Ok(match kind {
        Kind::HttpResponseStart => AppMessage::HttpResponseStart {
            status: status(m, &kind)?,
            headers: headers(m, Key::Headers)?,
            trailers: m.flag(Key::Trailers)?,
        },
        Kind::HttpResponseBody => AppMessage::HttpResponseBody {
            body: m.bytes(Key::Body)?.unwrap_or_default(),
            more_body: m.flag(Key::MoreBody)?,
        },
        Kind::HttpResponseTrailers => AppMessage::HttpResponseTrailers {
            headers: headers(m, Key::Headers)?,
            more_trailers: m.flag(Key::MoreTrailers)?,
        },
        Kind::HttpResponseEarlyHint => {
            let links = m.byte_list(Key::Links)?;
            if !links.iter().all(|l| is_field_value(l)) {
                return Err(MessageError::Value(
                    "invalid link in 'http.response.early_hint': control characters are not allowed"
                        .into(),
                ));
            }
            AppMessage::HttpResponseEarlyHint { links }
        }
        Kind::HttpResponsePathsend => AppMessage::HttpResponsePathsend {
            path: m.path(Key::Path)?.ok_or_else(|| {
                MessageError::Value("'http.response.pathsend' needs a 'path'".into())
            })?,
        },
        other => return Err(other.unexpected("an HTTP connection")),
    })
}

/// Decodes a `send()` message of a WebSocket connection.
pub fn ws_message(m: &impl FieldReader) -> Result<WsAppMessage, MessageError> {
    let kind = kind(m)?;
    Ok(match kind {
        Kind::WebsocketAccept => WsAppMessage::Accept {
            subprotocol: m.text(Key::Subprotocol)?,
            headers: headers(m, Key::Headers)?,
        },
        Kind::WebsocketSend => match (m.text(Key::Text)?, m.bytes(Key::Bytes)?) {
            (Some(text), None) => WsAppMessage::SendText(text),
            (None, Some(data)) => WsAppMessage::SendBytes(data),
            _ => {
                return Err(MessageError::Value(
                    "'websocket.send' needs exactly one of 'text' and 'bytes'".into(),
                ));
            }
        },
        Kind::WebsocketClose => WsAppMessage::Close {
            code: match m.int(Key::Code)? {
                None => 1000,
                Some(c) => u16::try_from(c).map_err(|_| {
                    MessageError::Value(format!("invalid WebSocket close code {c}"))
                })?,
            },
            reason: m.text(Key::Reason)?.unwrap_or_default(),
        },
        Kind::WebsocketHttpResponseStart => WsAppMessage::HttpResponseStart {
            status: status(m, &kind)?,
            headers: headers(m, Key::Headers)?,
        },
        Kind::WebsocketHttpResponseBody => WsAppMessage::HttpResponseBody {
            body: m.bytes(Key::Body)?.unwrap_or_default(),
            more_body: m.flag(Key::MoreBody)?,
        },
        other => return Err(other.unexpected("a WebSocket connection")),
    })
}

/// Decodes a `send()` message of the lifespan scope. `message` is a string
/// (lifespan spec 2.0), empty when absent.
pub fn lifespan_message(m: &impl FieldReader) -> Result<LifespanMessage, MessageError> {
    let text = || Ok::<_, MessageError>(m.text(Key::Message)?.unwrap_or_default());
    Ok(match kind(m)? {
        Kind::LifespanStartupComplete => LifespanMessage::StartupComplete,
        Kind::LifespanStartupFailed => LifespanMessage::StartupFailed(text()?),
        Kind::LifespanShutdownComplete => LifespanMessage::ShutdownComplete,
        Kind::LifespanShutdownFailed => LifespanMessage::ShutdownFailed(text()?),
        other => return Err(other.unexpected("the lifespan scope")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_at_its_index_once() {
        for (i, key) in Key::ALL.iter().enumerate() {
            assert_eq!(key.index(), i, "{key:?}");
        }
        let mut names: Vec<_> = Key::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Key::ALL.len());
    }

    /// A reader over a list of fields, each already in its Rust form.
    #[derive(Default)]
    struct Fields(Vec<(Key, Field)>);

    #[derive(Clone)]
    enum Field {
        Str(&'static str),
        Bytes(&'static [u8]),
        Int(i64),
        Pairs(Vec<(&'static [u8], &'static [u8])>),
    }

    impl Fields {
        fn get(&self, key: Key) -> Option<&Field> {
            self.0.iter().find(|(k, _)| *k == key).map(|(_, f)| f)
        }
        fn wrong(key: Key) -> MessageError {
            MessageError::must_be(&key.quoted(), "something else", "test")
        }
    }

    impl FieldReader for Fields {
        fn kind(&self) -> Result<Option<Kind>, MessageError> {
            Ok(self.text(Key::Type)?.map(|t| Kind::parse(&t)))
        }
        fn text(&self, key: Key) -> Result<Option<String>, MessageError> {
            match self.get(key) {
                None => Ok(None),
                Some(Field::Str(s)) => Ok(Some((*s).to_owned())),
                Some(_) => Err(Self::wrong(key)),
            }
        }
        fn bytes(&self, key: Key) -> Result<Option<Bytes>, MessageError> {
            match self.get(key) {
                None => Ok(None),
                Some(Field::Bytes(b)) => Ok(Some(Bytes::from_static(b))),
                Some(_) => Err(Self::wrong(key)),
            }
        }
        fn int(&self, key: Key) -> Result<Option<i64>, MessageError> {
            match self.get(key) {
                None => Ok(None),
                Some(Field::Int(i)) => Ok(Some(*i)),
                Some(_) => Err(Self::wrong(key)),
            }
        }
        fn flag(&self, key: Key) -> Result<bool, MessageError> {
            Ok(matches!(self.get(key), Some(Field::Int(1))))
        }
        fn pairs(&self, key: Key) -> Result<Vec<(Bytes, Bytes)>, MessageError> {
            match self.get(key) {
                None => Ok(Vec::new()),
                Some(Field::Pairs(p)) => Ok(p
                    .iter()
                    .map(|&(n, v)| (Bytes::from_static(n), Bytes::from_static(v)))
                    .collect()),
                Some(_) => Err(Self::wrong(key)),
            }
        }
        fn byte_list(&self, key: Key) -> Result<Vec<Bytes>, MessageError> {
            Ok(self.bytes(key)?.into_iter().collect())
        }
        fn path(&self, key: Key) -> Result<Option<String>, MessageError> {
            self.text(key)
        }
    }

    fn msg(fields: &[(Key, Field)]) -> Fields {
        Fields(fields.to_vec())
    }

    #[test]
    fn http_messages() {
        let start = msg(&[
            (Key::Type, Field::Str("http.response.start")),
            (Key::Status, Field::Int(204)),
            (Key::Headers, Field::Pairs(vec![(b"x-a", b"1")])),
        ]);
        assert_eq!(
            http_message(&start),
            Ok(AppMessage::HttpResponseStart {
                status: 204,
                headers: vec![(Bytes::from_static(b"x-a"), Bytes::from_static(b"1"))],
                trailers: false,
            })
        );
        let body = msg(&[(Key::Type, Field::Str("http.response.body"))]);
        assert_eq!(
            http_message(&body),
            Ok(AppMessage::HttpResponseBody {
                body: Bytes::new(),
                more_body: false
            })
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let text = |m: Fields| http_message(&m).unwrap_err().to_string();
        assert_eq!(text(msg(&[])), "ASGI message has no 'type'");
        let no_status = msg(&[(Key::Type, Field::Str("http.response.start"))]);
        assert_eq!(text(no_status), "'http.response.start' needs a 'status'");
        let big = msg(&[
            (Key::Type, Field::Str("http.response.start")),
            (Key::Status, Field::Int(70000)),
        ]);
        assert_eq!(text(big), "invalid HTTP status code 70000");
        let header = |n: &'static [u8], v: &'static [u8]| {
            msg(&[
                (Key::Type, Field::Str("http.response.start")),
                (Key::Status, Field::Int(200)),
                (Key::Headers, Field::Pairs(vec![(n, v)])),
            ])
        };
        assert_eq!(text(header(b"a b", b"x")), "invalid header name \"a b\"");
        assert!(text(header(b"a", b"x\r\ny")).contains("control characters"));
        let ws = msg(&[(Key::Type, Field::Str("websocket.send"))]);
        assert!(matches!(
            http_message(&ws),
            Err(MessageError::Unexpected(t)) if t.contains("on an HTTP connection")
        ));
    }

    #[test]
    fn websocket_messages() {
        let both = msg(&[
            (Key::Type, Field::Str("websocket.send")),
            (Key::Text, Field::Str("a")),
            (Key::Bytes, Field::Bytes(b"b")),
        ]);
        assert!(matches!(ws_message(&both), Err(MessageError::Value(_))));
        let close = msg(&[(Key::Type, Field::Str("websocket.close"))]);
        assert_eq!(
            ws_message(&close),
            Ok(WsAppMessage::Close {
                code: 1000,
                reason: String::new()
            })
        );
        let bad_code = msg(&[
            (Key::Type, Field::Str("websocket.close")),
            (Key::Code, Field::Int(-1)),
        ]);
        assert!(matches!(ws_message(&bad_code), Err(MessageError::Value(_))));
    }

    #[test]
    fn lifespan_messages() {
        let failed = msg(&[
            (Key::Type, Field::Str("lifespan.startup.failed")),
            (Key::Message, Field::Str("no db")),
        ]);
        assert_eq!(
            lifespan_message(&failed),
            Ok(LifespanMessage::StartupFailed("no db".into()))
        );
        let not_str = msg(&[
            (Key::Type, Field::Str("lifespan.shutdown.failed")),
            (Key::Message, Field::Int(3)),
        ]);
        assert!(matches!(
            lifespan_message(&not_str),
            Err(MessageError::Type(_))
        ));
    }
}
