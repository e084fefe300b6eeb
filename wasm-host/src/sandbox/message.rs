//! ASGI messages between the guest's JSON (see `guest/wit/sandbox.wit`)
//! and the core's types: the app's `send()` messages are type-checked here
//! before `cormorant_core::asgi` checks their order, and what `receive()`
//! yields is written back as JSON.

use bytes::Bytes;
use cormorant_core::asgi::{
    AppMessage, HttpScope, LifespanMessage, LifespanReceive, Receive, WsAppMessage, WsReceive,
};
use cormorant_core::http::{is_field_value, is_token};
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

fn as_bytes(v: &Value, what: &str) -> Result<Bytes, String> {
    if let Value::Object(o) = v
        && let (1, Some(Value::String(s))) = (o.len(), o.get("$bytes"))
    {
        // One char per byte (latin-1); the guest is not trusted to keep
        // to that, so a char above 255 is refused, not truncated.
        if let Ok(b) = s.chars().map(|c| u8::try_from(u32::from(c))).collect() {
            return Ok(b);
        }
    }
    Err(format!("{what} must be bytes, got {}", type_name(v)))
}

fn as_str(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(format!("{what} must be a str, got {}", type_name(v))),
    }
}

fn as_int(v: &Value, what: &str) -> Result<i64, String> {
    match v.as_i64() {
        Some(n) if !v.is_f64() => Ok(n),
        _ => Err(format!("{what} must be an int, got {}", type_name(v))),
    }
}

fn as_bool(v: &Value, what: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err(format!("{what} must be a bool, got {}", type_name(v))),
    }
}

fn headers(v: Option<&Value>) -> Result<Vec<(Bytes, Bytes)>, String> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(format!(
            "'headers' must be a list of [name, value] pairs, got {}",
            type_name(v)
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let pair = match item {
            Value::Array(p) if p.len() == 2 => p,
            _ => return Err("each header must be a pair of bytes: [name, value]".into()),
        };
        let name = as_bytes(&pair[0], "header name")?;
        let value = as_bytes(&pair[1], "header value")?;
        if !is_token(&name) {
            let name = String::from_utf8_lossy(&name);
            return Err(format!("invalid header name {name:?}"));
        }
        if !is_field_value(&value) {
            let name = String::from_utf8_lossy(&name);
            return Err(format!(
                "invalid header value for {name:?}: control characters are not allowed"
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn status(m: &Map<String, Value>, kind: &str) -> Result<u16, String> {
    let v = m
        .get("status")
        .ok_or(format!("'{kind}' needs a 'status'"))?;
    u16::try_from(as_int(v, "'status'")?).map_err(|_| format!("invalid HTTP status code {v}"))
}

/// Why a message was refused before its order was even looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A missing field or a wrong type or value (`TypeError` in the app).
    Invalid(String),
    /// A message type that has no place on this connection.
    Protocol(String),
}

/// The message's fields and its `type`.
fn fields(v: &Value) -> Result<(&Map<String, Value>, &str), Refused> {
    let Value::Object(m) = v else {
        let got = type_name(v);
        return Err(Refused::Invalid(format!(
            "an ASGI message must be a dict, got {got}"
        )));
    };
    if m.contains_key("$bytes") || m.contains_key("$type") {
        let got = type_name(v);
        return Err(Refused::Invalid(format!(
            "an ASGI message must be a dict, got {got}"
        )));
    }
    match m.get("type") {
        Some(Value::String(t)) => Ok((m, t)),
        Some(t) => Err(Refused::Invalid(format!(
            "'type' must be a str, got {}",
            type_name(t)
        ))),
        None => Err(Refused::Invalid("ASGI message has no 'type'".into())),
    }
}

/// Converts a `send()` message of an HTTP connection.
pub(crate) fn http_message(v: &Value) -> Result<AppMessage, Refused> {
    let (m, kind) = fields(v)?;
    let invalid = Refused::Invalid;
    let msg = match kind {
        "http.response.start" => AppMessage::HttpResponseStart {
            status: status(m, kind).map_err(invalid)?,
            headers: headers(m.get("headers")).map_err(invalid)?,
            trailers: opt_bool(m, "trailers").map_err(invalid)?,
        },
        "http.response.body" => AppMessage::HttpResponseBody {
            body: match m.get("body") {
                Some(b) => as_bytes(b, "'body'").map_err(invalid)?,
                None => Bytes::new(),
            },
            more_body: opt_bool(m, "more_body").map_err(invalid)?,
        },
        "http.response.trailers" => AppMessage::HttpResponseTrailers {
            headers: headers(m.get("headers")).map_err(invalid)?,
            more_trailers: opt_bool(m, "more_trailers").map_err(invalid)?,
        },
        other => {
            return Err(Refused::Protocol(format!(
                "unexpected ASGI message type {other:?} on an HTTP connection"
            )));
        }
    };
    Ok(msg)
}

fn opt_bool(m: &Map<String, Value>, key: &str) -> Result<bool, String> {
    m.get(key)
        .map_or(Ok(false), |v| as_bool(v, &format!("'{key}'")))
}

fn opt_str(m: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_str(v, &format!("'{key}'")).map(Some),
    }
}

/// Converts a `send()` message of a WebSocket connection.
pub(crate) fn ws_message(v: &Value) -> Result<WsAppMessage, Refused> {
    let (m, kind) = fields(v)?;
    let invalid = Refused::Invalid;
    let msg = match kind {
        "websocket.accept" => WsAppMessage::Accept {
            subprotocol: opt_str(m, "subprotocol").map_err(invalid)?,
            headers: headers(m.get("headers")).map_err(invalid)?,
        },
        "websocket.send" => {
            let bytes = m.get("bytes").filter(|v| !v.is_null());
            match (opt_str(m, "text").map_err(invalid)?, bytes) {
                (Some(text), None) => WsAppMessage::SendText(text),
                (None, Some(b)) => {
                    WsAppMessage::SendBytes(as_bytes(b, "'bytes'").map_err(invalid)?)
                }
                _ => {
                    return Err(invalid(
                        "'websocket.send' needs exactly one of 'text' and 'bytes'".into(),
                    ));
                }
            }
        }
        "websocket.close" => WsAppMessage::Close {
            code: match m.get("code") {
                None | Some(Value::Null) => 1000,
                Some(c) => u16::try_from(as_int(c, "'code'").map_err(invalid)?)
                    .map_err(|_| invalid(format!("invalid WebSocket close code {c}")))?,
            },
            reason: opt_str(m, "reason").map_err(invalid)?.unwrap_or_default(),
        },
        "websocket.http.response.start" => WsAppMessage::HttpResponseStart {
            status: status(m, kind).map_err(invalid)?,
            headers: headers(m.get("headers")).map_err(invalid)?,
        },
        "websocket.http.response.body" => WsAppMessage::HttpResponseBody {
            body: match m.get("body") {
                Some(b) => as_bytes(b, "'body'").map_err(invalid)?,
                None => Bytes::new(),
            },
            more_body: opt_bool(m, "more_body").map_err(invalid)?,
        },
        other => {
            return Err(Refused::Protocol(format!(
                "unexpected ASGI message type {other:?} on a WebSocket connection"
            )));
        }
    };
    Ok(msg)
}

/// Converts a `send()` message of the lifespan scope.
pub(crate) fn lifespan_message(v: &Value) -> Result<LifespanMessage, Refused> {
    let (m, kind) = fields(v)?;
    let text = || {
        opt_str(m, "message")
            .map(Option::unwrap_or_default)
            .map_err(Refused::Invalid)
    };
    Ok(match kind {
        "lifespan.startup.complete" => LifespanMessage::StartupComplete,
        "lifespan.startup.failed" => LifespanMessage::StartupFailed(text()?),
        "lifespan.shutdown.complete" => LifespanMessage::ShutdownComplete,
        "lifespan.shutdown.failed" => LifespanMessage::ShutdownFailed(text()?),
        other => {
            return Err(Refused::Protocol(format!(
                "unexpected ASGI message type {other:?} on the lifespan scope"
            )));
        }
    })
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
        a.as_ref().map_or(Value::Null, |a| json!([a.host, a.port]))
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
