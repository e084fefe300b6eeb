//! Fuzzes `cormorant_core::server::Connection`, the one connection every
//! frontend drives, with its timers: sequences of operations (wire bytes
//! in, EOF, time passing and `handle_timeout(now)`, responses, upgrades and
//! WebSocket messages, shutdown, backpressure) as quinn fuzzes its
//! connection.
//!
//! Input layout as in `h1_server`: the first byte `n` says how many of the
//! following bytes are control bytes, decoded with `arbitrary` into [`Op`]s;
//! the rest is the wire. When the ops run out the target behaves like a
//! well-behaved driver on a virtual clock: it feeds the rest, answers every
//! request (accepting valid upgrades, echoing messages), lets time run from
//! deadline to deadline, and must see the connection close.
//!
//! Invariants: no panic; after `handle_timeout(now)` no deadline is due at
//! or before `now` (every timer that fired was re-armed later or stopped);
//! only `Closed` follows `Closed`; the connection settles within a bounded
//! number of steps and timer fires; output stays bounded by what the input
//! and the answers can explain.
#![no_main]

#[path = "input.rs"]
mod input;

use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use cormorant_core::h1::{self, ResponseHead};
use cormorant_core::server::{Config, Connection, Event};
use cormorant_core::time::Instant;
use cormorant_core::ws::{self, Handshake};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Feed the next `n` wire bytes.
    Feed(u16),
    Eof,
    Poll,
    /// Let `ms` milliseconds pass, then fire what is due.
    Advance(u32),
    /// Jump to the next deadline and fire it.
    NextDeadline,
    Respond {
        status: u8,
        length: Option<u8>,
    },
    Body(u8),
    End,
    StartNextCycle,
    AcceptWebSocket {
        subprotocol: bool,
    },
    RejectWebSocket,
    DenyWebSocket(u8),
    WsText(u8),
    WsBinary(u8),
    WsPing,
    WsClose(u16),
    Shutdown,
    SetReading(bool),
    Transmit,
}

const STATUSES: [u16; 6] = [200, 204, 404, 426, 500, 101];

struct Harness {
    conn: Connection,
    now: Instant,
    wire: Vec<u8>,
    fed: usize,
    eof: bool,
    head: Option<h1::RequestHead>,
    closed: bool,
    out: usize,
    answered: usize,
}

impl Harness {
    fn feed(&mut self, n: usize) {
        let end = (self.fed + n).min(self.wire.len());
        if end > self.fed {
            let piece = self.wire[self.fed..end].to_vec();
            self.fed = end;
            self.conn.handle_bytes(self.now, &piece);
        }
    }

    fn transmit(&mut self) {
        let mut segs = Vec::new();
        self.conn.poll_transmit(&mut segs);
        self.out += segs.iter().map(Bytes::len).sum::<usize>();
        // Every output byte is explained by input or by what we sent.
        assert!(
            self.out <= 64 * 1024 + 4 * (self.fed + self.answered),
            "output grows without input: {} bytes",
            self.out
        );
    }

    /// Polls until the connection waits; returns the events.
    fn poll(&mut self) -> Vec<Event> {
        let mut seen = Vec::new();
        for _ in 0..10_000 {
            let ev = self.conn.poll_event(self.now);
            if self.closed {
                let closed = matches!(
                    ev,
                    Event::Http(h1::Event::Closed) | Event::WebSocket(ws::Event::Closed)
                );
                assert!(closed, "an event after Closed: {ev:?}");
            }
            let stop = match &ev {
                Event::Http(h1::Event::RequestHead(head)) => {
                    self.head = Some(head.clone());
                    false
                }
                Event::Http(h1::Event::Closed) | Event::WebSocket(ws::Event::Closed) => {
                    self.closed = true;
                    true
                }
                Event::Http(h1::Event::NeedData | h1::Event::Paused)
                | Event::WebSocket(ws::Event::NeedData)
                | Event::Http2Preface => true,
                _ => false,
            };
            seen.push(ev);
            if stop {
                self.transmit();
                return seen;
            }
        }
        panic!("poll_event never asks for data nor closes");
    }

    fn fire(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.conn.handle_timeout(self.now);
        if let Some(at) = self.conn.poll_timeout() {
            assert!(at > self.now, "a timer still due after handle_timeout");
        }
    }

    fn respond(&mut self, status: u16, length: Option<u8>) {
        let mut headers = Vec::new();
        if let Some(n) = length {
            headers.push((
                Bytes::from_static(b"content-length"),
                Bytes::from(n.to_string()),
            ));
        }
        self.answered += 256;
        let _ = self
            .conn
            .http()
            .send_response(ResponseHead { status, headers });
    }

    fn op(&mut self, op: Op) {
        match op {
            Op::Feed(n) => self.feed(n as usize),
            Op::Eof => {
                self.eof = true;
                self.conn.handle_eof();
            }
            Op::Poll => {
                self.poll();
            }
            Op::Advance(ms) => {
                let now = self.now + Duration::from_millis(u64::from(ms));
                self.fire(now);
            }
            Op::NextDeadline => {
                if let Some(at) = self.conn.poll_timeout() {
                    self.fire(at);
                }
            }
            Op::Respond { status, length } => {
                self.respond(STATUSES[status as usize % STATUSES.len()], length)
            }
            Op::Body(n) => {
                self.answered += n as usize + 16;
                let _ = self
                    .conn
                    .http()
                    .send_body(Bytes::from(vec![b'b'; n as usize]));
            }
            Op::End => {
                let _ = self.conn.http().send_end();
            }
            Op::StartNextCycle => {
                let _ = self.conn.start_next_cycle(self.now);
            }
            Op::AcceptWebSocket { subprotocol } => {
                if let Some(offer) = self
                    .head
                    .as_ref()
                    .and_then(|h| Handshake::from_head(h).ok())
                {
                    self.answered += 512;
                    let sub = subprotocol.then_some("chat");
                    let _ = self
                        .conn
                        .accept_websocket(self.now, &offer, sub, Vec::new());
                }
            }
            Op::RejectWebSocket => {
                if let Some(Err(e)) = self.head.as_ref().map(Handshake::from_head) {
                    self.answered += 256;
                    let _ = self.conn.reject_websocket(&e);
                }
            }
            Op::DenyWebSocket(s) => {
                self.answered += 256;
                let status = STATUSES[s as usize % STATUSES.len()];
                let _ = self.conn.deny_websocket(status, b"");
            }
            Op::WsText(n) => {
                self.answered += n as usize + 16;
                if let Some(ws) = self.conn.websocket() {
                    let _ = ws.send_text(&"t".repeat(n as usize));
                }
            }
            Op::WsBinary(n) => {
                self.answered += n as usize + 16;
                if let Some(ws) = self.conn.websocket() {
                    let _ = ws.send_binary(&vec![0; n as usize]);
                }
            }
            Op::WsPing => {
                self.answered += 16;
                if let Some(ws) = self.conn.websocket() {
                    let _ = ws.send_ping(b"p");
                }
            }
            Op::WsClose(code) => {
                self.answered += 16;
                if let Some(ws) = self.conn.websocket() {
                    let _ = ws.send_close(code, "");
                }
            }
            Op::Shutdown => {
                self.answered += 16;
                self.conn.shutdown(self.now);
            }
            Op::SetReading(on) => self.conn.set_reading(self.now, on),
            Op::Transmit => self.transmit(),
        }
    }

    /// A well-behaved driver until the connection closes; time jumps from
    /// deadline to deadline when it waits.
    fn settle(&mut self) {
        self.conn.set_reading(self.now, true);
        for _ in 0..1_000 {
            let events = self.poll();
            for ev in events {
                match ev {
                    Event::Http(h1::Event::RequestHead(head)) if head.upgrade.is_some() => {
                        match Handshake::from_head(&head) {
                            Ok(offer) => {
                                self.answered += 512;
                                let _ =
                                    self.conn
                                        .accept_websocket(self.now, &offer, None, Vec::new());
                            }
                            Err(e) => {
                                self.answered += 256;
                                let _ = self.conn.reject_websocket(&e);
                            }
                        }
                    }
                    Event::Http(h1::Event::Paused) if !self.conn.is_websocket() => {
                        self.respond(200, Some(0));
                        let _ = self.conn.http().send_end();
                        if self.conn.start_next_cycle(self.now).is_err() {
                            // The exchange ended the connection.
                        }
                    }
                    Event::WebSocket(ws::Event::Text(t)) => {
                        self.answered += t.len() + 16;
                        if let Some(ws) = self.conn.websocket() {
                            let _ = ws.send_text(&t);
                        }
                    }
                    _ => {}
                }
            }
            self.transmit();
            if self.conn.wants_close() || self.closed {
                return;
            }
            if self.fed < self.wire.len() {
                self.feed(4096);
            } else if !self.eof && self.conn.poll_timeout().is_none() {
                self.eof = true;
                self.conn.handle_eof();
            } else if let Some(at) = self.conn.poll_timeout() {
                self.fire(at);
            } else if self.eof {
                // Nothing more can come and nothing is pending: it must
                // have closed on its own by the next poll.
                let _ = self.poll();
                let last = self.conn.poll_event(self.now);
                assert!(
                    self.conn.wants_close()
                        || matches!(
                            last,
                            Event::Http(h1::Event::Closed | h1::Event::Paused)
                                | Event::WebSocket(ws::Event::Closed)
                        ),
                    "idle at EOF without closing: {last:?}"
                );
                return;
            }
        }
        panic!("the connection never settles");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mut u, wire)) = input::split(data) else {
        return;
    };
    let mut config = Config {
        detect_http2: true,
        ..Config::default()
    };
    config.http.date_header = false;
    let mut h = Harness {
        conn: Connection::new(config, Instant::ZERO),
        now: Instant::ZERO,
        wire: wire.to_vec(),
        fed: 0,
        eof: false,
        head: None,
        closed: false,
        out: 0,
        answered: 0,
    };
    while let Ok(op) = Op::arbitrary(&mut u) {
        h.op(op);
        if u.is_empty() {
            break;
        }
    }
    h.settle();
});
