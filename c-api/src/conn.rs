//! The connection behind a `cormorant_conn` handle: `core::h1`, then
//! `core::ws` after an upgrade, with the views and output buffer the C
//! caller borrows.

use bytes::Bytes;
use cormorant_core::h1::{self, BodyKind, RequestHead, ResponseHead, Version, Waiting};
use cormorant_core::ws;

use crate::types::*;

/// An HTTP/1.1 (then possibly WebSocket) server connection. Opaque.
pub struct cormorant_conn {
    pub(crate) inner: Conn,
    pub(crate) poisoned: bool,
}

impl crate::handle::Handle for cormorant_conn {
    type State = Conn;
    fn parts(&mut self) -> (&mut Conn, &mut bool) {
        (&mut self.inner, &mut self.poisoned)
    }
}

/// The state behind a handle.
pub(crate) struct Conn {
    pub(crate) ws_max: usize,
    pub(crate) h1: h1::Connection,
    pub(crate) ws: Option<ws::Connection>,
    /// The current request head (its bytes back the REQUEST_HEAD views).
    pub(crate) head: Option<RequestHead>,
    pub(crate) header_views: Vec<cormorant_header>,
    /// Backs the `data` view of the last event.
    pub(crate) data: Bytes,
    /// Pending output, contiguous; `out[out_pos..]` is not yet consumed.
    pub(crate) out: Vec<u8>,
    pub(crate) out_pos: usize,
    pub(crate) segments: Vec<Bytes>,
    pub(crate) must_close: bool,
    timeouts: Timeouts,
    /// The running timer: what it waits for (and in which exchange), and
    /// when it started.
    timer: Option<((Waiting, u64), u64)>,
    /// Completed exchanges, so each keep-alive wait gets a fresh timer.
    pub(crate) exchanges: u64,
    /// The status of a timeout answer not yet reported by `poll`.
    timed_out: Option<u16>,
}

/// The timer lengths in milliseconds (0: no limit).
struct Timeouts {
    keep_alive_ms: u64,
    head_ms: u64,
}

impl Conn {
    pub(crate) fn new(c: &cormorant_config) -> Self {
        let config = h1::Config {
            max_head_size: c.max_head_size,
            max_headers: c.max_headers,
            max_body_size: (c.max_body_size != 0).then_some(c.max_body_size),
            ..h1::Config::default()
        };
        Self {
            ws_max: c.ws_max_message_size,
            h1: h1::Connection::new(config),
            ws: None,
            head: None,
            header_views: Vec::new(),
            data: Bytes::new(),
            out: Vec::new(),
            out_pos: 0,
            segments: Vec::new(),
            must_close: false,
            timeouts: Timeouts {
                keep_alive_ms: c.keep_alive_timeout_ms,
                head_ms: c.request_head_timeout_ms,
            },
            timer: None,
            exchanges: 0,
            timed_out: None,
        }
    }

    pub(crate) fn poll(&mut self) -> cormorant_event {
        use cormorant_event_kind as K;
        if let Some(ws) = &mut self.ws {
            return match ws.poll_event() {
                ws::Event::Text(t) => {
                    self.data = Bytes::from(t);
                    cormorant_event {
                        data: str_view(&self.data),
                        is_text: true,
                        ..cormorant_event::of(K::WsMessage)
                    }
                }
                ws::Event::Binary(b) => {
                    self.data = b;
                    cormorant_event {
                        data: str_view(&self.data),
                        ..cormorant_event::of(K::WsMessage)
                    }
                }
                // Core already queued the pong.
                ws::Event::Ping(p) => self.ws_control(K::WsPing, p),
                ws::Event::Pong(p) => self.ws_control(K::WsPong, p),
                ws::Event::Close { code, reason } => {
                    self.data = Bytes::from(reason);
                    cormorant_event {
                        data: str_view(&self.data),
                        code,
                        ..cormorant_event::of(K::WsClose)
                    }
                }
                ws::Event::NeedData => cormorant_event::of(K::NeedData),
                ws::Event::Error(e) => {
                    self.must_close = true;
                    cormorant_event {
                        code: e.close_code(),
                        ..cormorant_event::of(K::ProtocolError)
                    }
                }
                _ => {
                    self.must_close = true;
                    cormorant_event::of(K::Closed)
                }
            };
        }
        if let Some(status) = self.timed_out.take() {
            return cormorant_event {
                code: status,
                ..cormorant_event::of(K::ProtocolError)
            };
        }
        match self.h1.poll_event() {
            h1::Event::RequestHead(head) => {
                self.header_views = head
                    .headers
                    .iter()
                    .map(|(n, v)| cormorant_header {
                        name: str_view(n),
                        value: str_view(v),
                    })
                    .collect();
                let ev = cormorant_event {
                    method: str_view(&head.method),
                    target: str_view(&head.target),
                    version_minor: u8::from(head.version == Version::Http11),
                    headers: self.header_views.as_ptr(),
                    headers_len: self.header_views.len(),
                    has_body: head.body != BodyKind::Empty,
                    keep_alive: head.keep_alive,
                    websocket_upgrade: head.upgrade.as_deref() == Some(b"websocket"),
                    ..cormorant_event::of(K::RequestHead)
                };
                // Moving the head keeps its heap buffers where the views point.
                self.head = Some(head);
                ev
            }
            h1::Event::BodyChunk(b) => {
                self.data = b;
                cormorant_event {
                    data: str_view(&self.data),
                    ..cormorant_event::of(K::Body)
                }
            }
            h1::Event::EndOfMessage => cormorant_event::of(K::EndOfMessage),
            h1::Event::NeedData => cormorant_event::of(K::NeedData),
            h1::Event::Paused => cormorant_event::of(K::Paused),
            h1::Event::Error(e) => {
                self.must_close = true;
                cormorant_event {
                    code: e.status_hint(),
                    ..cormorant_event::of(K::ProtocolError)
                }
            }
            _ => {
                self.must_close = true;
                cormorant_event::of(K::Closed)
            }
        }
    }

    fn ws_control(&mut self, kind: cormorant_event_kind, payload: Bytes) -> cormorant_event {
        self.data = payload;
        cormorant_event {
            data: str_view(&self.data),
            ..cormorant_event::of(kind)
        }
    }

    /// The absolute deadline (ms) of the timer that runs now, or `u64::MAX`.
    /// A timer starts at the first `now` seen in its waiting state.
    pub(crate) fn deadline(&mut self, now: u64) -> u64 {
        let waiting = if self.ws.is_some() || self.must_close {
            None
        } else {
            self.h1.waiting()
        };
        let Some(waiting) = waiting else {
            self.timer = None;
            return u64::MAX;
        };
        let key = (waiting, self.exchanges);
        let start = match self.timer {
            Some((k, start)) if k == key => start,
            _ => {
                self.timer = Some((key, now));
                now
            }
        };
        let limit = match waiting {
            Waiting::NextRequest => self.timeouts.keep_alive_ms,
            Waiting::Head => self.timeouts.head_ms,
        };
        if limit == 0 {
            u64::MAX
        } else {
            start.saturating_add(limit)
        }
    }

    /// Fires the running timer if its deadline is at or before `now`:
    /// a partial head gets `408`, an idle connection closes.
    pub(crate) fn handle_timeout(&mut self, now: u64) {
        if self.deadline(now) > now {
            return;
        }
        self.timer = None;
        self.must_close = true;
        self.timed_out = self.h1.handle_timeout().map(|e| e.status_hint());
    }

    pub(crate) fn after_end(&mut self) {
        if !self.h1.is_keep_alive() {
            self.must_close = true;
        }
    }

    pub(crate) fn ws_accept(&mut self, subprotocol: Option<&str>) -> cormorant_result {
        if self.ws.is_some() || self.h1.response_started() {
            return cormorant_result::InvalidState;
        }
        let Some(head) = &self.head else {
            return cormorant_result::InvalidState;
        };
        if head.body != BodyKind::Empty {
            return cormorant_result::BadHandshake;
        }
        let Ok(hs) = ws::Handshake::from_request(&head.method, head.version, &head.headers) else {
            return cormorant_result::BadHandshake;
        };
        // The upgrade request has no body: step past its end.
        while let h1::Event::BodyChunk(_) | h1::Event::EndOfMessage = self.h1.poll_event() {}
        let headers = hs.response_headers(subprotocol);
        let sent = self.h1.send_response(ResponseHead {
            status: 101,
            headers,
        });
        if let Err(e) = sent.and_then(|()| self.h1.send_end()) {
            return e.into();
        }
        // Move the 101 out before the WebSocket output starts.
        self.collect_output();
        let leftover = self.h1.take_buffered();
        let mut conn = ws::Connection::new(ws::Config {
            max_message_size: self.ws_max,
            max_frame_size: self.ws_max,
            deflate: None,
        });
        if !leftover.is_empty() {
            conn.handle_bytes(&leftover);
        }
        self.ws = Some(conn);
        cormorant_result::Ok
    }

    pub(crate) fn ws_deny(&mut self, status: u16) -> cormorant_result {
        if self.ws.is_some() {
            return cormorant_result::InvalidState;
        }
        let mut headers = vec![(
            Bytes::from_static(b"content-length"),
            Bytes::from_static(b"0"),
        )];
        if status == 426 {
            // RFC 6455 §4.4: name the version we speak.
            headers.push((
                Bytes::from_static(b"sec-websocket-version"),
                Bytes::from_static(b"13"),
            ));
        }
        let sent = self.h1.send_response(ResponseHead { status, headers });
        let r = result(sent.and_then(|()| self.h1.send_end()));
        self.after_end();
        r
    }

    /// Appends every pending segment to the contiguous output buffer.
    pub(crate) fn collect_output(&mut self) {
        self.h1.poll_transmit(&mut self.segments);
        if let Some(ws) = &mut self.ws {
            ws.poll_transmit(&mut self.segments);
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        for seg in self.segments.drain(..) {
            self.out.extend_from_slice(&seg);
        }
    }

    pub(crate) fn wants_close(&self) -> bool {
        self.must_close || self.ws.as_ref().is_some_and(ws::Connection::is_closed)
    }
}
