//! State of one request shared between its connection task (I/O thread) and
//! its application (the Python thread, or an embedding program's threads).
//!
//! Lock discipline: the mutex is held only for short bookkeeping, never
//! across an await or a call into Python, and the I/O thread never takes the
//! GIL while holding it (it never takes the GIL at all).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cormorant_core::asgi::{Extensions, HttpScope, HttpStream, Output, Receive};

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
    /// The response extensions the stream supports (what
    /// `scope["extensions"]` lists), as its [`HttpStream`] has them.
    pub extensions: Extensions,
    /// `--request-id`: the request's ID (also in its headers).
    pub request_id: Option<Bytes>,
    /// When the request's head began to arrive, when something measures
    /// the wait until the app starts (`ServerCtx::tracks_arrival`).
    pub arrived: Option<std::time::Instant>,
}

/// The request's shared state. The connection task is woken through
/// [`Handoff::wake_conn`], which batches the cross-thread wake-ups: output
/// was queued, or the app asked for body.
pub type Shared = Handoff<StreamState>;

impl SendSide for StreamState {
    fn can_send(&self) -> bool {
        self.out_bytes <= SEND_LOW_WATER || self.stream.is_disconnected()
    }

    fn receive_ready(&self) -> bool {
        self.stream.receive_ready()
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
    out: VecDeque<Output>,
    /// The body of the last output in `out` while small chunks are being
    /// joined to it (empty otherwise): see [`StreamState::queue_output`].
    joined: BytesMut,
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
            joined: BytesMut::new(),
            out_bytes: 0,
            body_requested: false,
            waiters: Waiters::default(),
        })
    }
}

/// Body chunks at most this large are joined to the output queued before
/// them (larger ones stay shared with the application, not copied).
const JOIN_MAX_CHUNK: usize = 4 * 1024;
/// A joined body grows to at most this.
const JOIN_MAX_BODY: usize = 64 * 1024;

impl StreamState {
    /// Queues the application's output for the connection and counts its
    /// body bytes. Small body chunks sent while the connection has not yet
    /// taken the output before them are joined to it: a stream of many tiny
    /// events (SSE, tokens of an LLM) leaves in one write and, on HTTP/1.1,
    /// one chunk, without waiting for anything.
    pub fn queue_output(&mut self, out: Output) {
        if out.is_empty() {
            return;
        }
        self.out_bytes += out.body.len();
        if self.join(&out) {
            return;
        }
        self.seal();
        self.out.push_back(out);
    }

    /// Takes the queued output, in order.
    pub fn take_output(&mut self) -> VecDeque<Output> {
        self.seal();
        std::mem::take(&mut self.out)
    }

    /// Whether queued output sends a file (`http.response.pathsend`).
    pub fn sends_file(&self) -> bool {
        self.out.iter().any(|o| o.file.is_some())
    }

    /// Whether output is queued.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Appends `out`, a small body chunk (perhaps the last), to the body of
    /// the output queued last, if that one can take more.
    fn join(&mut self, out: &Output) -> bool {
        let chunk_only = out.informational.is_none()
            && out.start.is_none()
            && out.file.is_none()
            && out.trailers.is_none()
            && !out.abort
            && out.body.len() <= JOIN_MAX_CHUNK;
        let Some(back) = self.out.back_mut() else {
            return false;
        };
        if !chunk_only || back.end || back.abort || back.file.is_some() {
            return false;
        }
        if self.joined.is_empty() {
            if back.body.len() > JOIN_MAX_CHUNK {
                return false;
            }
            self.joined.extend_from_slice(&back.body);
        } else if self.joined.len() + out.body.len() > JOIN_MAX_BODY {
            return false;
        }
        self.joined.extend_from_slice(&out.body);
        back.end = out.end;
        true
    }

    /// Gives the output queued last its joined body.
    fn seal(&mut self) {
        if !self.joined.is_empty() {
            if let Some(back) = self.out.back_mut() {
                back.body = self.joined.split().freeze();
            }
        }
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use cormorant_core::asgi::{HttpStream, Output, ResponseStart};

    use super::{JOIN_MAX_BODY, JOIN_MAX_CHUNK, Shared};

    fn chunk(body: &[u8], end: bool) -> Output {
        Output {
            body: Bytes::copy_from_slice(body),
            end,
            ..Output::default()
        }
    }

    fn start() -> Output {
        Output {
            start: Some(ResponseStart {
                status: 200,
                headers: Vec::new(),
            }),
            ..Output::default()
        }
    }

    #[test]
    fn small_chunks_join_the_output_before_them_in_order() {
        let shared = Shared::new(HttpStream::new(false, false));
        let mut st = shared.lock();
        st.queue_output(start());
        for part in [&b"data: a\n\n"[..], b"data: b\n\n", b""] {
            st.queue_output(chunk(part, false));
        }
        st.queue_output(chunk(b"data: c\n\n", true));
        assert_eq!(st.out_bytes, 27);
        let outs = st.take_output();
        assert_eq!(outs.len(), 1);
        assert!(outs[0].start.is_some() && outs[0].end);
        assert_eq!(&outs[0].body[..], b"data: a\n\ndata: b\n\ndata: c\n\n");
        // Nothing joins an output already taken, nor one that ended.
        st.queue_output(chunk(b"x", false));
        assert_eq!(st.take_output().len(), 1);
    }

    #[test]
    fn large_chunks_and_long_bodies_are_not_copied_together() {
        let shared = Shared::new(HttpStream::new(false, false));
        let mut st = shared.lock();
        let big = vec![b'x'; JOIN_MAX_CHUNK + 1];
        st.queue_output(chunk(&big, false));
        st.queue_output(chunk(b"small", false));
        st.queue_output(chunk(&big, false));
        let outs = st.take_output();
        assert_eq!(outs.len(), 3);
        assert_eq!(&outs[1].body[..], b"small");
        // Joined bodies stop growing at JOIN_MAX_BODY.
        let piece = vec![b'y'; JOIN_MAX_CHUNK];
        for _ in 0..(JOIN_MAX_BODY / JOIN_MAX_CHUNK + 1) {
            st.queue_output(chunk(&piece, false));
        }
        let outs = st.take_output();
        assert_eq!(outs.len(), 2);
        assert_eq!(outs[0].body.len(), JOIN_MAX_BODY);
        assert_eq!(outs[1].body.len(), JOIN_MAX_CHUNK);
    }

    #[test]
    fn a_file_or_trailers_end_the_joining() {
        let shared = Shared::new(HttpStream::new(false, false));
        let mut st = shared.lock();
        st.queue_output(Output {
            file: Some("/tmp/f".into()),
            end: true,
            ..start()
        });
        st.queue_output(chunk(b"late", false));
        assert_eq!(st.take_output().len(), 2);
        st.queue_output(chunk(b"a", false));
        st.queue_output(Output {
            trailers: Some(Vec::new()),
            end: true,
            ..Output::default()
        });
        let outs = st.take_output();
        assert_eq!(outs.len(), 2);
        assert!(outs[1].trailers.is_some());
    }
}
