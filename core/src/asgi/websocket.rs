//! One ASGI WebSocket connection (ASGI WebSocket spec 2.5, with the
//! `websocket.http.response` denial extension), independent of the transport.
//!
//! # Call order
//! * The transport reports the peer with [`WebSocketStream::handle_message`],
//!   [`WebSocketStream::handle_peer_close`] and
//!   [`WebSocketStream::handle_disconnect`].
//! * Each `receive()` calls [`WebSocketStream::poll_receive`]; on
//!   [`WsReceive::Pending`] the frontend MUST wait for one of the inputs above
//!   (level-triggered).
//! * Each `send()` calls [`WebSocketStream::handle_app`], which validates the
//!   message and returns what to write.
//! * When the application returns or raises, the frontend calls
//!   [`WebSocketStream::handle_app_exit`] and writes what it returns.

use std::collections::VecDeque;

use bytes::Bytes;

use super::http::{ResponseStart, SendError};
use super::scope::HttpScope;

/// `asgi["spec_version"]` of the WebSocket scope.
pub const WEBSOCKET_SPEC_VERSION: &str = "2.5";

/// The scope of a WebSocket connection: the HTTP scope fields (with scheme
/// `ws`/`wss`) plus the subprotocols the client offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketScope {
    /// Every field shared with the HTTP scope. `method` is not part of the
    /// WebSocket scope and frontends leave it out.
    pub http: HttpScope,
    /// `scope["subprotocols"]`, split from `Sec-WebSocket-Protocol` and
    /// trimmed, in the client's order.
    pub subprotocols: Vec<String>,
}

impl WebSocketScope {
    /// Makes a WebSocket scope from the HTTP scope of the upgrade request.
    pub fn new(mut http: HttpScope) -> Self {
        http.scheme = if http.scheme == "https" { "wss" } else { "ws" };
        let subprotocols = http
            .headers
            .iter()
            .filter(|(n, _)| n.as_ref() == b"sec-websocket-protocol")
            .flat_map(|(_, v)| crate::http::list(v))
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        Self { http, subprotocols }
    }
}

/// A message the application passed to `send()`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsAppMessage {
    /// `websocket.accept`
    Accept {
        /// `subprotocol`
        subprotocol: Option<String>,
        /// `headers`
        headers: Vec<(Bytes, Bytes)>,
    },
    /// `websocket.send` with `text`
    SendText(String),
    /// `websocket.send` with `bytes`
    SendBytes(Bytes),
    /// `websocket.close`
    Close {
        /// `code` (1000 when absent)
        code: u16,
        /// `reason`
        reason: String,
    },
    /// `websocket.http.response.start` (denial response extension)
    HttpResponseStart {
        /// `status`
        status: u16,
        /// `headers`
        headers: Vec<(Bytes, Bytes)>,
    },
    /// `websocket.http.response.body`
    HttpResponseBody {
        /// `body`
        body: Bytes,
        /// `more_body`
        more_body: bool,
    },
}

/// What `receive()` yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsReceive {
    /// `websocket.connect`
    Connect,
    /// `websocket.receive` with `text`
    Text(String),
    /// `websocket.receive` with `bytes`
    Bytes(Bytes),
    /// `websocket.disconnect`
    Disconnect {
        /// `code`: the peer's close code, 1005 when it gave none, 1006 when
        /// the connection was lost without a close frame.
        code: u16,
        /// `reason`
        reason: String,
    },
    /// Nothing yet.
    Pending,
}

/// What the frontend must do after a `send()` or the end of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsOutput {
    /// Nothing to write.
    Nothing,
    /// Complete the handshake: `101 Switching Protocols` with these.
    Accept {
        /// The chosen subprotocol, if any.
        subprotocol: Option<String>,
        /// Extra response headers from the app.
        headers: Vec<(Bytes, Bytes)>,
    },
    /// A text message to send.
    Text(String),
    /// A binary message to send.
    Binary(Bytes),
    /// A close frame to send (the connection closes once the peer answers
    /// or after a timeout).
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Refuse the handshake with an HTTP response head (no upgrade headers).
    DenyStart(ResponseStart),
    /// Body of the denial response; `end` closes the connection after it.
    DenyBody {
        /// Body bytes.
        body: Bytes,
        /// The denial response is complete.
        end: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `websocket.connect` not yet yielded.
    New,
    /// `websocket.connect` yielded; waiting for accept, close or a denial.
    Handshake,
    /// A denial response started; its body follows.
    Denying,
    /// Accepted; messages flow both ways.
    Open,
    /// The app sent `websocket.close` (or the denial ended): nothing more
    /// may be sent.
    Closed,
}

/// The state of one ASGI WebSocket connection.
#[derive(Debug)]
pub struct WebSocketStream {
    state: State,
    incoming: VecDeque<WsReceive>,
    /// The peer is gone or closed; set once, with what `receive()` reports.
    gone: Option<(u16, String)>,
    disconnect_delivered: bool,
}

impl Default for WebSocketStream {
    fn default() -> Self {
        Self::new()
    }
}

/// Close code reported when the connection dropped without a close frame
/// (RFC 6455 §7.1.5).
pub const CLOSE_ABNORMAL: u16 = 1006;
/// Close code reported when a close frame carried no code (RFC 6455 §7.1.5).
pub const CLOSE_NO_STATUS: u16 = 1005;

impl WebSocketStream {
    /// A new connection whose upgrade request was valid.
    pub fn new() -> Self {
        Self {
            state: State::New,
            incoming: VecDeque::new(),
            gone: None,
            disconnect_delivered: false,
        }
    }

    /// A message from the peer.
    pub fn handle_message(&mut self, msg: WsReceive) {
        if self.gone.is_none() && matches!(msg, WsReceive::Text(_) | WsReceive::Bytes(_)) {
            self.incoming.push_back(msg);
        }
    }

    /// The peer sent a close frame.
    pub fn handle_peer_close(&mut self, code: u16, reason: String) {
        if self.gone.is_none() {
            self.gone = Some((code, reason));
        }
    }

    /// The connection was lost (or the handshake never completed).
    pub fn handle_disconnect(&mut self) {
        if self.gone.is_none() {
            self.gone = Some((CLOSE_ABNORMAL, String::new()));
        }
    }

    /// Peer messages not yet taken by `receive()`; the transport stops
    /// reading while this is at its limit (`--ws-max-queue`).
    pub fn queued(&self) -> usize {
        self.incoming.len()
    }

    /// Whether the peer is gone or closed.
    pub fn is_gone(&self) -> bool {
        self.gone.is_some()
    }

    /// Whether the application can send nothing more.
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether [`Self::poll_receive`] would yield something.
    pub fn receive_ready(&self) -> bool {
        self.state == State::New
            || !self.incoming.is_empty()
            || (self.gone.is_some() && !self.disconnect_delivered)
            || (self.state == State::Closed && !self.disconnect_delivered)
    }

    /// What `receive()` yields now.
    pub fn poll_receive(&mut self) -> WsReceive {
        if self.state == State::New {
            self.state = State::Handshake;
            return WsReceive::Connect;
        }
        if let Some(msg) = self.incoming.pop_front() {
            return msg;
        }
        if let Some((code, reason)) = &self.gone {
            self.disconnect_delivered = true;
            return WsReceive::Disconnect {
                code: *code,
                reason: reason.clone(),
            };
        }
        if self.state == State::Closed {
            // The app closed; it learns nothing more from the peer.
            self.disconnect_delivered = true;
            return WsReceive::Disconnect {
                code: CLOSE_NO_STATUS,
                reason: String::new(),
            };
        }
        WsReceive::Pending
    }

    /// Validates a message from `send()` and returns what to write.
    pub fn handle_app(&mut self, msg: WsAppMessage) -> Result<WsOutput, SendError> {
        use WsAppMessage as M;
        if self.gone.is_some() && !matches!(self.state, State::New | State::Handshake) {
            return Err(SendError::Disconnected);
        }
        match (self.state, msg) {
            (
                State::New | State::Handshake,
                M::Accept {
                    subprotocol,
                    headers,
                },
            ) => {
                if self.gone.is_some() {
                    return Err(SendError::Disconnected);
                }
                self.state = State::Open;
                Ok(WsOutput::Accept {
                    subprotocol,
                    headers,
                })
            }
            (State::New | State::Handshake, M::Close { .. }) => {
                // Close before accept: refuse the handshake with 403.
                self.state = State::Closed;
                Ok(WsOutput::DenyStart(ResponseStart {
                    status: 403,
                    headers: vec![(
                        Bytes::from_static(b"content-length"),
                        Bytes::from_static(b"0"),
                    )],
                }))
            }
            (State::New | State::Handshake, M::HttpResponseStart { status, headers }) => {
                if !(100..=999).contains(&status) || (100..200).contains(&status) {
                    return Err(SendError::Invalid(format!(
                        "invalid status {status} in 'websocket.http.response.start'"
                    )));
                }
                self.state = State::Denying;
                Ok(WsOutput::DenyStart(ResponseStart { status, headers }))
            }
            (State::Denying, M::HttpResponseBody { body, more_body }) => {
                if !more_body {
                    self.state = State::Closed;
                }
                Ok(WsOutput::DenyBody {
                    body,
                    end: !more_body,
                })
            }
            (State::Open, M::SendText(text)) => Ok(WsOutput::Text(text)),
            (State::Open, M::SendBytes(data)) => Ok(WsOutput::Binary(data)),
            (State::Open, M::Close { code, reason }) => {
                validate_close(code, &reason)?;
                self.state = State::Closed;
                Ok(WsOutput::Close { code, reason })
            }
            (State::New | State::Handshake, _) => Err(SendError::Invalid(
                "expected 'websocket.accept', 'websocket.close' or \
                 'websocket.http.response.start' before anything else"
                    .into(),
            )),
            (State::Denying, _) => Err(SendError::Invalid(
                "expected 'websocket.http.response.body' during a denial response".into(),
            )),
            (State::Open, M::Accept { .. }) => {
                Err(SendError::Invalid("'websocket.accept' sent twice".into()))
            }
            (State::Open, _) => Err(SendError::Invalid(
                "the WebSocket is open: only 'websocket.send' and 'websocket.close' are allowed"
                    .into(),
            )),
            (State::Closed, _) => Err(SendError::Invalid(
                "unexpected ASGI message after 'websocket.close' or the end of the response".into(),
            )),
        }
    }

    /// The application returned (`failed` false) or raised. Returns what to
    /// write: a 500 for a handshake left unanswered by a failure, 403 when
    /// it returned without answering, a close 1011 for an open connection
    /// whose app raised (1000 when it returned).
    pub fn handle_app_exit(&mut self, failed: bool) -> WsOutput {
        let state = self.state;
        self.state = State::Closed;
        match state {
            State::New | State::Handshake => {
                if self.gone.is_some() {
                    return WsOutput::Nothing;
                }
                let status = if failed { 500 } else { 403 };
                WsOutput::DenyStart(ResponseStart {
                    status,
                    headers: vec![(
                        Bytes::from_static(b"content-length"),
                        Bytes::from_static(b"0"),
                    )],
                })
            }
            // A denial cut short: close the connection.
            State::Denying => WsOutput::DenyBody {
                body: Bytes::new(),
                end: true,
            },
            State::Open if self.gone.is_none() => WsOutput::Close {
                code: if failed { 1011 } else { 1000 },
                reason: String::new(),
            },
            State::Open | State::Closed => WsOutput::Nothing,
        }
    }
}

/// Checks a close code and reason the app wants to send (RFC 6455 §7.4).
fn validate_close(code: u16, reason: &str) -> Result<(), SendError> {
    let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !valid {
        return Err(SendError::Invalid(format!(
            "invalid WebSocket close code {code}"
        )));
    }
    if reason.len() > 123 {
        return Err(SendError::Invalid(
            "WebSocket close reason longer than 123 bytes".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept() -> WsAppMessage {
        WsAppMessage::Accept {
            subprotocol: None,
            headers: vec![],
        }
    }

    #[test]
    fn connect_first_then_messages_in_order() {
        let mut s = WebSocketStream::new();
        assert!(s.receive_ready());
        assert_eq!(s.poll_receive(), WsReceive::Connect);
        assert_eq!(s.poll_receive(), WsReceive::Pending);
        assert!(matches!(
            s.handle_app(accept()),
            Ok(WsOutput::Accept { .. })
        ));
        s.handle_message(WsReceive::Text("a".into()));
        s.handle_message(WsReceive::Bytes(Bytes::from_static(b"b")));
        assert_eq!(s.queued(), 2);
        assert_eq!(s.poll_receive(), WsReceive::Text("a".into()));
        assert_eq!(s.poll_receive(), WsReceive::Bytes(Bytes::from_static(b"b")));
        assert!(!s.receive_ready());
        s.handle_peer_close(1001, "bye".into());
        assert_eq!(
            s.poll_receive(),
            WsReceive::Disconnect {
                code: 1001,
                reason: "bye".into()
            }
        );
    }

    #[test]
    fn close_before_accept_is_403() {
        let mut s = WebSocketStream::new();
        s.poll_receive();
        let out = s
            .handle_app(WsAppMessage::Close {
                code: 1000,
                reason: String::new(),
            })
            .unwrap();
        let WsOutput::DenyStart(start) = out else {
            panic!("{out:?}")
        };
        assert_eq!(start.status, 403);
        assert!(s.is_finished());
    }

    #[test]
    fn denial_response_extension() {
        let mut s = WebSocketStream::new();
        s.poll_receive();
        let out = s
            .handle_app(WsAppMessage::HttpResponseStart {
                status: 401,
                headers: vec![],
            })
            .unwrap();
        assert!(matches!(
            out,
            WsOutput::DenyStart(ResponseStart { status: 401, .. })
        ));
        assert!(s.handle_app(accept()).is_err());
        let out = s
            .handle_app(WsAppMessage::HttpResponseBody {
                body: Bytes::from_static(b"no"),
                more_body: false,
            })
            .unwrap();
        assert_eq!(
            out,
            WsOutput::DenyBody {
                body: Bytes::from_static(b"no"),
                end: true
            }
        );
        assert!(s.is_finished());
    }

    #[test]
    fn send_before_accept_is_invalid() {
        let mut s = WebSocketStream::new();
        s.poll_receive();
        assert!(matches!(
            s.handle_app(WsAppMessage::SendText("x".into())),
            Err(SendError::Invalid(_))
        ));
    }

    #[test]
    fn send_after_peer_closed_is_disconnected() {
        let mut s = WebSocketStream::new();
        s.poll_receive();
        s.handle_app(accept()).unwrap();
        s.handle_peer_close(1000, String::new());
        assert_eq!(
            s.handle_app(WsAppMessage::SendText("x".into())),
            Err(SendError::Disconnected)
        );
    }

    #[test]
    fn close_code_is_validated() {
        let mut s = WebSocketStream::new();
        s.poll_receive();
        s.handle_app(accept()).unwrap();
        for bad in [999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(
                s.handle_app(WsAppMessage::Close {
                    code: bad,
                    reason: String::new()
                })
                .is_err(),
                "{bad}"
            );
        }
        let out = s
            .handle_app(WsAppMessage::Close {
                code: 4000,
                reason: "done".into(),
            })
            .unwrap();
        assert_eq!(
            out,
            WsOutput::Close {
                code: 4000,
                reason: "done".into()
            }
        );
        assert!(s.handle_app(WsAppMessage::SendText("late".into())).is_err());
    }

    #[test]
    fn app_exit_outcomes() {
        let mut s = WebSocketStream::new();
        s.poll_receive();
        assert!(matches!(
            s.handle_app_exit(true),
            WsOutput::DenyStart(ResponseStart { status: 500, .. })
        ));
        let mut s = WebSocketStream::new();
        s.poll_receive();
        assert!(matches!(
            s.handle_app_exit(false),
            WsOutput::DenyStart(ResponseStart { status: 403, .. })
        ));
        let mut s = WebSocketStream::new();
        s.poll_receive();
        s.handle_app(accept()).unwrap();
        assert_eq!(
            s.handle_app_exit(true),
            WsOutput::Close {
                code: 1011,
                reason: String::new()
            }
        );
    }

    #[test]
    fn lost_connection_reports_1006() {
        let mut s = WebSocketStream::new();
        s.poll_receive();
        s.handle_app(accept()).unwrap();
        s.handle_disconnect();
        assert_eq!(
            s.poll_receive(),
            WsReceive::Disconnect {
                code: 1006,
                reason: String::new()
            }
        );
    }

    #[test]
    fn scope_splits_subprotocols() {
        let http = HttpScope::new(
            super::super::HttpVersion::Http11,
            b"GET",
            &Bytes::from_static(b"/ws"),
            vec![(
                Bytes::from_static(b"sec-websocket-protocol"),
                Bytes::from_static(b" chat , superchat,,"),
            )],
            &super::super::ConnectionInfo::default(),
        )
        .unwrap();
        let ws = WebSocketScope::new(http);
        assert_eq!(ws.subprotocols, vec!["chat", "superchat"]);
        assert_eq!(ws.http.scheme, "ws");
    }
}
