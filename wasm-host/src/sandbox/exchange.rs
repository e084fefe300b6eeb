//! One connection between a scripted client and the app in the sandbox:
//! the host side of `receive()`/`send()` (the WIT `asgi` interface), every
//! message checked by `cormorant_core::asgi`, and the record of what the app
//! did.

use bytes::Bytes;
use cormorant_core::asgi::{
    HttpStream, Lifespan, LifespanPhase, Output, SendError as CoreSendError, WebSocketStream,
    WsOutput, WsReceive,
};
use serde_json::Value;

use super::bindings::cormorant::sandbox::asgi::{Host, SendError};
use super::message::{self, Refused};
use super::pyrepr::py_repr;

/// What the client sends on one connection.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Request method (`GET` for a WebSocket).
    pub method: String,
    /// Request target: path and query string.
    pub target: String,
    /// Header fields (names as given; the scope lowercases them).
    pub headers: Vec<(String, String)>,
    /// Request body, delivered in one `http.request`.
    pub body: Vec<u8>,
    /// Present for a WebSocket connection.
    pub websocket: Option<WsClient>,
}

/// The client side of a WebSocket connection.
#[derive(Debug, Clone, Default)]
pub struct WsClient {
    /// Subprotocols offered (`Sec-WebSocket-Protocol`).
    pub subprotocols: Vec<String>,
    /// Messages sent once the app accepts, in order.
    pub messages: Vec<WsMessage>,
    /// The close code the client sends when the app waits for more.
    pub close_code: u16,
}

/// A WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// A message the app sent that the ASGI rules refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What is wrong.
    pub error: String,
    /// The offending message, as Python would print it.
    pub message: String,
}

/// Why the app did not finish normally.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// It raised: the traceback.
    Exception(String),
    /// It waits for something that cannot come.
    Stalled(String),
    /// Its timers ran past the virtual time limit (seconds reached).
    VirtualTimeout(f64),
    /// It ran past the wall-clock limit (an endless loop): the limit.
    Timeout(std::time::Duration),
    /// It grew its memory past the limit: the limit and the size asked for.
    Memory {
        /// The limit in bytes.
        limit: usize,
        /// The size the guest asked for, in bytes.
        asked: usize,
    },
    /// Lifespan startup failed (the request was not served): why.
    StartupFailed(String),
    /// The guest trapped for another reason.
    Trap(String),
}

/// What happened on one connection.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// HTTP (or WebSocket denial) response status.
    pub status: Option<u16>,
    /// Response header fields.
    pub headers: Vec<(Bytes, Bytes)>,
    /// Response body.
    pub body: Vec<u8>,
    /// The response was complete.
    pub complete: bool,
    /// The WebSocket was accepted, with this subprotocol.
    pub accepted: Option<Option<String>>,
    /// WebSocket messages the app sent.
    pub messages: Vec<WsMessage>,
    /// The close code the app (or the server for it) sent.
    pub close_code: Option<u16>,
    /// Messages refused by the ASGI rules, in order.
    pub violations: Vec<Violation>,
    /// How the app ended, if not normally.
    pub failure: Option<Failure>,
    /// What the server had to do for the app at its end (a 500, a cut-off
    /// response), described.
    pub exit_note: Option<String>,
    /// Where the lifespan ended, when it ran.
    pub lifespan: Option<LifespanPhase>,
    /// The app's stdout and stderr.
    pub output: String,
}

enum Stream {
    Http(HttpStream),
    Ws(WebSocketStream),
}

/// The host state of one connection.
pub(crate) struct Connection {
    stream: Stream,
    lifespan: Option<Lifespan>,
    client: Option<WsClient>,
    /// The record being written.
    record: Exchange,
}

impl Connection {
    /// The connection of `request`, in a lifespan cycle with `lifespan`.
    pub(crate) fn new(request: &Request, lifespan: bool) -> Self {
        let stream = match &request.websocket {
            Some(_) => Stream::Ws(WebSocketStream::new()),
            None => {
                let mut s = HttpStream::new(!request.body.is_empty(), request.method == "HEAD");
                if !request.body.is_empty() {
                    s.handle_body(Bytes::copy_from_slice(&request.body), false);
                }
                Stream::Http(s)
            }
        };
        Self {
            stream,
            lifespan: lifespan.then(Lifespan::new),
            client: request.websocket.clone(),
            record: Exchange::default(),
        }
    }

    fn http_output(&mut self, out: Output) {
        let r = &mut self.record;
        if let Some(start) = out.start {
            r.status = Some(start.status);
            r.headers = start.headers;
        }
        r.body.extend_from_slice(&out.body);
        r.complete |= out.end;
    }

    fn ws_output(&mut self, out: WsOutput) {
        let r = &mut self.record;
        match out {
            WsOutput::Accept { subprotocol, .. } => {
                r.accepted = Some(subprotocol);
                if let (Stream::Ws(s), Some(c)) = (&mut self.stream, &self.client) {
                    for m in &c.messages {
                        s.handle_message(match m {
                            WsMessage::Text(t) => WsReceive::Text(t.clone()),
                            WsMessage::Binary(b) => WsReceive::Bytes(Bytes::copy_from_slice(b)),
                        });
                    }
                }
            }
            WsOutput::Text(t) => r.messages.push(WsMessage::Text(t)),
            WsOutput::Binary(b) => r.messages.push(WsMessage::Binary(b.to_vec())),
            WsOutput::Close { code, .. } => r.close_code = Some(code),
            WsOutput::DenyStart(start) => {
                r.status = Some(start.status);
                r.headers = start.headers;
            }
            WsOutput::DenyBody { body, end } => {
                r.body.extend_from_slice(&body);
                r.complete |= end;
            }
            _ => {}
        }
    }

    /// The record, with where the lifespan ended.
    pub(crate) fn take_record(&mut self) -> Exchange {
        let mut record = std::mem::take(&mut self.record);
        record.lifespan = self.lifespan.as_ref().map(|l| l.phase().clone());
        record
    }

    /// The app returned (`failed` false) or did not: what the server does
    /// for it.
    pub(crate) fn exit(&mut self, failed: bool) {
        match &mut self.stream {
            Stream::Http(s) => {
                let note = match (s.response_started(), s.is_finished()) {
                    (_, true) => None,
                    (false, _) => Some("the app ended without sending 'http.response.start'"),
                    (true, false) => Some(
                        "the app ended before its final 'http.response.body' (more_body was still true)",
                    ),
                };
                let out = s.handle_app_exit(failed);
                if let Some(note) = note {
                    let what = if out.abort {
                        "the response was cut off"
                    } else {
                        "a 500 was sent"
                    };
                    self.record.exit_note = Some(format!("{note}: {what}"));
                }
                self.http_output(out);
            }
            Stream::Ws(s) => {
                let out = s.handle_app_exit(failed);
                if let WsOutput::DenyStart(start) = &out {
                    self.record.exit_note = Some(format!(
                        "the app ended without accepting or closing the WebSocket: {} was sent",
                        start.status
                    ));
                }
                self.ws_output(out);
            }
        }
    }

    /// Records a refused message; returns the error for the app.
    fn refuse(&mut self, refused: Refused, message: &Value) -> SendError {
        let (error, out) = match refused {
            Refused::Invalid(e) => (e.clone(), SendError::Invalid(e)),
            Refused::Protocol(e) => (e.clone(), SendError::Protocol(e)),
        };
        self.record.violations.push(Violation {
            error,
            message: py_repr(message),
        });
        out
    }
}

impl Host for Connection {
    fn receive(&mut self, idle: bool) -> Option<String> {
        let msg = match &mut self.stream {
            Stream::Http(s) => {
                if idle && !s.receive_ready() {
                    // The app waits with the request delivered: the client
                    // gives up on it, as a real one would.
                    s.handle_disconnect();
                }
                message::http_receive(&s.poll_receive())
            }
            Stream::Ws(s) => {
                if idle && !s.receive_ready() && !s.is_gone() {
                    let code = self.client.as_ref().map_or(1000, |c| c.close_code);
                    s.handle_peer_close(code, String::new());
                }
                message::ws_receive(&s.poll_receive())
            }
        };
        msg.map(|m| m.to_string())
    }

    fn send(&mut self, text: String) -> Result<(), SendError> {
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return Err(SendError::Invalid(format!("unreadable message: {e}"))),
        };
        let checked = match &mut self.stream {
            Stream::Http(s) => {
                message::http_message(&value).map(|m| s.handle_app(m).map(Sent::Http))
            }
            Stream::Ws(s) => message::ws_message(&value).map(|m| s.handle_app(m).map(Sent::Ws)),
        };
        let sent = checked.map_err(|r| self.refuse(r, &value))?;
        match sent {
            Ok(Sent::Http(out)) => self.http_output(out),
            Ok(Sent::Ws(out)) => self.ws_output(out),
            Err(CoreSendError::Disconnected) => return Err(SendError::Disconnected),
            Err(CoreSendError::Invalid(e)) => return Err(self.refuse(Refused::Protocol(e), &value)),
            Err(e) => return Err(SendError::Protocol(e.to_string())),
        }
        Ok(())
    }

    fn lifespan_receive(&mut self, _idle: bool) -> Option<String> {
        message::lifespan_receive(self.lifespan().poll_receive()).map(|m| m.to_string())
    }

    fn lifespan_send(&mut self, text: String) -> Result<(), SendError> {
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| SendError::Invalid(format!("unreadable message: {e}")))?;
        let checked = message::lifespan_message(&value).and_then(|m| {
            self.lifespan()
                .handle_app(m)
                .map_err(|e| Refused::Protocol(e.to_string()))
        });
        checked.map_err(|r| self.refuse(r, &value))
    }

    fn lifespan_exit(&mut self, error: Option<String>) {
        self.lifespan().handle_app_exit(error);
    }

    fn lifespan_started(&mut self) -> Option<Result<(), String>> {
        match self.lifespan().phase() {
            LifespanPhase::Starting => None,
            LifespanPhase::StartupFailed(why) => Some(Err(why.clone())),
            _ => Some(Ok(())),
        }
    }

    fn lifespan_shutdown(&mut self) {
        self.lifespan().handle_shutdown();
    }
}

impl Connection {
    fn lifespan(&mut self) -> &mut Lifespan {
        // The guest calls the lifespan functions only when asked to run a
        // lifespan; a guest that calls them anyway gets a fresh machine.
        self.lifespan.get_or_insert_with(Lifespan::new)
    }
}

enum Sent {
    Http(Output),
    Ws(WsOutput),
}
