//! One HTTP request of an embedded server, answered by blocking calls from
//! any thread.

use std::sync::Arc;

use bytes::Bytes;
use cormorant_core::asgi::{AppMessage, HttpScope, Receive};

use super::{Link, StreamError, flush, park};
use crate::handoff::http::{NewRequest, SEND_HIGH_WATER, Shared};
use crate::handoff::{Waiter, on_io_thread};

/// An HTTP request and its response. Owned by one thread at a time; it may
/// move between threads. See [`super::Handler::request`].
pub struct Request {
    scope: HttpScope,
    shared: Arc<Shared>,
    link: Arc<Link>,
    /// Body received but not yet read by the caller.
    pending: Bytes,
    /// The whole request body was read.
    body_done: bool,
}

impl Request {
    pub fn new(nr: NewRequest, link: Arc<Link>) -> Self {
        Self {
            scope: nr.scope,
            shared: nr.shared,
            link,
            pending: Bytes::new(),
            body_done: false,
        }
    }

    /// The request's scope: method, path, query string, headers (names
    /// lowercase), HTTP version, scheme, client and server addresses.
    pub fn scope(&self) -> &HttpScope {
        &self.scope
    }

    /// Reads request body bytes into `buf`, blocking until some arrive.
    /// `Ok(0)` at the end of the body.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        while self.pending.is_empty() && !self.body_done && !buf.is_empty() {
            self.receive()?;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }

    /// The next piece of the request body as it arrived, without a copy,
    /// blocking until one does; empty at the end of the body.
    pub fn next_chunk(&mut self) -> Result<Bytes, StreamError> {
        while self.pending.is_empty() && !self.body_done {
            self.receive()?;
        }
        Ok(std::mem::take(&mut self.pending))
    }

    /// Whether more response bytes wait to be written than a blocking
    /// send lets queue up (a send from the I/O thread does not wait).
    pub fn backlogged(&self) -> bool {
        self.shared.lock().out_bytes > SEND_HIGH_WATER
    }

    /// Waits for the next body chunk (or the end, or a disconnect).
    fn receive(&mut self) -> Result<(), StreamError> {
        loop {
            let mut st = self.shared.lock();
            let (received, wake) = st.receive();
            match received {
                Receive::Pending if on_io_thread() => {
                    drop(st);
                    self.shared.wake_conn(&self.link.conn_wakes);
                    return Err(StreamError::WouldBlock);
                }
                Receive::Pending => {
                    st.waiters.wait_recv(Waiter::this_thread());
                    drop(st);
                    // The connection may wait for this first ask
                    // (100-continue) or for room in its body buffer.
                    self.shared.wake_conn(&self.link.conn_wakes);
                    if !park(&self.link) {
                        return Err(StreamError::Disconnected);
                    }
                }
                Receive::HttpRequest { body, more_body } => {
                    drop(st);
                    if wake {
                        self.shared.wake_conn(&self.link.conn_wakes);
                    }
                    self.pending = body;
                    self.body_done = !more_body;
                    return Ok(());
                }
                _ => return Err(StreamError::Disconnected),
            }
        }
    }

    /// Starts the response: status and header fields (names and values as
    /// raw bytes). `content-length` makes a fixed-length body, otherwise
    /// HTTP/1.1 uses chunked framing.
    pub fn respond(
        &mut self,
        status: u16,
        headers: Vec<(Bytes, Bytes)>,
    ) -> Result<(), StreamError> {
        self.send(AppMessage::HttpResponseStart {
            status,
            headers,
            trailers: false,
        })
    }

    /// Sends a piece of the body (`more` false ends the response). Blocks
    /// while more than 256 KiB wait to be written.
    pub fn write(&mut self, body: Bytes, more: bool) -> Result<(), StreamError> {
        self.send(AppMessage::HttpResponseBody {
            body,
            more_body: more,
        })
    }

    /// Hands one response message to the stream (any of [`AppMessage`]'s
    /// HTTP ones, `http.response.pathsend` included); a body blocks as
    /// [`Self::write`] does.
    pub fn send(&mut self, msg: AppMessage) -> Result<(), StreamError> {
        let mut st = self.shared.lock();
        let out = st.stream.handle_app(msg)?;
        if out.is_empty() {
            return Ok(());
        }
        st.queue_output(out);
        let full = st.out_bytes > SEND_HIGH_WATER;
        drop(st);
        flush(&self.shared, &self.link, full)
    }
}

impl Drop for Request {
    /// The application is done with the request: an incomplete response
    /// becomes a `500` (or is cut short).
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let was_finished = st.stream.is_finished();
        let out = st.stream.handle_app_exit(!was_finished);
        st.queue_output(out);
        drop(st);
        if !was_finished {
            self.shared.wake_conn(&self.link.conn_wakes);
        }
    }
}
