//! The HTTP/1.1 connection state machine: reading, writing and keep-alive.
//!
//! Three small machines, all transitions in this file:
//!
//! * [`Reading`]: `Idle` → `RecvBody` → `Done` → (`start_next_cycle`) `Idle`;
//!   `Closed` on a clean end, `Failed` after a peer error.
//! * [`Writing`]: `Idle` → `Body` → `Done` → (`start_next_cycle`) `Idle`.
//! * [`KeepAlive`]: `Open` until something decides the connection must close
//!   after the current exchange (`MustClose`), which is final.

use bytes::{Buf, Bytes, BytesMut};

use super::decode::{Decoded, Decoder};
use super::encode::{self, Framing, HeadContext, Output};
use super::head::{self, FieldPos, HeadScan};
use super::{BodyKind, Config, Event, ResponseHead, Version, Waiting};
use crate::{PeerError, UsageError};

/// Reading side.
#[derive(Debug)]
enum Reading {
    /// Waiting for a request head.
    Idle,
    /// Head yielded; reading the body.
    RecvBody(Decoder),
    /// `EndOfMessage` yielded; paused until the next cycle.
    Done,
    /// Nothing more will be read: clean EOF, or the exchange ended the
    /// connection.
    Closed,
    /// A peer error was yielded; only `Closed` follows.
    Failed,
}

/// Writing side, for the current request.
#[derive(Debug)]
enum Writing {
    /// No final response started.
    Idle,
    /// Head queued; body in progress.
    Body(Framing),
    /// Response complete (or abandoned after a usage error, with
    /// [`KeepAlive::MustClose`]).
    Done,
}

/// Whether another exchange may follow the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeepAlive {
    Open,
    MustClose,
}

/// Facts about the current request the writer needs.
#[derive(Debug, Clone, Copy)]
struct Cycle {
    version: Version,
    head_request: bool,
    expect_continue: bool,
    continue_sent: bool,
}

impl Cycle {
    const NONE: Self = Self {
        version: Version::Http11,
        head_request: false,
        expect_continue: false,
        continue_sent: false,
    };
}

/// One HTTP/1.1 server connection. See the [module docs](super) for the call
/// order.
///
/// Parsing happens in [`Self::poll_event`]; [`Self::handle_bytes`] only
/// buffers. Output accumulates until [`Self::poll_transmit`].
#[derive(Debug)]
pub struct Connection {
    config: Config,
    date: Option<Bytes>,
    /// Received, not yet consumed bytes.
    recv: BytesMut,
    /// `recv` may be a view of a buffer handed over by
    /// [`Self::handle_buf`], which it would keep alive.
    recv_borrowed: bool,
    /// The peer closed its sending side.
    eof: bool,
    scan: HeadScan,
    /// Reused positions of header fields while parsing a head.
    fields: Vec<FieldPos>,
    reading: Reading,
    writing: Writing,
    keep_alive: KeepAlive,
    cycle: Cycle,
    out: Output,
}

impl Connection {
    /// A new connection, waiting for its first request.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            date: None,
            recv: BytesMut::new(),
            recv_borrowed: false,
            eof: false,
            scan: HeadScan::default(),
            fields: Vec::new(),
            reading: Reading::Idle,
            writing: Writing::Idle,
            keep_alive: KeepAlive::Open,
            cycle: Cycle::NONE,
            out: Output::default(),
        }
    }

    /// Sets the value of the `Date` header (an IMF-fixdate, RFC 9110 §5.6.7)
    /// used by later responses. The driver refreshes it once a second.
    pub fn set_date(&mut self, date: Bytes) {
        self.date = Some(date);
    }

    /// Feeds bytes read from the peer. Bytes arriving after the connection
    /// failed or closed are dropped.
    ///
    /// While [`Event::Paused`] is returned the driver SHOULD stop reading:
    /// everything fed is buffered (pipelined requests) until
    /// [`Self::start_next_cycle`].
    pub fn handle_bytes(&mut self, data: &[u8]) {
        if matches!(self.reading, Reading::Failed | Reading::Closed) {
            return;
        }
        self.recv.extend_from_slice(data);
    }

    /// Feeds bytes read from the peer, as [`Self::handle_bytes`] does, but
    /// takes their buffer: when nothing is buffered the bytes are used
    /// where they are, so a request body read with its head reaches the
    /// application without a copy.
    ///
    /// Only a message's body keeps the buffer: its head is copied out, and
    /// so is what is left of a message when the connection must wait for
    /// more bytes; an idle connection holds none of it.
    pub fn handle_buf(&mut self, data: BytesMut) {
        if matches!(self.reading, Reading::Failed | Reading::Closed) {
            return;
        }
        self.recv_borrowed |= self.recv.is_empty();
        self.recv.unsplit(data);
    }

    /// The connection waits for bytes: it stops holding on to a buffer
    /// that was handed over (see [`Self::handle_buf`]).
    fn need_data(&mut self) -> Event {
        if std::mem::take(&mut self.recv_borrowed) {
            self.recv = if self.recv.is_empty() {
                BytesMut::new()
            } else {
                BytesMut::from(&self.recv[..])
            };
        }
        Event::NeedData
    }

    /// Tells the connection that the peer closed its sending side.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// The next event. Level-triggered; see [`Event`].
    pub fn poll_event(&mut self) -> Event {
        let finished =
            matches!(self.writing, Writing::Done) && self.keep_alive == KeepAlive::MustClose;
        match &mut self.reading {
            Reading::Failed | Reading::Closed => Event::Closed,
            // The response ended the connection: nothing more to read.
            _ if finished => {
                self.reading = Reading::Closed;
                Event::Closed
            }
            Reading::Idle if self.keep_alive == KeepAlive::MustClose => {
                self.reading = Reading::Closed;
                Event::Closed
            }
            Reading::Idle => self.read_head(),
            Reading::RecvBody(decoder) => match decoder.decode(&mut self.recv, &self.config) {
                Ok(Decoded::Data(data)) => Event::BodyChunk(data),
                Ok(Decoded::End) => {
                    self.reading = Reading::Done;
                    Event::EndOfMessage
                }
                Ok(Decoded::NeedData) if self.eof => self.fail(PeerError::IncompleteMessage),
                Ok(Decoded::NeedData) => self.need_data(),
                Err(e) => self.fail(e),
            },
            Reading::Done => Event::Paused,
        }
    }

    /// Reads a request head from the buffer (state `Idle`).
    fn read_head(&mut self) -> Event {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line
        // received before the request-line.
        let mut skipped = false;
        while self.recv.starts_with(b"\r\n") {
            self.recv.advance(2);
            skipped = true;
        }
        if skipped {
            self.scan.reset();
        }
        match head::scan(&self.recv, &mut self.scan, &self.config) {
            Err(e) => self.fail(e),
            Ok(None) if self.eof => {
                if self.recv.is_empty() {
                    self.reading = Reading::Closed;
                    Event::Closed
                } else {
                    self.fail(PeerError::IncompleteMessage)
                }
            }
            Ok(None) => self.need_data(),
            Ok(Some(len)) => {
                let mut raw = self.recv.split_to(len);
                if self.recv_borrowed {
                    // The head's fields may outlive the message (a
                    // WebSocket session, a long stream): they get bytes of
                    // their own, not a view that keeps the read buffer.
                    raw = BytesMut::from(&raw[..]);
                }
                match head::parse(raw, &self.config, &mut self.fields) {
                    Err(e) => self.fail(e),
                    Ok(req) => {
                        self.cycle = Cycle {
                            version: req.version,
                            head_request: req.method.as_ref() == b"HEAD",
                            expect_continue: req.expect_continue,
                            continue_sent: false,
                        };
                        if !req.keep_alive {
                            self.keep_alive = KeepAlive::MustClose;
                        }
                        let decoder = match req.body {
                            BodyKind::Empty => Decoder::length(0),
                            BodyKind::Length(n) => Decoder::length(n),
                            BodyKind::Chunked => Decoder::chunked(),
                        };
                        self.reading = Reading::RecvBody(decoder);
                        Event::RequestHead(req)
                    }
                }
            }
        }
    }

    /// Enters `Failed` with `err`, queuing an error response when no
    /// response was started.
    fn fail(&mut self, err: PeerError) -> Event {
        if matches!(self.writing, Writing::Idle) {
            let ctx = head_context(
                &self.config,
                self.date.as_ref(),
                self.cycle,
                self.keep_alive,
            );
            encode::error_response(&mut self.out, &err, &ctx);
            self.writing = Writing::Done;
        }
        self.keep_alive = KeepAlive::MustClose;
        self.reading = Reading::Failed;
        // The rest of the input will never be read.
        self.recv.clear();
        Event::Error(err)
    }

    /// Queues `100 Continue` if the current request sent
    /// `Expect: 100-continue`, no response has started, none was sent yet and
    /// no body byte has arrived (RFC 9110 §10.1.1: the client is already
    /// sending). Returns whether it was queued. Call it when the application
    /// first asks for the body.
    pub fn send_continue(&mut self) -> bool {
        match (&self.reading, &self.writing) {
            (Reading::RecvBody(_), Writing::Idle)
                if self.cycle.expect_continue
                    && !self.cycle.continue_sent
                    && self.recv.is_empty() =>
            {
                encode::continue_100(&mut self.out);
                self.cycle.continue_sent = true;
                true
            }
            _ => false,
        }
    }

    /// Queues an informational (1xx, not 101) response such as 103.
    ///
    /// To an HTTP/1.0 client nothing is sent (RFC 9110 §15.2: a server MUST
    /// NOT send a 1xx response to an HTTP/1.0 client), and `Ok` is returned.
    pub fn send_informational(&mut self, head: ResponseHead) -> Result<(), UsageError> {
        match (&self.reading, &self.writing) {
            (Reading::RecvBody(_) | Reading::Done, Writing::Idle) => {
                if self.cycle.version == Version::Http10 {
                    // Still validate, so the error does not depend on the peer.
                    let mut scratch = Output::default();
                    return encode::informational(&mut scratch, &head);
                }
                encode::informational(&mut self.out, &head)?;
                if head.status == 100 {
                    self.cycle.continue_sent = true;
                }
                Ok(())
            }
            (_, Writing::Body(_) | Writing::Done) => Err(UsageError::InvalidState(
                "informational response after the final response",
            )),
            (Reading::Idle | Reading::Closed | Reading::Failed, Writing::Idle) => {
                Err(UsageError::InvalidState("no request to respond to"))
            }
        }
    }

    /// Queues the response head for the current request.
    ///
    /// The framing is decided here: the application's `content-length` is
    /// used and enforced; otherwise chunked for HTTP/1.1 and close-delimited
    /// for HTTP/1.0. `transfer-encoding` and `connection` headers given by
    /// the application are replaced by our own (a `close` option is honoured).
    pub fn send_response(&mut self, head: ResponseHead) -> Result<(), UsageError> {
        match (&self.reading, &self.writing) {
            (Reading::RecvBody(_) | Reading::Done, Writing::Idle) => {
                let ctx = head_context(
                    &self.config,
                    self.date.as_ref(),
                    self.cycle,
                    self.keep_alive,
                );
                let enc = encode::response(&mut self.out, &head, &ctx)?;
                if !enc.keep_alive {
                    self.keep_alive = KeepAlive::MustClose;
                }
                self.writing = Writing::Body(enc.framing);
                Ok(())
            }
            (_, Writing::Body(_) | Writing::Done) => {
                Err(UsageError::InvalidState("response already started"))
            }
            (Reading::Idle | Reading::Closed | Reading::Failed, Writing::Idle) => {
                Err(UsageError::InvalidState("no request to respond to"))
            }
        }
    }

    /// Queues a piece of the response body. For a HEAD request or a
    /// 1xx/204/304 response the data is dropped.
    ///
    /// More bytes than the response's `content-length` is
    /// [`UsageError::LengthMismatch`]: nothing of `data` is sent and the
    /// connection will close.
    pub fn send_body(&mut self, data: Bytes) -> Result<(), UsageError> {
        match &mut self.writing {
            Writing::Body(framing) => match encode::body(&mut self.out, framing, data) {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.writing = Writing::Done;
                    self.keep_alive = KeepAlive::MustClose;
                    Err(e)
                }
            },
            Writing::Idle => Err(UsageError::InvalidState("body before the response head")),
            Writing::Done => Err(UsageError::InvalidState("response already complete")),
        }
    }

    /// Accounts for `len` body bytes the caller writes to the transport
    /// itself (with `sendfile`, say) right after draining
    /// [`Self::poll_transmit`]. Only a body framed by `content-length` (or
    /// one with no body on the wire, whose bytes the caller then skips)
    /// allows it: with chunked or close-delimited framing this is a
    /// [`UsageError::InvalidState`] and nothing changes; more bytes than the
    /// length allows is [`UsageError::LengthMismatch`].
    pub fn send_body_external(&mut self, len: u64) -> Result<(), UsageError> {
        match &mut self.writing {
            Writing::Body(Framing::Length(remaining)) => {
                if len > *remaining {
                    self.writing = Writing::Done;
                    self.keep_alive = KeepAlive::MustClose;
                    return Err(UsageError::LengthMismatch);
                }
                *remaining -= len;
                Ok(())
            }
            Writing::Body(Framing::Empty) => Ok(()),
            Writing::Body(_) => Err(UsageError::InvalidState(
                "external body bytes need a content-length body",
            )),
            Writing::Idle => Err(UsageError::InvalidState("body before the response head")),
            Writing::Done => Err(UsageError::InvalidState("response already complete")),
        }
    }

    /// Whether the current response's body is framed by `content-length` (or
    /// has no body on the wire), so [`Self::send_body_external`] applies.
    pub fn body_is_length_framed(&self) -> bool {
        matches!(
            self.writing,
            Writing::Body(Framing::Length(_) | Framing::Empty)
        )
    }

    /// Whether the current response sends no body bytes on the wire (HEAD,
    /// 204, 304).
    pub fn body_is_empty(&self) -> bool {
        matches!(self.writing, Writing::Body(Framing::Empty))
    }

    /// Ends the response body. Fewer bytes than the response's
    /// `content-length` is [`UsageError::LengthMismatch`], and the connection
    /// will close.
    pub fn send_end(&mut self) -> Result<(), UsageError> {
        let framing = match &self.writing {
            Writing::Body(framing) => *framing,
            Writing::Idle => return Err(UsageError::InvalidState("end before the response head")),
            Writing::Done => return Err(UsageError::InvalidState("response already complete")),
        };
        self.writing = Writing::Done;
        if let Err(e) = encode::end(&mut self.out, framing) {
            self.keep_alive = KeepAlive::MustClose;
            return Err(e);
        }
        self.finish_request_body();
        Ok(())
    }

    /// Ends the response body with trailer fields. They go on the wire only
    /// with chunked framing (offer trailers to an application only when the
    /// request said `TE: trailers`); otherwise this is [`Self::send_end`].
    pub fn send_trailers(&mut self, fields: &[(Bytes, Bytes)]) -> Result<(), UsageError> {
        let framing = match &self.writing {
            Writing::Body(framing) => *framing,
            Writing::Idle => return Err(UsageError::InvalidState("end before the response head")),
            Writing::Done => return Err(UsageError::InvalidState("response already complete")),
        };
        self.writing = Writing::Done;
        if let Err(e) = encode::end_with_trailers(&mut self.out, framing, fields) {
            self.keep_alive = KeepAlive::MustClose;
            return Err(e);
        }
        self.finish_request_body();
        Ok(())
    }

    /// The response is complete: if the request body was not read, skip it
    /// when it is already buffered, else give up on keep-alive (we could
    /// wait for it, but it may be large or never come: an unanswered
    /// `Expect: 100-continue` peer won't send it).
    fn finish_request_body(&mut self) {
        let Reading::RecvBody(decoder) = &mut self.reading else {
            return;
        };
        if self.keep_alive == KeepAlive::MustClose {
            return;
        }
        loop {
            match decoder.decode(&mut self.recv, &self.config) {
                Ok(Decoded::Data(_)) => {}
                Ok(Decoded::End) => {
                    self.reading = Reading::Done;
                    return;
                }
                Ok(Decoded::NeedData) | Err(_) => {
                    self.keep_alive = KeepAlive::MustClose;
                    return;
                }
            }
        }
    }

    /// Moves every pending output segment, in order, into `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<Bytes>) {
        self.out.drain_into(out);
    }

    /// Whether output is waiting for [`Self::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// After a complete response, readies the connection for the next request.
    ///
    /// Fails if the exchange is not complete or the connection must close.
    pub fn start_next_cycle(&mut self) -> Result<(), UsageError> {
        match (&self.reading, &self.writing, self.keep_alive) {
            (Reading::Done, Writing::Done, KeepAlive::Open) => {
                self.reading = Reading::Idle;
                self.writing = Writing::Idle;
                self.cycle = Cycle::NONE;
                self.scan.reset();
                if self.recv.is_empty() {
                    // Nothing pipelined: an idle connection keeps no
                    // receive buffer (the next bytes allocate what they need).
                    self.recv = BytesMut::new();
                    self.recv_borrowed = false;
                }
                Ok(())
            }
            (_, _, KeepAlive::MustClose) | (Reading::Closed | Reading::Failed, _, _) => {
                Err(UsageError::InvalidState("connection must close"))
            }
            (_, Writing::Idle | Writing::Body(_), KeepAlive::Open) => {
                Err(UsageError::InvalidState("response not complete"))
            }
            (Reading::Idle | Reading::RecvBody(_), Writing::Done, KeepAlive::Open) => {
                Err(UsageError::InvalidState("request not complete"))
            }
        }
    }

    /// Whether the connection may serve another request after the current one.
    pub fn is_keep_alive(&self) -> bool {
        self.keep_alive == KeepAlive::Open
            && !matches!(self.reading, Reading::Closed | Reading::Failed)
    }

    /// Makes the connection close after the current response (or now, if
    /// idle between requests).
    pub fn close_after_response(&mut self) {
        self.keep_alive = KeepAlive::MustClose;
    }

    /// What the connection waits for from the peer, for the timers of
    /// [`crate::server::Connection`] (this machine has no clock): `None`
    /// once the current request was read, or when the connection is closing.
    pub fn waiting(&self) -> Option<Waiting> {
        if matches!(self.reading, Reading::RecvBody(_)) {
            return Some(Waiting::Body);
        }
        if !matches!(
            (&self.reading, &self.writing),
            (Reading::Idle, Writing::Idle)
        ) || self.keep_alive == KeepAlive::MustClose
        {
            return None;
        }
        Some(if self.recv.is_empty() {
            Waiting::NextRequest
        } else {
            Waiting::Head
        })
    }

    /// The timer for [`Self::waiting`] fired. A partly received request
    /// (head or body) fails with [`PeerError::RequestTimeout`], returned, and
    /// gets `408` if no response started; an idle keep-alive connection just
    /// closes. Does nothing (and returns `None`) when the connection is not
    /// waiting.
    pub fn handle_timeout(&mut self) -> Option<PeerError> {
        match self.waiting()? {
            Waiting::NextRequest => {
                self.keep_alive = KeepAlive::MustClose;
                self.reading = Reading::Closed;
                None
            }
            Waiting::Head | Waiting::Body => match self.fail(PeerError::RequestTimeout) {
                Event::Error(e) => Some(e),
                _ => None,
            },
        }
    }

    /// Whether no request has been read on this connection yet and the
    /// bytes received so far could still be `prefix` (the HTTP/2 preface):
    /// `Some(true)` when all of `prefix` is buffered, `None` while it is
    /// undecided, `Some(false)` once it cannot be.
    pub fn buffered_starts_with(&self, prefix: &[u8]) -> Option<bool> {
        let n = self.recv.len().min(prefix.len());
        if self.recv[..n] != prefix[..n] {
            Some(false)
        } else if n == prefix.len() {
            Some(true)
        } else if self.eof {
            Some(false)
        } else {
            None
        }
    }

    /// Whether the response to the current request is complete.
    pub fn response_complete(&self) -> bool {
        matches!(self.writing, Writing::Done)
    }

    /// Whether a response head was sent for the current request.
    pub fn response_started(&self) -> bool {
        !matches!(self.writing, Writing::Idle)
    }

    /// Takes the bytes received but not parsed (after an accepted upgrade).
    pub fn take_buffered(&mut self) -> Bytes {
        self.scan.reset();
        self.recv.split().freeze()
    }
}

/// What the encoder needs, borrowed field by field so `out` stays free.
fn head_context<'a>(
    config: &'a Config,
    date: Option<&'a Bytes>,
    cycle: Cycle,
    keep_alive: KeepAlive,
) -> HeadContext<'a> {
    HeadContext {
        version: cycle.version,
        head_request: cycle.head_request,
        keep_alive: keep_alive == KeepAlive::Open,
        server: config.server_header.as_ref(),
        date: date.filter(|_| config.date_header),
        extra: &config.extra_headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        Connection::new(Config {
            server_header: None,
            date_header: false,
            ..Config::default()
        })
    }

    fn out(c: &mut Connection) -> String {
        let mut v = Vec::new();
        c.poll_transmit(&mut v);
        v.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    fn head_of(e: Event) -> super::super::RequestHead {
        match e {
            Event::RequestHead(h) => h,
            other => panic!("expected a head, got {other:?}"),
        }
    }

    fn ok200(len: usize) -> ResponseHead {
        ResponseHead {
            status: 200,
            headers: vec![(
                Bytes::from_static(b"content-length"),
                Bytes::from(len.to_string()),
            )],
        }
    }

    /// Answers a request whose body was read with an empty 200, and readies
    /// the connection for the next.
    fn answer_and_go_on(c: &mut Connection) {
        assert_eq!(c.poll_event(), Event::EndOfMessage);
        c.send_response(ok200(0)).unwrap();
        c.send_end().unwrap();
        out(c);
        c.start_next_cycle().unwrap();
    }

    /// An idle keep-alive connection holds no receive buffer; one with a
    /// pipelined request keeps the bytes.
    #[test]
    fn idle_connection_keeps_no_receive_buffer() {
        let mut c = conn();
        assert_eq!(c.recv.capacity(), 0);
        for pipelined in [&b""[..], b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"] {
            let mut input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
            input.extend_from_slice(pipelined);
            c.handle_bytes(&input);
            head_of(c.poll_event());
            answer_and_go_on(&mut c);
            assert_eq!(c.recv.len(), pipelined.len());
            assert_eq!(c.recv.capacity() == 0, pipelined.is_empty());
        }
    }

    /// Whether `b` lies in the allocation `[base, base + len)`.
    fn within(b: &[u8], base: usize, len: usize) -> bool {
        let p = b.as_ptr() as usize;
        p >= base && p + b.len() <= base + len
    }

    /// A body read with its head reaches the app where it was read, the
    /// head does not, and an idle connection then keeps nothing of that
    /// buffer.
    #[test]
    fn a_handed_over_buffer_gives_the_body_without_a_copy() {
        let mut c = conn();
        let body = vec![b'z'; 5000];
        let mut input =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"[..]);
        input.extend_from_slice(&body);
        let (base, len) = (input.as_ptr() as usize, input.len());
        c.handle_buf(input);
        // The head's fields may outlive the message (a WebSocket session,
        // a long stream): they must not keep the read buffer.
        let head = head_of(c.poll_event());
        assert!(!within(&head.target, base, len), "the head borrows");
        assert!(head.headers.iter().all(|(_, v)| !within(v, base, len)));
        match c.poll_event() {
            Event::BodyChunk(chunk) => {
                assert_eq!(chunk, body);
                assert!(within(&chunk, base, len), "the body was copied");
            }
            other => panic!("expected the body, got {other:?}"),
        }
        answer_and_go_on(&mut c);
        assert_eq!(c.recv.capacity(), 0);
        assert_eq!(c.poll_event(), Event::NeedData);
    }

    /// What is left of a message in a handed-over buffer is copied out when
    /// the connection must wait for the rest, so the buffer is not held
    /// while a slow client dawdles; the message still parses whole.
    #[test]
    fn a_partial_message_is_copied_out_of_a_handed_over_buffer_before_waiting() {
        let mut c = conn();
        let first = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut input = BytesMut::from(&first[..]);
        input.extend_from_slice(b"GET /b HTTP/1.1\r\nHo");
        let (base, len) = (input.as_ptr() as usize, input.len());
        c.handle_buf(input);
        head_of(c.poll_event());
        answer_and_go_on(&mut c);
        assert_eq!(c.poll_event(), Event::NeedData);
        assert_eq!(&c.recv[..], b"GET /b HTTP/1.1\r\nHo");
        assert!(
            !within(&c.recv, base, len),
            "the partial head still borrows"
        );
        c.handle_buf(BytesMut::from(&b"st: x\r\n\r\n"[..]));
        assert_eq!(head_of(c.poll_event()).target, &b"/b"[..]);
    }

    #[test]
    fn transcript_of_states() {
        let mut c = conn();
        assert!(matches!(c.reading, Reading::Idle));
        assert_eq!(c.poll_event(), Event::NeedData);
        c.handle_bytes(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab");
        head_of(c.poll_event());
        assert!(matches!(c.reading, Reading::RecvBody(_)));
        assert_eq!(c.poll_event(), Event::BodyChunk(Bytes::from_static(b"ab")));
        assert_eq!(c.poll_event(), Event::EndOfMessage);
        assert!(matches!(c.reading, Reading::Done));
        assert_eq!(c.poll_event(), Event::Paused);
        c.send_response(ok200(0)).unwrap();
        assert!(matches!(c.writing, Writing::Body(Framing::Length(0))));
        c.send_end().unwrap();
        assert!(matches!(c.writing, Writing::Done));
        assert_eq!(c.poll_event(), Event::Paused);
        c.start_next_cycle().unwrap();
        assert!(matches!(
            (&c.reading, &c.writing),
            (Reading::Idle, Writing::Idle)
        ));
        c.handle_eof();
        assert_eq!(c.poll_event(), Event::Closed);
        assert!(matches!(c.reading, Reading::Closed));
    }

    #[test]
    fn external_body_bytes_count_against_content_length() {
        let mut c = conn();
        c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        head_of(c.poll_event());
        c.send_response(ok200(10)).unwrap();
        assert!(c.body_is_length_framed());
        c.send_body_external(6).unwrap();
        c.send_body_external(4).unwrap();
        c.send_end().unwrap();
        c.start_next_cycle().unwrap();

        c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        head_of(c.poll_event());
        c.send_response(ok200(3)).unwrap();
        assert_eq!(c.send_body_external(4), Err(UsageError::LengthMismatch));
        assert!(!c.is_keep_alive());
    }

    #[test]
    fn external_body_bytes_need_a_length() {
        let mut c = conn();
        c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        head_of(c.poll_event());
        c.send_response(ResponseHead {
            status: 200,
            headers: vec![],
        })
        .unwrap();
        assert!(!c.body_is_length_framed());
        assert!(matches!(
            c.send_body_external(1),
            Err(UsageError::InvalidState(_))
        ));
        c.send_body(Bytes::from_static(b"x")).unwrap();
        c.send_trailers(&[(Bytes::from_static(b"t"), Bytes::from_static(b"1"))])
            .unwrap();
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        let wire: Vec<u8> = out.concat();
        assert!(wire.ends_with(b"1\r\nx\r\n0\r\nt: 1\r\n\r\n"), "{wire:?}");
    }

    #[test]
    fn illegal_pairs_are_usage_errors() {
        let mut c = conn();
        assert!(matches!(
            c.send_response(ok200(0)),
            Err(UsageError::InvalidState(_))
        ));
        assert!(matches!(
            c.send_body(Bytes::new()),
            Err(UsageError::InvalidState(_))
        ));
        assert!(matches!(c.send_end(), Err(UsageError::InvalidState(_))));
        assert!(matches!(
            c.start_next_cycle(),
            Err(UsageError::InvalidState(_))
        ));
        assert!(!c.send_continue());
        c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        head_of(c.poll_event());
        assert!(matches!(
            c.start_next_cycle(),
            Err(UsageError::InvalidState(_))
        ));
        c.send_response(ok200(0)).unwrap();
        assert!(matches!(
            c.send_response(ok200(0)),
            Err(UsageError::InvalidState(_))
        ));
        assert!(matches!(
            c.start_next_cycle(),
            Err(UsageError::InvalidState(_))
        ));
        c.send_end().unwrap();
        assert!(matches!(c.send_end(), Err(UsageError::InvalidState(_))));
        assert!(matches!(
            c.send_body(Bytes::new()),
            Err(UsageError::InvalidState(_))
        ));
        // Empty body was skipped at send_end: the request is complete.
        c.start_next_cycle().unwrap();
    }

    #[test]
    fn error_response_only_when_none_started() {
        let mut c = conn();
        c.handle_bytes(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        head_of(c.poll_event());
        c.send_response(ok200(2)).unwrap();
        let _ = out(&mut c);
        c.handle_bytes(b"zz\r\n");
        assert!(matches!(
            c.poll_event(),
            Event::Error(PeerError::BadRequest(_))
        ));
        assert!(!c.has_transmit());
        assert_eq!(c.poll_event(), Event::Closed);
        // The application may still finish its response; the driver closes.
        c.send_body(Bytes::from_static(b"ok")).unwrap();
        assert!(!c.is_keep_alive());
    }

    #[test]
    fn timers_follow_the_waiting_state() {
        let mut c = conn();
        assert_eq!(c.waiting(), Some(Waiting::NextRequest));
        c.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n");
        assert_eq!(c.waiting(), Some(Waiting::Head));
        c.handle_bytes(b"\r\n");
        head_of(c.poll_event());
        assert_eq!(c.waiting(), Some(Waiting::Body), "its (empty) body is read");
        assert_eq!(c.poll_event(), Event::EndOfMessage);
        assert_eq!(c.waiting(), None, "the request was read");
        assert_eq!(c.handle_timeout(), None);
        c.send_response(ok200(0)).unwrap();
        c.send_end().unwrap();
        c.start_next_cycle().unwrap();
        assert_eq!(c.waiting(), Some(Waiting::NextRequest));

        // A partial head times out with 408 and the connection fails.
        c.handle_bytes(b"GET /slow");
        assert_eq!(c.handle_timeout(), Some(PeerError::RequestTimeout));
        let text = out(&mut c);
        assert!(text.ends_with("Request Timeout"), "{text}");
        assert!(
            text.contains("HTTP/1.1 200"),
            "the first response came first"
        );
        assert!(text.contains("HTTP/1.1 408 Request Timeout\r\n"), "{text}");
        assert_eq!(c.poll_event(), Event::Closed);
        assert_eq!(c.waiting(), None);

        // An idle keep-alive connection closes without a response.
        let mut idle = conn();
        assert_eq!(idle.handle_timeout(), None);
        assert!(!idle.has_transmit());
        assert_eq!(idle.poll_event(), Event::Closed);
    }
}
