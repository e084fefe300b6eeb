//! The state one WebSocket connection shares between its connection task
//! (on the I/O thread) and the application.

use std::collections::VecDeque;
use std::sync::Arc;

use cormorant_core::asgi::{WebSocketScope, WebSocketStream, WsOutput};

use super::queue::ConnWake;
use super::{Handoff, Waiter, Woken, unpark_thread};

/// Outgoing message bytes queued by `send()` above which `send()` waits for
/// the connection to drain.
pub(crate) const WS_SEND_HIGH_WATER: usize = 256 * 1024;
/// Queued bytes at or below which a waiting `send()` resumes.
pub(crate) const WS_SEND_LOW_WATER: usize = 64 * 1024;

/// A WebSocket connection handed to the Python thread.
pub(crate) struct NewWebSocket {
    pub(crate) scope: WebSocketScope,
    pub(crate) unix: bool,
    /// What the TLS handshake established, on a TLS connection.
    pub(crate) tls: Option<Arc<crate::tls::TlsInfo>>,
    pub(crate) shared: Arc<WsShared>,
}

/// State shared by the connection task and the application.
pub(crate) type WsShared = Handoff<WsState>;

impl Woken for WsState {
    fn conn_wake(shared: Arc<WsShared>) -> ConnWake {
        ConnWake::WebSocket(shared)
    }
}

/// Everything behind the lock.
pub(crate) struct WsState {
    /// The ASGI machine.
    pub(crate) stream: WebSocketStream,
    /// Output from the application, in order.
    pub(crate) out: VecDeque<WsOutput>,
    /// Message bytes in `out` or not yet written.
    pub(crate) out_bytes: usize,
    /// Future of a `receive()` waiting for a message.
    pub(crate) recv_waiter: Option<Waiter>,
    /// Future of a `send()` waiting for room.
    pub(crate) send_waiter: Option<Waiter>,
    /// A wake job is already queued for the Python thread.
    pub(crate) wake_queued: bool,
}

impl WsShared {
    pub(crate) fn new() -> Self {
        Self::with_state(WsState {
            stream: WebSocketStream::new(),
            out: VecDeque::new(),
            out_bytes: 0,
            recv_waiter: None,
            send_waiter: None,
            wake_queued: false,
        })
    }
}

impl WsState {
    /// Whether the Python side must be woken; marks the wake as queued.
    pub(crate) fn needs_wake(&mut self) -> bool {
        if self.wake_queued {
            return false;
        }
        let recv_ready = self.recv_waiter.is_some() && self.stream.receive_ready();
        let send_ready = self.send_waiter.is_some()
            && (self.out_bytes <= WS_SEND_LOW_WATER || self.stream.is_gone());
        // A thread of the embedding API is woken right here; only a
        // future needs the application thread.
        let parked = (!recv_ready || unpark_thread(&mut self.recv_waiter))
            && (!send_ready || unpark_thread(&mut self.send_waiter));
        if (recv_ready || send_ready) && !parked {
            self.wake_queued = true;
            true
        } else {
            false
        }
    }
}

/// Message bytes an output carries, for send-side backpressure.
pub(crate) fn output_len(out: &WsOutput) -> usize {
    match out {
        WsOutput::Text(t) => t.len(),
        WsOutput::Binary(b) => b.len(),
        WsOutput::DenyBody { body, .. } => body.len(),
        _ => 0,
    }
}
