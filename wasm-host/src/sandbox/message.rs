//! ASGI messages between the guest's JSON (see `guest/wit/sandbox.wit`)
//! and the core's types: the app's `send()` messages are type-checked here
//! before `cormorant_core::asgi` checks their order, and what `receive()`
//! yields is written back as JSON.

use bytes::Bytes;
use cormorant_core::asgi::message::{
    self, FieldReader, HEADER_NAME, HEADER_VALUE, Key, Kind, LINK, MessageError, NOT_A_PAIR,
};
use cormorant_core::asgi::{
    AppMessage, HttpScope, LifespanMessage, LifespanReceive, Receive, WsAppMessage, WsReceive,
};
use serde_json::{Map, Value, json};

/// A Python byte string in the guest's JSON.
fn py_bytes(b: &[u8]) -> Value {
    json!({ "$bytes": b.iter().map(|&c| char::from(c)).collect::<String>() })
}

/// The Python type name of a guest JSON value, for error messages.
pub(crate) fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "NoneType".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_f64() => "float".into(),
        Value::Number(_) => "int".into(),
        Value::String(_) => "str".into(),
        Value::Array(_) => "list".into(),
        Value::Object(o) if o.len() == 1 && o.contains_key("$bytes") => "bytes".into(),
        Value::Object(o) => match o.get("$type") {
            Some(Value::String(t)) if o.len() == 1 => t.clone(),
            _ => "dict".into(),
        },
    }
}

fn as_bytes(v: &Value, what: &str) -> Result<Bytes, MessageError> {
    if let Value::Object(o) = v
        && let (1, Some(Value::String(s))) = (o.len(), o.get("$bytes"))
    {
        // One char per byte (latin-1); the guest is not trusted to keep
        // to that, so a char above 255 is refused, not truncated.
        if let Ok(b) = s.chars().map(|c| u8::try_from(u32::from(c))).collect() {
            return Ok(b);
        }
    }
    Err(MessageError::must_be(what, "bytes", &type_name(v)))
}

fn as_str(v: &Value, what: &str) -> Result<String, MessageError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(MessageError::must_be(what, "a str", &type_name(v))),
    }
}

/// Why a message was refused before its order was even looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A missing field or a wrong type or value (`TypeError` in the app).
    Invalid(String),
    /// A message type that has no place on this connection.
    Protocol(String),
}

impl From<MessageError> for Refused {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::Unexpected(t) => Self::Protocol(t),
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// One message in the guest's JSON, read for core's decoder
/// (`cormorant_core::asgi::message`), which decides every rule.
struct JsonMessage<'a>(&'a Map<String, Value>);

impl JsonMessage<'_> {
    /// The field, or None when absent or null.
    fn get(&self, key: Key) -> Option<&Value> {
        self.0.get(key.name()).filter(|v| !v.is_null())
    }

    fn list(&self, key: Key) -> Result<&[Value], MessageError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(v) => Err(MessageError::must_be(
                &key.quoted(),
                "a list",
                &type_name(v),
            )),
        }
    }
}

impl FieldReader for JsonMessage<'_> {
    fn kind(&self) -> Result<Option<Kind>, MessageError> {
        self.get(Key::Type)
            .map(|t| as_str(t, "'type'").map(|t| Kind::parse(&t)))
            .transpose()
    }

    fn text(&self, key: Key) -> Result<Option<String>, MessageError> {
        self.get(key).map(|v| as_str(v, &key.quoted())).transpose()
    }

    fn bytes(&self, key: Key) -> Result<Option<Bytes>, MessageError> {
        self.get(key)
            .map(|v| as_bytes(v, &key.quoted()))
            .transpose()
    }

    fn int(&self, key: Key) -> Result<Option<i64>, MessageError> {
        self.get(key)
            .map(|v| match v.as_i64() {
                Some(n) if !v.is_f64() => Ok(n),
                _ => Err(MessageError::must_be(
                    &key.quoted(),
                    "an int",
                    &type_name(v),
                )),
            })
            .transpose()
    }

    fn flag(&self, key: Key) -> Result<bool, MessageError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(MessageError::must_be(
                &key.quoted(),
                "a bool",
                &type_name(v),
            )),
        }
    }

    fn pairs(&self, key: Key) -> Result<Vec<(Bytes, Bytes)>, MessageError> {
        self.list(key)?
            .iter()
            .map(|item| match item {
                Value::Array(p) if p.len() == 2 => Ok((
                    as_bytes(&p[0], HEADER_NAME)?,
                    as_bytes(&p[1], HEADER_VALUE)?,
                )),
                _ => Err(MessageError::Type(NOT_A_PAIR.into())),
            })
            .collect()
    }

    fn byte_list(&self, key: Key) -> Result<Vec<Bytes>, MessageError> {
        self.list(key)?.iter().map(|l| as_bytes(l, LINK)).collect()
    }

    fn path(&self, key: Key) -> Result<Option<String>, MessageError> {
        self.text(key)
    }
}

/// The message's fields, when it is a dict.
fn fields(v: &Value) -> Result<JsonMessage<'_>, Refused> {
    match v {
        Value::Object(m) if !m.contains_key("$bytes") && !m.contains_key("$type") => {
            Ok(JsonMessage(m))
        }
        _ => Err(Refused::Invalid(format!(
            "an ASGI message must be a dict, got {}",
            type_name(v)
        ))),
    }
}

/// Converts a `send()` message of an HTTP connection.
pub(crate) fn http_message(v: &Value) -> Result<AppMessage, Refused> {
    Ok(message::http_message(&fields(v)?)?)
}

/// Converts a `send()` message of a WebSocket connection.
pub(crate) fn ws_message(v: &Value) -> Result<WsAppMessage, Refused> {
    Ok(message::ws_message(&fields(v)?)?)
}

/// Converts a `send()` message of the lifespan scope.
pub(crate) fn lifespan_message(v: &Value) -> Result<LifespanMessage, Refused> {
    Ok(message::lifespan_message(&fields(v)?)?)
}

/// What the lifespan `receive()` yields, as guest JSON.
pub(crate) fn lifespan_receive(r: LifespanReceive) -> Option<Value> {
    match r {
        LifespanReceive::Startup => Some(json!({ "type": "lifespan.startup" })),
        LifespanReceive::Shutdown => Some(json!({ "type": "lifespan.shutdown" })),
        LifespanReceive::Pending => None,
    }
}

/// What an HTTP `receive()` yields, as guest JSON (`None` for `Pending`).
pub(crate) fn http_receive(r: &Receive) -> Option<Value> {
    match r {
        Receive::HttpRequest { body, more_body } => Some(json!({
            "type": "http.request", "body": py_bytes(body), "more_body": more_body,
        })),
        Receive::HttpDisconnect => Some(json!({ "type": "http.disconnect" })),
        Receive::Pending => None,
    }
}

/// What a WebSocket `receive()` yields, as guest JSON (`None` for `Pending`).
pub(crate) fn ws_receive(r: &WsReceive) -> Option<Value> {
    match r {
        WsReceive::Connect => Some(json!({ "type": "websocket.connect" })),
        WsReceive::Text(t) => Some(json!({ "type": "websocket.receive", "text": t })),
        WsReceive::Bytes(b) => Some(json!({ "type": "websocket.receive", "bytes": py_bytes(b) })),
        WsReceive::Disconnect { code, reason } => Some(json!({
            "type": "websocket.disconnect", "code": code, "reason": reason,
        })),
        WsReceive::Pending => None,
    }
}

/// The scope of a request as guest JSON; `subprotocols` makes it a
/// WebSocket scope.
pub(crate) fn scope(s: &HttpScope, subprotocols: Option<&[String]>) -> Value {
    let addr = |a: &Option<cormorant_core::asgi::Address>| {
        a.as_ref()
            .map_or(Value::Null, |a| json!([&*a.host, a.port]))
    };
    let headers: Vec<Value> = s
        .headers
        .iter()
        .map(|(n, v)| json!([py_bytes(n), py_bytes(v)]))
        .collect();
    let mut v = json!({
        "http_version": s.http_version.as_str(),
        "scheme": s.scheme,
        "path": s.path,
        "raw_path": py_bytes(&s.raw_path),
        "query_string": py_bytes(&s.query_string),
        "root_path": s.root_path,
        "headers": headers,
        "client": addr(&s.client),
        "server": addr(&s.server),
    });
    let asgi = cormorant_core::asgi::ASGI_VERSION;
    match subprotocols {
        Some(p) => {
            v["type"] = json!("websocket");
            v["subprotocols"] = json!(p);
            v["asgi"] = json!({ "version": asgi, "spec_version": cormorant_core::asgi::WEBSOCKET_SPEC_VERSION });
        }
        None => {
            v["type"] = json!("http");
            v["method"] = json!(s.method);
            v["asgi"] =
                json!({ "version": asgi, "spec_version": cormorant_core::asgi::HTTP_SPEC_VERSION });
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(v: Value) -> String {
        match http_message(&v) {
            Err(Refused::Invalid(m) | Refused::Protocol(m)) => m,
            Ok(m) => panic!("accepted {m:?}"),
        }
    }

    #[test]
    fn wrong_types_are_named() {
        let start = |status: Value| json!({"type": "http.response.start", "status": status});
        assert_eq!(
            refused(start(json!("200"))),
            "'status' must be an int, got str"
        );
        assert_eq!(
            refused(start(json!(200.0))),
            "'status' must be an int, got float"
        );
        let body = json!({"type": "http.response.body", "body": "text"});
        assert_eq!(refused(body), "'body' must be bytes, got str");
        let hdr = json!({"type": "http.response.start", "status": 200, "headers": [["a", "b"]]});
        assert_eq!(refused(hdr), "header name must be bytes, got str");
        assert_eq!(
            refused(json!([1])),
            "an ASGI message must be a dict, got list"
        );
        assert_eq!(
            refused(json!({"$type": "Response"})),
            "an ASGI message must be a dict, got Response"
        );
        assert_eq!(
            refused(json!({"body": py_bytes(b"x")})),
            "ASGI message has no 'type'"
        );
    }

    #[test]
    fn bytes_round_trip_every_octet() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(as_bytes(&py_bytes(&all), "x").unwrap(), all);
    }

    #[test]
    fn websocket_send_needs_exactly_one_payload() {
        let both = json!({"type": "websocket.send", "text": "a", "bytes": py_bytes(b"b")});
        assert!(ws_message(&both).is_err());
        let text = json!({"type": "websocket.send", "text": "a", "bytes": null});
        assert_eq!(ws_message(&text), Ok(WsAppMessage::SendText("a".into())));
    }
}
