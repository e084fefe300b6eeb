//! The deterministic replay driver: feeds a recorded client byte stream to
//! a [`CConn`] in fixed pieces, answers every request the same way, and
//! records every call, event and output byte. Two connections that behave
//! alike produce equal [`Transcript`]s.
//!
//! The answers: a request gets `200` with the body
//! `"<method> <body length>\n"`; a WebSocket upgrade is accepted
//! (denied with 400 when invalid) and every message is echoed.

use wasmtime::{Result, bail};

use cormorant_core::asgi::CLOSE_ABNORMAL;

use crate::capi::{CConn, Event, kind, result};

/// Events one poll loop may yield before the driver calls it a hang: far
/// more than any recorded stream holds.
const MAX_EVENTS: usize = 100_000;
/// Timer fires a stalled replay may see before it calls the connection
/// stuck: every timeout case closes after a few.
const MAX_TIMERS: usize = 16;

/// How the client's byte stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closes its sending side.
    Eof,
    /// The client goes quiet with the connection open: the virtual clock
    /// jumps from deadline to deadline until the connection closes.
    Stall,
}

impl End {
    /// The ending a corpus case asks for: cases named `timeout_*` stall.
    pub fn of_case(name: &str) -> Self {
        if name.starts_with("timeout_") {
            Self::Stall
        } else {
            Self::Eof
        }
    }
}

/// One step of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A call and the `cormorant_result` it returned.
    Call(&'static str, u32),
    /// What `cormorant_conn_poll` returned.
    Poll(u32, Event),
    /// Bytes the connection gave to write.
    Output(Vec<u8>),
    /// What `cormorant_conn_timeout` returned: result and deadline (ns).
    Deadline(u32, u64),
}

/// Everything a replay saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// All output bytes, concatenated.
    pub output: Vec<u8>,
    /// `ok`, or the code of the first `PROTOCOL_ERROR` (an HTTP status, or
    /// a WebSocket close code after an upgrade), or 400 for a denied
    /// upgrade: the corpus `.expect` line. Input that simply stops after an
    /// upgrade (close code 1006, nothing sent) is not an error of the peer.
    pub verdict: String,
    /// `cormorant_conn_wants_close` at the end.
    pub wants_close: bool,
}

/// Replays `input` on `conn` in pieces of `split` bytes (0: all at once)
/// at time 0, then ends the stream as `end` says.
pub fn replay(conn: &mut impl CConn, input: &[u8], split: usize, end: End) -> Result<Transcript> {
    let mut d = Driver {
        conn,
        t: Transcript {
            steps: Vec::new(),
            output: Vec::new(),
            verdict: "ok".into(),
            wants_close: false,
        },
        request: None,
        body_len: 0,
        upgraded: false,
        error: false,
    };
    let size = if split == 0 {
        input.len().max(1)
    } else {
        split
    };
    for piece in input.chunks(size) {
        let r = d.conn.feed(piece)?;
        d.call("feed", r)?;
        d.pump()?;
    }
    match end {
        End::Eof => {
            let r = d.conn.feed_eof()?;
            d.call("feed_eof", r)?;
            d.pump()?;
        }
        End::Stall => d.stall()?,
    }
    // What the last events queued (an error answer, a close reply).
    d.call("take_output", result::OK)?;
    d.t.wants_close = d.conn.wants_close()?;
    Ok(d.t)
}

struct Driver<'a, C> {
    conn: &'a mut C,
    t: Transcript,
    /// Method of the request being read.
    request: Option<Vec<u8>>,
    body_len: usize,
    upgraded: bool,
    error: bool,
}

impl<C: CConn> Driver<'_, C> {
    /// Records a call's result and the output it produced.
    fn call(&mut self, name: &'static str, r: u32) -> Result<u32> {
        self.t.steps.push(Step::Call(name, r));
        let out = self.conn.take_output()?;
        if !out.is_empty() {
            self.t.output.extend_from_slice(&out);
            self.t.steps.push(Step::Output(out));
        }
        Ok(r)
    }

    /// Polls and answers events until the connection wants input or is done.
    fn pump(&mut self) -> Result<()> {
        for _ in 0..MAX_EVENTS {
            let (r, ev) = self.conn.poll()?;
            let k = ev.kind;
            self.t.steps.push(Step::Poll(r, ev.clone()));
            if r != result::OK {
                return Ok(());
            }
            match k {
                kind::NEED_DATA | kind::CLOSED => return Ok(()),
                kind::REQUEST_HEAD => self.on_head(&ev)?,
                kind::BODY => self.body_len += ev.data.len(),
                kind::END_OF_MESSAGE => self.respond()?,
                kind::PAUSED => {
                    let r = self.conn.next()?;
                    if self.call("next", r)? != result::OK {
                        return Ok(());
                    }
                }
                kind::WS_MESSAGE => {
                    let r = self.conn.ws_send(ev.is_text, &ev.data)?;
                    self.call("ws_send", r)?;
                }
                kind::PROTOCOL_ERROR if ev.code != CLOSE_ABNORMAL => self.fail(ev.code),
                // WS_CLOSE (the reply is queued by the library), errors
                // already recorded, and kinds this driver does not know: keep polling.
                _ => {}
            }
        }
        bail!("no NEED_DATA or CLOSED after {MAX_EVENTS} events: the connection does not settle")
    }

    /// Moves the virtual clock to each deadline in turn and fires it,
    /// until no timer runs or the connection wants to close.
    fn stall(&mut self) -> Result<()> {
        let mut now = 0u64;
        for _ in 0..MAX_TIMERS {
            let (r, deadline) = self.conn.timeout()?;
            self.t.steps.push(Step::Deadline(r, deadline));
            if r != result::OK || deadline == u64::MAX || self.conn.wants_close()? {
                return Ok(());
            }
            now = now.max(deadline);
            let r = self.conn.handle_timeout(now)?;
            self.call("handle_timeout", r)?;
            self.pump()?;
        }
        bail!("still running timers after {MAX_TIMERS} fires: the connection does not close")
    }

    /// Records the first error verdict.
    fn fail(&mut self, code: u16) {
        if !self.error {
            self.error = true;
            self.t.verdict = code.to_string();
        }
    }

    fn on_head(&mut self, ev: &Event) -> Result<()> {
        self.request = Some(ev.method.clone());
        self.body_len = 0;
        if ev.websocket_upgrade {
            let r = self.conn.ws_accept(None)?;
            if self.call("ws_accept", r)? == result::OK {
                self.upgraded = true;
            } else {
                let r = self.conn.ws_reject()?;
                self.call("ws_reject", r)?;
                self.fail(400);
                self.request = None;
            }
        }
        Ok(())
    }

    /// The fixed answer to a complete request.
    fn respond(&mut self) -> Result<()> {
        if self.upgraded {
            return Ok(());
        }
        let Some(mut body) = self.request.take() else {
            return Ok(());
        };
        // The target is in the recorded event; a server over sockets only
        // knows it as the scope's path, so the answer leaves it out.
        body.extend_from_slice(format!(" {}\n", self.body_len).as_bytes());
        let len = body.len().to_string();
        let headers: [(&[u8], &[u8]); 2] = [
            (b"content-type", b"text/plain"),
            (b"content-length", len.as_bytes()),
        ];
        let r = self.conn.respond(200, &headers)?;
        self.call("respond", r)?;
        let r = self.conn.send_body(&body)?;
        self.call("send_body", r)?;
        let r = self.conn.end()?;
        self.call("end", r)?;
        Ok(())
    }
}
