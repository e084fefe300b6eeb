//! The connection behind a `cormorant_conn` handle: core's
//! `server::Connection` (HTTP/1.1, then WebSocket after an upgrade, timers
//! included), with the views and output buffer the C caller borrows.

use std::time::Duration;

use bytes::Bytes;
use cormorant_core::h1::{self, BodyKind, RequestHead, Version};
use cormorant_core::server::{self, Event, Timeouts};
use cormorant_core::time::Instant;
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
    pub(crate) conn: server::Connection,
    /// The time the caller gave last: every call acts at it.
    pub(crate) now: Instant,
    /// The current request head (its bytes back the REQUEST_HEAD views).
    pub(crate) head: Option<RequestHead>,
    pub(crate) header_views: Vec<cormorant_header>,
    /// Backs the `data` view of the last event.
    pub(crate) data: Bytes,
    /// Pending output, contiguous; `out[out_pos..]` is not yet consumed.
    pub(crate) out: Vec<u8>,
    pub(crate) out_pos: usize,
    pub(crate) segments: Vec<Bytes>,
    /// A tunnel's `200` fields (see [`Conn::tunnel`]), backing the views
    /// `cormorant_conn_tunnel_answer` hands out.
    pub(crate) answer: Vec<(Bytes, Bytes)>,
}

/// Views of `fields`, valid while they are neither moved out nor dropped
/// (their bytes are on the heap).
fn views_of(fields: &[(Bytes, Bytes)]) -> Vec<cormorant_header> {
    fields
        .iter()
        .map(|(n, v)| cormorant_header {
            name: str_view(n),
            value: str_view(v),
        })
        .collect()
}

/// A timeout in milliseconds, 0 for none.
fn millis(ms: u64) -> Option<Duration> {
    (ms != 0).then(|| Duration::from_millis(ms))
}

/// Core's configuration for a handle made with `c`.
fn server_config(c: &cormorant_config) -> server::Config {
    let http = h1::Config {
        max_head_size: c.max_head_size,
        max_headers: c.max_headers,
        max_body_size: (c.max_body_size != 0).then_some(c.max_body_size),
        ..h1::Config::default()
    };
    server::Config {
        http,
        websocket: ws::Config {
            max_message_size: c.ws_max_message_size,
            max_frame_size: c.ws_max_message_size,
            deflate: None,
        },
        per_message_deflate: false,
        timeouts: Timeouts {
            keep_alive: millis(c.keep_alive_timeout_ms),
            request_head: millis(c.request_head_timeout_ms),
            request_body_idle: millis(c.request_body_timeout_ms),
            ws_ping_interval: millis(c.ws_ping_interval_ms),
            ws_ping_timeout: millis(c.ws_ping_timeout_ms),
            ws_close: millis(c.ws_close_timeout_ms),
            ..Timeouts::default()
        },
        detect_http2: false,
    }
}

impl Conn {
    pub(crate) fn new(c: &cormorant_config, now: Instant) -> Self {
        Self::with(server::Connection::new(server_config(c), now), now)
    }

    fn with(conn: server::Connection, now: Instant) -> Self {
        Self {
            conn,
            now,
            head: None,
            header_views: Vec::new(),
            data: Bytes::new(),
            out: Vec::new(),
            out_pos: 0,
            segments: Vec::new(),
            answer: Vec::new(),
        }
    }

    /// A WebSocket the caller's HTTP/2 or HTTP/3 stack received as an
    /// extended CONNECT with `protocol` and `fields`, accepted with
    /// `subprotocol`: core's connection already in WebSocket, and the
    /// `200`'s fields kept in [`Conn::answer`]. Err: the handshake is not
    /// valid, and how to answer it.
    pub(crate) fn tunnel(
        c: &cormorant_config,
        now: Instant,
        protocol: &[u8],
        fields: &[(Bytes, Bytes)],
        subprotocol: Option<&str>,
    ) -> Result<Self, ws::HandshakeError> {
        let offer = ws::Handshake::from_extended_connect(protocol, fields)?;
        let (conn, head) = server::Connection::accept_tunnel(
            server_config(c),
            now,
            &offer,
            subprotocol,
            Vec::new(),
        )
        .map_err(|_| ws::HandshakeError::Protocol)?;
        let mut made = Self::with(conn, now);
        made.answer = head.headers;
        Ok(made)
    }

    /// Views of the tunnel's `200` fields, valid until the next call.
    pub(crate) fn answer_views(&mut self) -> (*const cormorant_header, usize) {
        self.header_views = views_of(&self.answer);
        (self.header_views.as_ptr(), self.header_views.len())
    }

    pub(crate) fn poll(&mut self) -> cormorant_event {
        use cormorant_event_kind as K;
        match self.conn.poll_event(self.now) {
            Event::WebSocket(ev) => match ev {
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
                ws::Event::Error(e) => cormorant_event {
                    code: e.close_code(),
                    ..cormorant_event::of(K::ProtocolError)
                },
                _ => cormorant_event::of(K::Closed),
            },
            Event::Http(h1::Event::RequestHead(head)) => {
                self.header_views = views_of(&head.headers);
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
            Event::Http(h1::Event::BodyChunk(b)) => {
                self.data = b;
                cormorant_event {
                    data: str_view(&self.data),
                    ..cormorant_event::of(K::Body)
                }
            }
            Event::Http(h1::Event::EndOfMessage) => cormorant_event::of(K::EndOfMessage),
            Event::Http(h1::Event::NeedData) => cormorant_event::of(K::NeedData),
            Event::Http(h1::Event::Paused) => cormorant_event::of(K::Paused),
            Event::Http(h1::Event::Error(e)) => cormorant_event {
                code: e.status_hint(),
                ..cormorant_event::of(K::ProtocolError)
            },
            // Closed; the preface is not looked for (`detect_http2` off).
            _ => cormorant_event::of(K::Closed),
        }
    }

    fn ws_control(&mut self, kind: cormorant_event_kind, payload: Bytes) -> cormorant_event {
        self.data = payload;
        cormorant_event {
            data: str_view(&self.data),
            ..cormorant_event::of(kind)
        }
    }

    pub(crate) fn ws_accept(&mut self, subprotocol: Option<&str>) -> cormorant_result {
        let Some(head) = &self.head else {
            return cormorant_result::InvalidState;
        };
        if self.conn.is_websocket() || self.conn.http().response_started() {
            return cormorant_result::InvalidState;
        }
        let Ok(offer) = ws::Handshake::from_head(head) else {
            return cormorant_result::BadHandshake;
        };
        let r = self
            .conn
            .accept_websocket(self.now, &offer, subprotocol, Vec::new());
        result(r)
    }

    /// Moves the handle's clock to `now_ns` (never back).
    pub(crate) fn set_time(&mut self, now_ns: u64) -> cormorant_result {
        self.now = self.now.max(Instant::from_nanos(now_ns));
        cormorant_result::Ok
    }

    pub(crate) fn ws_reject(&mut self) -> cormorant_result {
        let Some(head) = &self.head else {
            return cormorant_result::InvalidState;
        };
        match ws::Handshake::from_head(head) {
            Ok(_) => cormorant_result::InvalidState,
            Err(e) => result(self.conn.reject_websocket(&e)),
        }
    }

    pub(crate) fn ws_deny(&mut self, status: u16) -> cormorant_result {
        result(self.conn.deny_websocket(status, b""))
    }

    /// Appends every pending segment to the contiguous output buffer.
    pub(crate) fn collect_output(&mut self) {
        self.conn.poll_transmit(&mut self.segments);
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        for seg in self.segments.drain(..) {
            self.out.extend_from_slice(&seg);
        }
    }

    pub(crate) fn wants_close(&self) -> bool {
        self.conn.wants_close()
    }
}
