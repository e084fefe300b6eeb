//! Fuzzes `cormorant_core::ws::Connection` as a driver would use it.
//!
//! Input layout: the first byte `n` says how many of the following bytes are
//! control bytes, decoded with `arbitrary` into a configuration and a
//! sequence of [`Op`]s (feed wire bytes, feed a well-formed masked frame
//! built from parts, EOF, poll, send messages, transmit). Everything after
//! them is the raw wire. Once the ops run out, the target feeds the rest,
//! sends EOF and polls until `Closed`.
//!
//! Invariants checked: no panic; `Error` at most once, and only `Closed`
//! after `Error`, `Close` or `Closed`; an error other than `Incomplete`
//! queues a close frame; a ping is answered unless our close went first;
//! messages respect `max_message_size`; sends fail exactly after our close;
//! the output is a sequence of well-formed unmasked server frames with
//! nothing after one close frame; the connection always settles.
#![no_main]

#[path = "input.rs"]
mod input;

use arbitrary::{Arbitrary, Unstructured};
use cormorant_core::ws::{Config, Connection, DeflateParams, Event, WsError};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Feed the next `n` raw wire bytes.
    Feed(u16),
    /// Feed a masked frame: first byte, masking key, payload, and a length
    /// form (0: minimal, 1: 16-bit, 2: 64-bit), fed in two pieces.
    Frame {
        b0: u8,
        mask: [u8; 4],
        payload: Vec<u8>,
        form: u8,
        split: u16,
    },
    Eof,
    Poll,
    SendText(u16),
    SendBinary(u16),
    SendPing(u8),
    SendClose(u16, u8),
    Transmit,
}

struct Harness {
    conn: Connection,
    max_message: usize,
    wire: Vec<u8>,
    fed: usize,
    eof: bool,
    done: bool,
    errored: bool,
    polls: usize,
    /// Everything transmitted, not yet parsed into frames.
    out: Vec<u8>,
    out_close_seen: bool,
}

fn masked_frame(b0: u8, mask: [u8; 4], payload: &[u8], form: u8) -> Vec<u8> {
    let mut f = vec![b0];
    let len = payload.len();
    match form % 3 {
        0 if len < 126 => f.push(0x80 | len as u8),
        0 | 1 if len <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

impl Harness {
    fn feed_raw(&mut self, n: usize) {
        let end = (self.fed + n).min(self.wire.len());
        let piece = self.wire[self.fed..end].to_vec();
        self.fed = end;
        if !piece.is_empty() && !self.eof {
            self.conn.handle_bytes(&piece);
        }
    }

    fn poll(&mut self) -> Event {
        self.polls += 1;
        assert!(self.polls < 1_000_000, "poll_event does not settle");
        let close_sent_before = self.conn.close_sent();
        let had_output = self.conn.buffered_output();
        let ev = self.conn.poll_event();
        if self.done {
            assert_eq!(ev, Event::Closed, "only Closed after Error/Close/Closed");
            return ev;
        }
        match &ev {
            Event::Text(s) => assert!(s.len() <= self.max_message),
            Event::Binary(b) => assert!(b.len() <= self.max_message),
            Event::Ping(p) => {
                assert!(p.len() <= 125);
                if !close_sent_before {
                    assert_eq!(self.conn.buffered_output(), had_output + 2 + p.len());
                }
            }
            Event::Pong(p) => assert!(p.len() <= 125),
            Event::Close { code, reason } => {
                assert!(*code == 1005 || (1000..5000).contains(code));
                assert!(reason.len() <= 123);
                assert!(self.conn.close_received() && self.conn.close_sent());
                assert!(self.conn.is_closed());
                self.done = true;
            }
            Event::NeedData => assert!(!self.eof, "NeedData after EOF"),
            Event::Closed => panic!("Closed before Error or Close"),
            Event::Error(e) => {
                assert!(!self.errored, "Error twice");
                self.errored = true;
                self.done = true;
                assert!(self.conn.is_closed());
                if *e != WsError::Incomplete {
                    assert!(self.conn.close_sent());
                    if !close_sent_before {
                        assert!(self.conn.has_transmit(), "no close frame queued");
                    }
                }
                assert!(matches!(e.close_code(), 1002 | 1006 | 1007 | 1009));
            }
            other => panic!("unknown event {other:?}"),
        }
        ev
    }

    fn poll_until_settled(&mut self) {
        loop {
            match self.poll() {
                Event::NeedData | Event::Closed => return,
                Event::Error(_) | Event::Close { .. } => {}
                _ => {}
            }
        }
    }

    fn transmit(&mut self) {
        let had = self.conn.has_transmit();
        let n = self.conn.buffered_output();
        let mut segs = Vec::new();
        self.conn.poll_transmit(&mut segs);
        assert_eq!(had, !segs.is_empty());
        assert!(segs.iter().all(|s| !s.is_empty()), "empty segment");
        assert_eq!(segs.iter().map(|s| s.len()).sum::<usize>(), n);
        assert!(!self.conn.has_transmit());
        for s in &segs {
            self.out.extend_from_slice(s);
        }
        self.check_output();
    }

    /// Parses the complete server frames at the front of `out`.
    fn check_output(&mut self) {
        let mut start = 0;
        loop {
            let o = &self.out[start..];
            if o.len() < 2 {
                break;
            }
            assert_eq!(o[0] & 0x30, 0, "rsv2/rsv3 in output");
            assert_eq!(o[0] & 0x80, 0x80, "server messages are never fragmented");
            assert_eq!(o[1] & 0x80, 0, "masked server frame");
            let (len, at) = match o[1] {
                126 if o.len() >= 4 => (usize::from(u16::from_be_bytes([o[2], o[3]])), 4),
                127 if o.len() >= 10 => {
                    let mut b = [0; 8];
                    b.copy_from_slice(&o[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                126 | 127 => break,
                n => (usize::from(n), 2),
            };
            if o.len() < at + len {
                break;
            }
            assert!(!self.out_close_seen, "frame after our close frame");
            let opcode = o[0] & 0x0f;
            assert!(matches!(opcode, 1 | 2 | 8 | 9 | 10), "opcode {opcode}");
            if opcode >= 8 {
                assert!(len <= 125);
                assert_eq!(o[0] & 0x40, 0, "rsv1 on a control frame");
            }
            if opcode == 8 {
                assert!(len >= 2);
                let code = u16::from_be_bytes([o[at], o[at + 1]]);
                assert!(
                    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999),
                    "sent close code {code}"
                );
                assert!(std::str::from_utf8(&o[at + 2..at + len]).is_ok());
                self.out_close_seen = true;
            }
            start += at + len;
        }
        self.out.drain(..start);
    }

    fn send(&mut self, op: &Op) {
        let before = self.conn.close_sent();
        let r = match op {
            Op::SendText(n) => self.conn.send_text(&"é".repeat(usize::from(*n) % 3000)),
            Op::SendBinary(n) => self.conn.send_binary(&vec![0xab; usize::from(*n) % 20_000]),
            Op::SendPing(n) => self.conn.send_ping(&vec![1; usize::from(*n)]),
            Op::SendClose(code, n) => {
                let r = self.conn.send_close(*code, &"r".repeat(usize::from(*n)));
                let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
                if !before {
                    assert_eq!(r.is_ok(), valid && *n <= 123, "{code} {n}");
                }
                r
            }
            _ => return,
        };
        if before {
            assert!(r.is_err(), "send after close");
        } else if !matches!(op, Op::SendPing(n) if *n > 125) && !matches!(op, Op::SendClose(..)) {
            assert!(r.is_ok(), "{op:?}");
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Feed(n) => self.feed_raw(usize::from(*n)),
            Op::Frame {
                b0,
                mask,
                payload,
                form,
                split,
            } => {
                if self.eof {
                    return;
                }
                let f = masked_frame(*b0, *mask, payload, *form);
                let at = usize::from(*split) % (f.len() + 1);
                self.conn.handle_bytes(&f[..at]);
                self.conn.handle_bytes(&f[at..]);
            }
            Op::Eof => {
                self.eof = true;
                self.conn.handle_eof();
            }
            Op::Poll => self.poll_until_settled(),
            Op::Transmit => self.transmit(),
            send => self.send(send),
        }
    }

    fn finish(&mut self) {
        let rest = self.wire.len() - self.fed;
        self.feed_raw(rest);
        if !self.eof {
            self.eof = true;
            self.conn.handle_eof();
        }
        self.poll_until_settled();
        assert!(self.done, "not done after EOF");
        assert!(self.conn.is_closed() || !self.conn.close_received());
        self.transmit();
        assert_eq!(self.poll(), Event::Closed);
    }
}

fn config(u: &mut Unstructured<'_>) -> Config {
    let mut config = Config::default();
    if u.arbitrary().unwrap_or(false) {
        config.max_message_size = usize::from(u.arbitrary::<u16>().unwrap_or(1000));
        config.max_frame_size = usize::from(u.arbitrary::<u16>().unwrap_or(1000));
    }
    if u.arbitrary().unwrap_or(false) {
        config.deflate = Some(DeflateParams {
            server_no_context_takeover: u.arbitrary().unwrap_or(false),
            client_no_context_takeover: u.arbitrary().unwrap_or(false),
            server_max_window_bits: 8 + u.arbitrary::<u8>().unwrap_or(7) % 8,
            client_max_window_bits: 8 + u.arbitrary::<u8>().unwrap_or(7) % 8,
        });
    }
    config
}

fuzz_target!(|data: &[u8]| {
    let Some((mut u, wire)) = input::split(data) else {
        return;
    };
    let config = config(&mut u);
    let mut h = Harness {
        max_message: config.max_message_size,
        conn: Connection::new(config),
        wire: wire.to_vec(),
        fed: 0,
        eof: false,
        done: false,
        errored: false,
        polls: 0,
        out: Vec::new(),
        out_close_seen: false,
    };
    while !u.is_empty() {
        let Ok(op) = u.arbitrary::<Op>() else {
            break;
        };
        h.apply(&op);
    }
    h.finish();
});
