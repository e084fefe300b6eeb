//! Fuzzes `cormorant_core::asgi::message`, the one decoder of application
//! messages, and the stream machines behind it, as a frontend uses them.
//!
//! Input: an arbitrary message, a map from field names to values of any
//! type (strings, byte strings, integers of any size, booleans, lists,
//! pairs, None), its `type` drawn mostly from the real ones. Each message
//! is decoded as HTTP, WebSocket and lifespan; an accepted HTTP or
//! WebSocket message is then handed to a stream.
//!
//! Invariants: no panic; a refusal is one of the three `MessageError`
//! kinds with non-empty text; an accepted message is what its fields said
//! (status fits in u16, header names are tokens and values field values,
//! a `websocket.send` carries exactly one payload).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use cormorant_core::asgi::message::{
    self, FieldReader, Key, Kind, MessageError, http_message, lifespan_message, ws_message,
};
use cormorant_core::asgi::{AppMessage, Extensions, HttpStream, WsAppMessage};
use cormorant_core::http::{is_field_value, is_token};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Index into the real message types, or a free string.
    kind: u8,
    other_kind: String,
    fields: Vec<(u8, Value)>,
    /// Messages after this one on the same stream.
    then: Vec<(u8, Vec<(u8, Value)>)>,
}

const KEYS: [Key; 15] = [
    Key::Type,
    Key::Status,
    Key::Headers,
    Key::Trailers,
    Key::Body,
    Key::MoreBody,
    Key::MoreTrailers,
    Key::Links,
    Key::Path,
    Key::Text,
    Key::Bytes,
    Key::Subprotocol,
    Key::Code,
    Key::Reason,
    Key::Message,
];

const KINDS: [&str; 14] = [
    "http.response.start",
    "http.response.body",
    "http.response.trailers",
    "http.response.early_hint",
    "http.response.pathsend",
    "websocket.accept",
    "websocket.send",
    "websocket.close",
    "websocket.http.response.start",
    "websocket.http.response.body",
    "lifespan.startup.complete",
    "lifespan.startup.failed",
    "lifespan.shutdown.complete",
    "lifespan.shutdown.failed",
];

struct Msg {
    kind: Option<String>,
    fields: Vec<(Key, Value)>,
}

impl Msg {
    fn new(kind: u8, other: &str, fields: &[(u8, Value)]) -> Self {
        let kind = match usize::from(kind) {
            k if k < KINDS.len() * 4 => Some(KINDS[k % KINDS.len()].to_owned()),
            k if k % 2 == 0 => Some(other.to_owned()),
            _ => None,
        };
        let fields = fields
            .iter()
            .map(|(k, v)| (KEYS[usize::from(*k) % KEYS.len()], v.clone()))
            .filter(|(k, _)| *k != Key::Type)
            .collect();
        Self { kind, fields }
    }

    fn get(&self, key: Key) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Value::None))
    }
}

fn wrong(what: &str, expected: &str, v: &Value) -> MessageError {
    let got = match v {
        Value::None => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "list",
    };
    MessageError::must_be(what, expected, got)
}

fn as_bytes(v: &Value, what: &str) -> Result<Bytes, MessageError> {
    match v {
        Value::Bytes(b) => Ok(Bytes::copy_from_slice(b)),
        other => Err(wrong(what, "bytes", other)),
    }
}

impl FieldReader for Msg {
    fn kind(&self) -> Result<Option<Kind>, MessageError> {
        Ok(self.kind.as_deref().map(Kind::parse))
    }
    fn text(&self, key: Key) -> Result<Option<String>, MessageError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(v) => Err(wrong(&key.quoted(), "a str", v)),
        }
    }
    fn bytes(&self, key: Key) -> Result<Option<Bytes>, MessageError> {
        self.get(key)
            .map(|v| as_bytes(v, &key.quoted()))
            .transpose()
    }
    fn int(&self, key: Key) -> Result<Option<i64>, MessageError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(v) => Err(wrong(&key.quoted(), "an int", v)),
        }
    }
    fn flag(&self, key: Key) -> Result<bool, MessageError> {
        Ok(match self.get(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Int(i)) => *i != 0,
            Some(_) => true,
        })
    }
    fn pairs(&self, key: Key) -> Result<Vec<(Bytes, Bytes)>, MessageError> {
        let items = match self.get(key) {
            None => return Ok(Vec::new()),
            Some(Value::List(items)) => items,
            Some(v) => return Err(wrong(&key.quoted(), "a list", v)),
        };
        items
            .iter()
            .map(|item| match item {
                Value::List(p) if p.len() == 2 => Ok((
                    as_bytes(&p[0], message::HEADER_NAME)?,
                    as_bytes(&p[1], message::HEADER_VALUE)?,
                )),
                _ => Err(MessageError::Type(message::NOT_A_PAIR.into())),
            })
            .collect()
    }
    fn byte_list(&self, key: Key) -> Result<Vec<Bytes>, MessageError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::List(items)) => items.iter().map(|l| as_bytes(l, message::LINK)).collect(),
            Some(v) => Err(wrong(&key.quoted(), "a list", v)),
        }
    }
    fn path(&self, key: Key) -> Result<Option<String>, MessageError> {
        self.text(key)
    }
}

fn check_refusal(e: &MessageError) {
    assert!(!e.to_string().is_empty());
}

fn check_headers(headers: &[(Bytes, Bytes)]) {
    for (n, v) in headers {
        assert!(is_token(n) && is_field_value(v), "{n:?}: {v:?}");
    }
}

fuzz_target!(|input: Input| {
    let first = Msg::new(input.kind, &input.other_kind, &input.fields);
    let mut stream = HttpStream::new(true, false).with_extensions(Extensions {
        trailers: true,
        early_hint: true,
        pathsend: true,
    });
    let msgs = std::iter::once(first).chain(
        input
            .then
            .iter()
            .take(16)
            .map(|(k, f)| Msg::new(*k, &input.other_kind, f)),
    );
    for msg in msgs {
        match http_message(&msg) {
            Ok(m) => {
                if let AppMessage::HttpResponseStart { headers, .. }
                | AppMessage::HttpResponseTrailers { headers, .. } = &m
                {
                    check_headers(headers);
                }
                let _ = stream.handle_app(m);
            }
            Err(e) => check_refusal(&e),
        }
        match ws_message(&msg) {
            Ok(WsAppMessage::Accept { headers, .. })
            | Ok(WsAppMessage::HttpResponseStart { headers, .. }) => check_headers(&headers),
            Ok(WsAppMessage::SendText(_) | WsAppMessage::SendBytes(_)) => {
                assert!(msg.get(Key::Text).is_some() != msg.get(Key::Bytes).is_some());
            }
            Ok(_) => {}
            Err(e) => check_refusal(&e),
        }
        if let Err(e) = lifespan_message(&msg) {
            check_refusal(&e);
        }
    }
    let _ = stream.handle_app_exit(false);
});
