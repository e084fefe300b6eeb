//! The state one WebSocket connection shares between its connection task
//! (on the I/O thread) and the application.

use std::collections::VecDeque;
use std::sync::Arc;

use cormorant_core::asgi::{WebSocketScope, WebSocketStream, WsOutput, WsReceive};

use super::{Handoff, SendSide, Waiters};

/// Outgoing message bytes queued by `send()` above which `send()` waits for
/// the connection to drain.
pub const WS_SEND_HIGH_WATER: usize = 256 * 1024;
/// Queued bytes at or below which a waiting `send()` resumes.
pub const WS_SEND_LOW_WATER: usize = 64 * 1024;

/// A WebSocket connection handed to the application side.
pub struct NewWebSocket {
    pub scope: WebSocketScope,
    pub unix: bool,
    /// What the TLS handshake established, on a TLS connection.
    pub tls: Option<Arc<crate::tls::TlsInfo>>,
    pub shared: Arc<WsShared>,
}

impl NewWebSocket {
    /// Hands the app, through `queue`, the WebSocket whose opening
    /// handshake `http` describes (an HTTP/1.1 upgrade or an extended
    /// CONNECT); returns what the session shares with it.
    pub(crate) fn hand_over(
        queue: &super::queue::JobQueue,
        http: cormorant_core::asgi::HttpScope,
        unix: bool,
        tls: Option<Arc<crate::tls::TlsInfo>>,
    ) -> Arc<WsShared> {
        let shared = Arc::new(WsShared::new());
        queue.push(super::queue::Job::WebSocket(Box::new(Self {
            scope: WebSocketScope::new(http),
            unix,
            tls,
            shared: shared.clone(),
        })));
        shared
    }
}

/// State shared by the connection task and the application.
pub type WsShared = Handoff<WsState>;

impl SendSide for WsState {
    fn can_send(&self) -> bool {
        self.out_bytes <= WS_SEND_LOW_WATER || self.stream.is_gone()
    }

    fn receive_ready(&self) -> bool {
        self.stream.receive_ready()
    }

    fn waiters(&mut self) -> &mut Waiters {
        &mut self.waiters
    }
}

/// Everything behind the lock.
pub struct WsState {
    /// The ASGI machine.
    pub stream: WebSocketStream,
    /// Output from the application, in order.
    pub out: VecDeque<WsOutput>,
    /// Message bytes in `out` or not yet written.
    pub out_bytes: usize,
    /// The application's waiting `receive()` and `send()`.
    pub waiters: Waiters,
    /// The connection stopped reading: the app had not taken its queue's
    /// limit of messages at the last pump. Taking one must wake it.
    pub read_paused: bool,
}

impl WsState {
    /// The next event for the app's `receive()`, and whether the taking
    /// must wake the connection (it paused reading for the app).
    pub fn take_received(&mut self) -> (WsReceive, bool) {
        let r = self.stream.poll_receive();
        let wake = self.read_paused && r != WsReceive::Pending;
        (r, wake)
    }
}

impl WsState {
    /// The app's output for the handshake: everything queued, up to and
    /// including an accept. Messages sent right after the accept stay
    /// queued, in order, for the open session.
    pub fn take_handshake_output(&mut self) -> Vec<WsOutput> {
        let end = self
            .out
            .iter()
            .position(|o| matches!(o, WsOutput::Accept { .. }))
            .map_or(self.out.len(), |i| i + 1);
        self.out.drain(..end).collect()
    }
}

impl WsShared {
    pub(crate) fn new() -> Self {
        Self::with_state(WsState {
            stream: WebSocketStream::new(),
            out: VecDeque::new(),
            out_bytes: 0,
            waiters: Waiters::default(),
            read_paused: false,
        })
    }
}

/// Message bytes an output carries, for send-side backpressure.
pub fn output_len(out: &WsOutput) -> usize {
    match out {
        WsOutput::Text(t) => t.len(),
        WsOutput::Binary(b) => b.len(),
        WsOutput::DenyBody { body, .. } => body.len(),
        _ => 0,
    }
}
