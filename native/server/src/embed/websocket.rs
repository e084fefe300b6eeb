//! One WebSocket connection of an embedded server, driven by blocking calls
//! from any thread.

use std::sync::Arc;

use bytes::Bytes;
use cormorant_core::asgi::{WebSocketScope, WsAppMessage, WsOutput, WsReceive};

use super::{Link, StreamError, flush, park};
use crate::handoff::websocket::{NewWebSocket, WS_SEND_HIGH_WATER, WsShared, output_len};
use crate::handoff::{Waiter, on_io_thread};

/// A message from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// The connection ended: the peer's close code (1005 when it gave none,
    /// 1006 when the connection was lost) and reason.
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// A WebSocket upgrade request, then the connection once accepted. Owned by
/// one thread at a time; it may move between threads.
pub struct WebSocket {
    scope: WebSocketScope,
    shared: Arc<WsShared>,
    link: Arc<Link>,
    /// `websocket.connect` was taken from the machine.
    connected: bool,
}

impl WebSocket {
    pub fn new(nw: NewWebSocket, link: Arc<Link>) -> Self {
        Self {
            scope: nw.scope,
            shared: nw.shared,
            link,
            connected: false,
        }
    }

    /// The upgrade request's scope (path, headers, offered subprotocols...).
    pub fn scope(&self) -> &WebSocketScope {
        &self.scope
    }

    /// Accepts the upgrade, choosing `subprotocol` (one the client offered).
    pub fn accept(&mut self, subprotocol: Option<String>) -> Result<(), StreamError> {
        self.connect()?;
        self.send(WsAppMessage::Accept {
            subprotocol,
            headers: Vec::new(),
        })
    }

    /// Refuses the upgrade with an empty `status` response.
    pub fn deny(&mut self, status: u16) -> Result<(), StreamError> {
        self.connect()?;
        self.send(WsAppMessage::HttpResponseStart {
            status,
            headers: vec![(
                Bytes::from_static(b"content-length"),
                Bytes::from_static(b"0"),
            )],
        })?;
        self.send(WsAppMessage::HttpResponseBody {
            body: Bytes::new(),
            more_body: false,
        })
    }

    /// Waits for the next message. After [`Message::Closed`] nothing more
    /// comes.
    pub fn receive(&mut self) -> Result<Message, StreamError> {
        self.connect()?;
        match self.next()? {
            WsReceive::Text(t) => Ok(Message::Text(t)),
            WsReceive::Bytes(b) => Ok(Message::Binary(b)),
            WsReceive::Disconnect { code, reason } => Ok(Message::Closed { code, reason }),
            _ => Err(StreamError::Disconnected),
        }
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: String) -> Result<(), StreamError> {
        self.send(WsAppMessage::SendText(text))
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: Bytes) -> Result<(), StreamError> {
        self.send(WsAppMessage::SendBytes(data))
    }

    /// Starts the close handshake with `code` and `reason`.
    pub fn close(&mut self, code: u16, reason: String) -> Result<(), StreamError> {
        self.send(WsAppMessage::Close { code, reason })
    }

    /// Takes `websocket.connect`, the first thing the machine yields.
    fn connect(&mut self) -> Result<(), StreamError> {
        if !self.connected {
            self.connected = true;
            if self.next()? != WsReceive::Connect {
                return Err(StreamError::Disconnected);
            }
        }
        Ok(())
    }

    /// The next event of the machine, parking until there is one.
    fn next(&mut self) -> Result<WsReceive, StreamError> {
        loop {
            let mut st = self.shared.lock();
            let (r, wake) = st.take_received();
            if r != WsReceive::Pending {
                drop(st);
                if wake {
                    self.shared.wake_conn(&self.link.conn_wakes);
                }
                return Ok(r);
            }
            if on_io_thread() {
                return Err(StreamError::WouldBlock);
            }
            st.waiters.wait_recv(Waiter::this_thread());
            drop(st);
            if !park(&self.link) {
                return Err(StreamError::Disconnected);
            }
        }
    }

    fn send(&mut self, msg: WsAppMessage) -> Result<(), StreamError> {
        let mut st = self.shared.lock();
        let out = st.stream.handle_app(msg)?;
        if out == WsOutput::Nothing {
            return Ok(());
        }
        st.out_bytes += output_len(&out);
        st.out.push_back(out);
        let full = st.out_bytes > WS_SEND_HIGH_WATER;
        drop(st);
        flush(&self.shared, &self.link, full)
    }
}

impl Drop for WebSocket {
    /// The application is done: an upgrade never answered is denied (403),
    /// an open connection is closed (1000).
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let out = st.stream.handle_app_exit(false);
        if out != WsOutput::Nothing {
            st.out.push_back(out);
        }
        drop(st);
        self.shared.wake_conn(&self.link.conn_wakes);
    }
}
