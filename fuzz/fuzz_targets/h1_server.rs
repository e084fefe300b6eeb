//! Fuzzes `cormorant_core::h1::Connection` as a driver would use it.
//!
//! Input layout: the first byte `n` says how many of the following bytes are
//! control bytes, decoded with `arbitrary` into a sequence of [`Op`]s (feed
//! some wire bytes, EOF, poll, respond, ...). Everything after them is the
//! wire: the bytes the peer sends. Once the ops run out, the target behaves
//! like a well-behaved driver: it feeds the rest, sends EOF, and answers
//! every request until the connection is closed. So a seed of `0` followed
//! by a raw request (see `seed.sh`) exercises the plain path.
//!
//! Invariants checked: no panic; events come in a valid order; body chunks
//! are never empty and match Content-Length; after `Event::Error` (exactly
//! once) and after `Event::Closed` only `Closed` follows; an error before a
//! response started queues an error response; the connection always
//! settles (no event loop that never asks for data or closes).
#![no_main]

#[path = "input.rs"]
mod input;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use cormorant_core::h1::{BodyKind, Config, Connection, Event, ResponseHead};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Feed the next `n` wire bytes.
    Feed(u16),
    Eof,
    /// Poll until the connection wants something.
    Poll,
    Respond(Resp),
    Body(u16),
    End,
    StartNextCycle,
    SendContinue,
    Informational(u8),
    CloseAfterResponse,
    TakeBuffered,
    Transmit,
    SetDate,
}

#[derive(Arbitrary, Debug)]
struct Resp {
    status: u8,
    length: Option<u16>,
    te: bool,
    close: bool,
    bad_header: bool,
    body: Vec<u16>,
    end: bool,
}

const STATUSES: [u16; 12] = [200, 204, 304, 101, 404, 500, 103, 100, 999, 1000, 0, 299];

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Body,
    Done,
}

struct Harness {
    conn: Connection,
    wire: Vec<u8>,
    fed: usize,
    eof: bool,
    phase: Phase,
    body_kind: BodyKind,
    body_len: u64,
    errored: bool,
    closed: bool,
    response_ended: bool,
    polls: usize,
}

impl Harness {
    fn feed(&mut self, n: usize) {
        let end = (self.fed + n).min(self.wire.len());
        let piece = self.wire[self.fed..end].to_vec();
        self.fed = end;
        if !piece.is_empty() {
            self.conn.handle_bytes(&piece);
        }
    }

    fn eof(&mut self) {
        self.eof = true;
        self.conn.handle_eof();
    }

    /// Polls one event and checks it against the model.
    fn poll(&mut self) -> Event {
        self.polls += 1;
        assert!(self.polls < 1_000_000, "poll_event does not settle");
        let started = self.conn.response_started();
        let ev = self.conn.poll_event();
        if self.errored || self.closed {
            assert_eq!(ev, Event::Closed, "only Closed after Error/Closed");
            return ev;
        }
        match &ev {
            Event::RequestHead(h) => {
                assert_eq!(self.phase, Phase::Idle, "head while a request is open");
                for (name, value) in &h.headers {
                    assert!(!name.is_empty());
                    assert!(
                        !name.iter().any(u8::is_ascii_uppercase),
                        "name not lowercased"
                    );
                    assert!(!value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n' | 0x7f)));
                }
                self.phase = Phase::Body;
                self.body_kind = h.body;
                self.body_len = 0;
                self.response_ended = false;
            }
            Event::BodyChunk(b) => {
                assert_eq!(self.phase, Phase::Body);
                assert!(!b.is_empty(), "empty body chunk");
                self.body_len += b.len() as u64;
                if let BodyKind::Length(n) = self.body_kind {
                    assert!(self.body_len <= n, "more body than content-length");
                }
                assert_ne!(self.body_kind, BodyKind::Empty);
            }
            Event::EndOfMessage => {
                assert_eq!(self.phase, Phase::Body);
                match self.body_kind {
                    BodyKind::Length(n) => assert_eq!(self.body_len, n),
                    BodyKind::Empty => assert_eq!(self.body_len, 0),
                    BodyKind::Chunked => {}
                }
                self.phase = Phase::Done;
            }
            Event::Paused => {
                // A body the application never read may have been skipped
                // when its response ended.
                assert!(
                    self.phase == Phase::Done || (self.phase == Phase::Body && self.response_ended),
                    "paused in {:?}",
                    self.phase
                );
            }
            Event::NeedData => {
                assert!(!self.eof, "NeedData after EOF");
                assert_ne!(self.phase, Phase::Done, "NeedData while paused");
            }
            Event::Closed => {
                self.closed = true;
                assert!(!self.conn.is_keep_alive());
            }
            Event::Error(e) => {
                self.errored = true;
                assert!(!self.conn.is_keep_alive());
                assert!(matches!(e.status_hint(), 400 | 413 | 414 | 431 | 501 | 505));
                if !started {
                    assert!(self.conn.has_transmit(), "no error response queued");
                    assert!(self.conn.response_started());
                }
            }
            other => panic!("unknown event {other:?}"),
        }
        ev
    }

    /// Polls until the connection waits for something.
    fn poll_until_settled(&mut self) -> Event {
        loop {
            match self.poll() {
                ev @ (Event::NeedData | Event::Paused | Event::Closed | Event::Error(_)) => {
                    return ev;
                }
                _ => {}
            }
        }
    }

    fn respond(&mut self, r: &Resp) {
        let status = STATUSES[usize::from(r.status) % STATUSES.len()];
        let mut headers = Vec::new();
        if let Some(n) = r.length {
            headers.push((
                Bytes::from_static(b"Content-Length"),
                Bytes::from(n.to_string()),
            ));
        }
        if r.te {
            headers.push((
                Bytes::from_static(b"transfer-encoding"),
                Bytes::from_static(b"chunked"),
            ));
        }
        if r.close {
            headers.push((
                Bytes::from_static(b"connection"),
                Bytes::from_static(b"close"),
            ));
        }
        if r.bad_header {
            headers.push((Bytes::from_static(b"x"), Bytes::from_static(b"a\r\nb")));
        }
        if self
            .conn
            .send_response(ResponseHead { status, headers })
            .is_err()
        {
            return;
        }
        for &n in &r.body {
            let _ = self
                .conn
                .send_body(Bytes::from(vec![b'x'; usize::from(n) % 40_000]));
        }
        if r.end {
            self.end();
        }
    }

    fn end(&mut self) {
        match self.conn.send_end() {
            Ok(()) => self.response_ended = true,
            Err(_) => {
                if !self.conn.response_started() {
                    return;
                }
                // A length mismatch abandons the response: must close.
                if !self.conn.is_keep_alive() {
                    self.response_ended = true;
                }
            }
        }
    }

    fn next_cycle(&mut self) {
        if self.conn.start_next_cycle().is_ok() {
            assert!(self.response_ended);
            self.phase = Phase::Idle;
            self.response_ended = false;
        }
    }

    fn transmit(&mut self) {
        let had = self.conn.has_transmit();
        let mut out = Vec::new();
        self.conn.poll_transmit(&mut out);
        assert_eq!(had, !out.is_empty());
        assert!(out.iter().all(|b| !b.is_empty()), "empty output segment");
        assert!(!self.conn.has_transmit());
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Feed(n) => self.feed(usize::from(*n)),
            Op::Eof => self.eof(),
            Op::Poll => {
                self.poll_until_settled();
            }
            Op::Respond(r) => self.respond(r),
            Op::Body(n) => {
                let _ = self
                    .conn
                    .send_body(Bytes::from(vec![b'y'; usize::from(*n) % 40_000]));
            }
            Op::End => self.end(),
            Op::StartNextCycle => self.next_cycle(),
            Op::SendContinue => {
                let _ = self.conn.send_continue();
                assert!(!self.conn.send_continue(), "100 Continue twice");
            }
            Op::Informational(s) => {
                let status = 100 + u16::from(*s % 8);
                let _ = self.conn.send_informational(ResponseHead {
                    status,
                    headers: Vec::new(),
                });
            }
            Op::CloseAfterResponse => {
                self.conn.close_after_response();
                assert!(!self.conn.is_keep_alive());
            }
            Op::TakeBuffered => {
                let _ = self.conn.take_buffered();
            }
            Op::Transmit => self.transmit(),
            Op::SetDate => self
                .conn
                .set_date(Bytes::from_static(b"Sun, 06 Nov 1994 08:49:37 GMT")),
        }
    }

    /// A well-behaved driver: feed the rest, EOF, answer until closed.
    fn finish(&mut self) {
        let rest = self.wire.len() - self.fed;
        self.feed(rest);
        if !self.eof {
            self.eof();
        }
        for _ in 0..100_000 {
            match self.poll_until_settled() {
                Event::Closed | Event::Error(_) => {
                    self.transmit();
                    assert_eq!(self.poll(), Event::Closed);
                    return;
                }
                Event::NeedData => unreachable!("NeedData after EOF is checked in poll"),
                _ => {
                    if !self.conn.response_started() {
                        let len = Bytes::from_static(b"2");
                        let head = ResponseHead {
                            status: 200,
                            headers: vec![(Bytes::from_static(b"content-length"), len)],
                        };
                        self.conn.send_response(head).expect("valid response");
                        self.conn
                            .send_body(Bytes::from_static(b"ok"))
                            .expect("within length");
                    }
                    if !self.response_ended {
                        self.end();
                    }
                    self.transmit();
                    if self.conn.is_keep_alive() && self.response_ended {
                        self.conn.start_next_cycle().expect("keep-alive cycle");
                        self.phase = Phase::Idle;
                        self.response_ended = false;
                    } else if self.conn.start_next_cycle().is_ok() {
                        panic!("start_next_cycle succeeded on a closing connection");
                    }
                }
            }
        }
        panic!("driver loop does not end");
    }
}

fn config(u: &mut Unstructured<'_>) -> Config {
    let small: bool = u.arbitrary().unwrap_or(false);
    if !small {
        return Config::default();
    }
    Config {
        max_request_line: usize::from(u.arbitrary::<u8>().unwrap_or(64)),
        max_head_size: usize::from(u.arbitrary::<u16>().unwrap_or(256) % 4096),
        max_headers: usize::from(u.arbitrary::<u8>().unwrap_or(8) % 200),
        max_body_size: u.arbitrary::<Option<u16>>().unwrap_or(None).map(u64::from),
        max_chunk_line: usize::from(u.arbitrary::<u8>().unwrap_or(32)),
        server_header: None,
        date_header: u.arbitrary().unwrap_or(true),
        extra_headers: vec![(Bytes::from_static(b"x-extra"), Bytes::from_static(b"1"))],
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mut u, wire)) = input::split(data) else {
        return;
    };
    let config = config(&mut u);
    let mut h = Harness {
        conn: Connection::new(config),
        wire: wire.to_vec(),
        fed: 0,
        eof: false,
        phase: Phase::Idle,
        body_kind: BodyKind::Empty,
        body_len: 0,
        errored: false,
        closed: false,
        response_ended: false,
        polls: 0,
    };
    while !u.is_empty() {
        let Ok(op) = u.arbitrary::<Op>() else {
            break;
        };
        h.apply(&op);
    }
    h.finish();
});
