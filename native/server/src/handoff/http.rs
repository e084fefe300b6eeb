//! State of one request shared between its connection task (I/O thread) and
//! its application (the Python thread, or an embedding program's threads).
//!
//! Lock discipline: the mutex is held only for short bookkeeping, never
//! across an await or a call into Python, and the I/O thread never takes the
//! GIL while holding it (it never takes the GIL at all).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use cormorant_core::asgi::{HttpScope, HttpStream, Output, Receive};

use super::{Handoff, SendSide, Waiters};

/// Response bytes queued by `send()` above which `send()` waits for the
/// connection to drain: bounds memory per slow client.
pub const SEND_HIGH_WATER: usize = 256 * 1024;
/// Queued response bytes at or below which a waiting `send()` resumes.
pub const SEND_LOW_WATER: usize = 64 * 1024;
/// Request body bytes buffered ahead of the application before the
/// connection stops reading: large enough that a 4 MB upload arrives in a
/// handful of `http.request` messages, small enough to bound memory.
pub const RECV_HIGH_WATER: usize = 1024 * 1024;

/// A request handed to the application side.
pub struct NewRequest {
    pub scope: HttpScope,
    /// The server side is a Unix socket (then `scope["server"]` has no port).
    pub unix: bool,
    /// What the TLS handshake established, on a TLS connection.
    pub tls: Option<Arc<crate::tls::TlsInfo>>,
    pub shared: Arc<Shared>,
}

/// The request's shared state. The connection task is woken through
/// [`Handoff::wake_conn`], which batches the cross-thread wake-ups: output
/// was queued, or the app asked for body.
pub type Shared = Handoff<StreamState>;

impl SendSide for StreamState {
    fn can_send(&self) -> bool {
        self.out_bytes <= SEND_LOW_WATER || self.stream.is_disconnected()
    }

    fn waiters(&mut self) -> &mut Waiters {
        &mut self.waiters
    }
}

/// Everything behind the lock.
pub struct StreamState {
    /// The ASGI machine: validates `send()` and decides `receive()`.
    pub stream: HttpStream,
    /// Output from the application, in order, for the connection to write.
    pub out: VecDeque<Output>,
    /// Body bytes in `out` or written-but-unacknowledged.
    pub out_bytes: usize,
    /// The application called `receive()` at least once (for 100-continue).
    pub body_requested: bool,
    /// The application's waiting `receive()` and `send()`.
    pub waiters: Waiters,
}

impl Shared {
    pub fn new(stream: HttpStream) -> Self {
        Self::with_state(StreamState {
            stream,
            out: VecDeque::new(),
            out_bytes: 0,
            body_requested: false,
            waiters: Waiters::default(),
        })
    }
}

impl StreamState {
    /// Whether the application thread must be woken: a waiter exists that can now
    /// make progress and no wake is queued yet. Marks the wake as queued.
    pub fn needs_wake(&mut self) -> bool {
        // The stream is asked only on behalf of a waiter: most calls have
        // none.
        let can_receive = self.waiters.recv.is_some() && self.stream.receive_ready();
        let can_send = self.waiters.send.is_some() && self.can_send();
        self.waiters.needs_wake(can_receive, can_send)
    }

    /// The application's `receive()`: core's answer, and whether the
    /// connection must look again. It must when the app waits (the first
    /// ask may be what a `100 Continue` waits for, and the body buffer has
    /// room), when more body is to come (room again), and on the first ask
    /// while the body is still arriving; not once the whole body is taken.
    pub fn receive(&mut self) -> (Receive, bool) {
        let first_ask = !std::mem::replace(&mut self.body_requested, true);
        let r = self.stream.poll_receive();
        let wake = match &r {
            Receive::Pending => true,
            Receive::HttpRequest { more_body, .. } => {
                *more_body || (first_ask && self.stream.wants_body())
            }
            Receive::HttpDisconnect => false,
        };
        (r, wake)
    }

    /// Feeds a body chunk from the connection.
    pub fn push_body(&mut self, chunk: Bytes, more: bool) {
        self.stream.handle_body(chunk, more);
    }
}
