//! Mailboxes between the I/O thread and the application side (the Python
//! thread, or an embedded server's dispatcher).
//!
//! Each side pushes work into the other's mailbox and, only when it was
//! empty, writes to the mailbox's eventfd, which the other side watches
//! (asyncio `add_reader` on the Python side, tokio `AsyncFd` on the I/O
//! side). The receiver drains everything in one wake-up, so under load one
//! crossing serves a whole batch of requests, in both directions. The I/O
//! thread never takes the GIL.

use std::sync::Arc;

use cormorant_core::asgi::{HttpStream, Output};

use super::http::{NewRequest, Shared, StreamState};
use super::mailbox::Mailbox;
use super::websocket::{NewWebSocket, WsShared, WsState};
use super::{AppWaking, ConnWaking};

/// Work for the application side.
pub enum Job {
    /// A request to hand to the application.
    Request(Box<NewRequest>),
    /// Something changed for a request whose app is waiting on a future.
    Wake(Arc<Shared>),
    /// A WebSocket connection to hand to the application.
    WebSocket(Box<NewWebSocket>),
    /// Something changed for a WebSocket whose app is waiting on a future.
    WsWake(Arc<WsShared>),
    /// The worker should stop (for example after `--limit-max-requests`).
    Stop,
    /// A line for the `cormorant.error` logger from the I/O thread, at a
    /// Python logging level (10 debug ... 40 error).
    Log(crate::config::Level, String),
    /// A line for the `cormorant.access` logger (when Python logging, not
    /// the I/O thread, writes the access log).
    Access(String),
}

/// The application side's mailbox.
pub type JobQueue = Mailbox<Job>;

/// The I/O thread's mailbox: streams whose connection task must look at
/// their shared state again.
pub type ConnWakes = Mailbox<ConnWake>;

/// A stream whose connection task must be woken.
pub enum ConnWake {
    /// An HTTP request.
    Http(Arc<Shared>),
    /// A WebSocket connection.
    WebSocket(Arc<WsShared>),
}

impl ConnWake {
    /// Wakes the connection task (on the I/O thread).
    pub fn deliver(self) {
        match self {
            Self::Http(s) => s.deliver_wake(),
            Self::WebSocket(s) => s.deliver_wake(),
        }
    }
}

impl ConnWaking<StreamState> for ConnWake {
    fn conn_wake(shared: Arc<Shared>) -> Self {
        Self::Http(shared)
    }
}

impl ConnWaking<WsState> for ConnWake {
    fn conn_wake(shared: Arc<WsShared>) -> Self {
        Self::WebSocket(shared)
    }
}

impl AppWaking<StreamState> for Job {
    fn app_wake(shared: Arc<Shared>) -> Self {
        Self::Wake(shared)
    }
}

impl AppWaking<WsState> for Job {
    fn app_wake(shared: Arc<WsShared>) -> Self {
        Self::WsWake(shared)
    }
}

impl Shared {
    /// The server answers in the app's place (a 500 when the app could not
    /// start, a 503 when the request is shed): `answer` makes the output
    /// from the stream; it is queued and the connection woken.
    pub fn answer(
        self: &Arc<Self>,
        wakes: &ConnWakes,
        answer: impl FnOnce(&mut HttpStream) -> Output,
    ) {
        let mut st = self.lock();
        let out = answer(&mut st.stream);
        st.queue_output(out);
        drop(st);
        self.wake_conn(wakes);
    }

    /// The client is gone: the app's `receive()` yields `http.disconnect`
    /// and its next `send()` raises.
    pub fn disconnect(self: &Arc<Self>, queue: &JobQueue) {
        self.update(queue, |st| st.stream.handle_disconnect());
    }

    /// `n` body bytes of the app's output were handed to the transport:
    /// a `send()` waiting for room may resume.
    pub fn written(self: &Arc<Self>, queue: &JobQueue, n: usize) {
        self.update(queue, |st| st.out_bytes = st.out_bytes.saturating_sub(n));
    }
}
