//! One server connection, time included: HTTP/1.1 that switches to
//! WebSocket on an accepted upgrade, with the one timer table every
//! frontend obeys.
//!
//! [`Connection`] wraps an [`h1::Connection`] and, after the `101`, a
//! [`ws::Connection`]. It adds what neither decides alone: the upgrade
//! (validation, the `101` fields, the `400`/`426` answers), HTTP/2 preface
//! detection, graceful shutdown, and every protocol timer (keep-alive,
//! request head, request body idle, WebSocket ping, pong deadline, close
//! handshake). Native, the C API and the wasm build all drive this object,
//! so they behave alike by construction.
//!
//! # Call order (the driver's duties)
//! Every call that can change what the connection waits for takes `now`,
//! an [`Instant`] on the driver's clock.
//! 1. `handle_*` in: [`Connection::handle_bytes`] for every byte read,
//!    [`Connection::handle_eof`] at the end of input.
//! 2. `poll_*` out: [`Connection::poll_event`] until it returns `NeedData`,
//!    `Paused` or `Closed` (see [`Event`]); polling for a request body is
//!    asking for it (a `100 Continue` is queued then, when the client
//!    waits for one); answer requests through
//!    [`Connection::http`] and messages through [`Connection::websocket`];
//!    write [`Connection::poll_transmit`] to the socket.
//! 3. Before waiting, ask [`Connection::poll_timeout`] for the earliest
//!    deadline; when it passes, call [`Connection::handle_timeout`] and go
//!    back to step 2. An early call does nothing.
//! 4. Close the socket once [`Connection::wants_close`] is true and the
//!    output is written.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::UsageError;
use crate::h1::{self, ResponseHead};
use crate::time::{Instant, Timer, TimerTable};
use crate::ws::{self, Handshake, HandshakeError, WsError};

/// The client preface of HTTP/2 (RFC 9113 §3.4): how a cleartext client
/// with prior knowledge opens an HTTP/2 connection.
pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the first bytes of a connection are the HTTP/2 preface:
/// `Some(true)` when all of it is there, `None` while `first` is a proper
/// prefix of it (wait for more), `Some(false)` when it cannot be. For a
/// driver that peeks before choosing a protocol.
pub fn detect_http2_preface(first: &[u8]) -> Option<bool> {
    let n = first.len().min(HTTP2_PREFACE.len());
    if first[..n] != HTTP2_PREFACE[..n] {
        Some(false)
    } else if n == HTTP2_PREFACE.len() {
        Some(true)
    } else {
        None
    }
}

/// What a server that speaks only HTTP/2 sends to a connection whose first
/// bytes are not the client preface, before it closes: its own preface (an
/// empty SETTINGS frame, which must come first) and a GOAWAY with
/// PROTOCOL_ERROR that names no stream as processed (RFC 9113 §3.4: an
/// invalid preface is a connection error of that type).
pub const HTTP2_PREFACE_REFUSAL: &[u8] = &[
    0, 0, 0, 0x4, 0, 0, 0, 0, 0, // SETTINGS, empty, stream 0
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY, 8 bytes, stream 0
    0, 0, 0, 0, // last stream ID: none
    0, 0, 0, 0x1, // PROTOCOL_ERROR
];

/// How long the connection waits for the peer. `None` disables a timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Idle between requests (and before the first): close without a
    /// response. 5 s, uvicorn's `--timeout-keep-alive`.
    pub keep_alive: Option<Duration>,
    /// From the first byte of a request head to its end: else `408`. 30 s:
    /// slowloris defence that no honest client on a slow link reaches.
    pub request_head: Option<Duration>,
    /// While the server reads a request body and no byte arrives: else
    /// `408` (or a close, once the response started). 60 s, nginx's
    /// `client_body_timeout`.
    pub request_body_idle: Option<Duration>,
    /// Ping an open WebSocket this often. 20 s, uvicorn's and the
    /// `websockets` library's `ping_interval`.
    pub ws_ping_interval: Option<Duration>,
    /// The pong must come within this, else close `1011`. 20 s, the same
    /// peers' `ping_timeout`. Without it pings are sent but not awaited.
    pub ws_ping_timeout: Option<Duration>,
    /// After our close frame, how long the peer has to answer with its own
    /// before the connection is dropped (RFC 6455 §7.1.1 leaves it to the
    /// server). 5 s.
    pub ws_close: Option<Duration>,
    /// When shutdown begins before a connection's first request, how long
    /// that request may still take to arrive: the client cannot tell a
    /// close now from a lost request, so it would not retry. 1 s.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            keep_alive: Some(Duration::from_secs(5)),
            request_head: Some(Duration::from_secs(30)),
            request_body_idle: Some(Duration::from_secs(60)),
            ws_ping_interval: Some(Duration::from_secs(20)),
            ws_ping_timeout: Some(Duration::from_secs(20)),
            ws_close: Some(Duration::from_secs(5)),
            shutdown_grace: Duration::from_secs(1),
        }
    }
}

/// Limits, options and timeouts of one server connection.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The HTTP/1.1 side.
    pub http: h1::Config,
    /// The WebSocket side after an upgrade (`deflate` is set by the
    /// negotiation, not here).
    pub websocket: ws::Config,
    /// Accept permessage-deflate (RFC 7692) when the client offers it.
    pub per_message_deflate: bool,
    /// Every deadline.
    pub timeouts: Timeouts,
    /// Report a connection that opens with the HTTP/2 preface as
    /// [`Event::Http2Preface`] (h2c with prior knowledge) instead of
    /// answering it as a bad HTTP/1.1 request.
    pub detect_http2: bool,
}

/// What [`Connection::poll_event`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An HTTP/1.1 event, before any upgrade. A timeout that fails the
    /// request is reported once as
    /// `Http(Error(PeerError::RequestTimeout))`, its `408` already queued.
    Http(h1::Event),
    /// A WebSocket event, after the `101`. A ping timeout is reported once
    /// as `WebSocket(Error(WsError::PingTimeout))` (close 1011 queued); an
    /// unanswered close as `WebSocket(Error(WsError::Incomplete))`.
    WebSocket(ws::Event),
    /// The connection opened with the HTTP/2 preface (only with
    /// [`Config::detect_http2`]). Level-triggered: the driver hands
    /// [`Connection::take_buffered`] and the socket to its HTTP/2 stack.
    Http2Preface,
}

/// The protocol the bytes belong to.
#[derive(Debug)]
enum Protocol {
    Http,
    /// Boxed: an HTTP connection, the common case, stays small.
    WebSocket(Box<ws::Connection>),
}

/// An HTTP/1.1 connection that may become a WebSocket. See the
/// [module docs](self) for the call order.
#[derive(Debug)]
pub struct Connection {
    timeouts: Timeouts,
    websocket: ws::Config,
    per_message_deflate: bool,
    http: h1::Connection,
    protocol: Protocol,
    timers: TimerTable,
    /// What the running HTTP timer waits for, and in which exchange, so a
    /// timer runs once per phase however often the state is looked at.
    http_phase: Option<(h1::Waiting, u64)>,
    /// Completed exchanges.
    exchanges: u64,
    /// The driver holds off reading (backpressure): no body idle timer.
    read_paused: bool,
    /// Still looking for the HTTP/2 preface.
    detecting_h2: bool,
    /// An event a timeout produced, reported by the next `poll_event`.
    pending: Option<Event>,
    shutting_down: bool,
}

impl Connection {
    /// A new connection at `now`, waiting for its first request.
    pub fn new(config: Config, now: Instant) -> Self {
        let mut conn = Self {
            timeouts: config.timeouts,
            websocket: config.websocket,
            per_message_deflate: config.per_message_deflate,
            http: h1::Connection::new(config.http),
            protocol: Protocol::Http,
            timers: TimerTable::default(),
            http_phase: None,
            exchanges: 0,
            read_paused: false,
            detecting_h2: config.detect_http2,
            pending: None,
            shutting_down: false,
        };
        conn.update_timers(now);
        conn
    }

    /// Feeds bytes read from the peer at `now`.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        match &mut self.protocol {
            Protocol::Http => self.http.handle_bytes(data),
            Protocol::WebSocket(ws) => ws.handle_bytes(data),
        }
        self.received(now);
    }

    /// Feeds bytes read from the peer at `now`, taking their buffer: over
    /// HTTP/1.1 they are used without a copy (see
    /// [`h1::Connection::handle_buf`]).
    pub fn handle_buf(&mut self, now: Instant, data: BytesMut) {
        match &mut self.protocol {
            Protocol::Http => self.http.handle_buf(data),
            Protocol::WebSocket(ws) => ws.handle_bytes(&data),
        }
        self.received(now);
    }

    fn received(&mut self, now: Instant) {
        // Body bytes are progress: the idle timer starts over.
        self.timers.stop(Timer::RequestBodyIdle);
        self.update_timers(now);
    }

    /// Tells the connection that the peer closed its sending side.
    pub fn handle_eof(&mut self) {
        match &mut self.protocol {
            Protocol::Http => self.http.handle_eof(),
            Protocol::WebSocket(ws) => ws.handle_eof(),
        }
    }

    /// The next event. Level-triggered like the event of the protocol in
    /// use; see [`Event`].
    pub fn poll_event(&mut self, now: Instant) -> Event {
        if let Some(ev) = self.pending.take() {
            return ev;
        }
        let ev = match &mut self.protocol {
            Protocol::WebSocket(ws) => {
                let ev = ws.poll_event();
                if matches!(ev, ws::Event::Pong(_)) && self.timers.is_armed(Timer::WsPong) {
                    // Answered: the next ping is an interval from now.
                    self.timers.stop(Timer::WsPong);
                    self.timers
                        .arm(Timer::WsPing, now, self.timeouts.ws_ping_interval);
                }
                Event::WebSocket(ev)
            }
            Protocol::Http if self.detecting_h2 => {
                match self.http.buffered_starts_with(HTTP2_PREFACE) {
                    Some(true) => return Event::Http2Preface,
                    Some(false) => {
                        self.detecting_h2 = false;
                        Event::Http(self.http.poll_event())
                    }
                    // A proper prefix of the preface: h1 must not see it yet.
                    None => Event::Http(h1::Event::NeedData),
                }
            }
            Protocol::Http => Event::Http(self.http.poll_event()),
        };
        match ev {
            // The driver asks for body bytes the client holds back until
            // it hears `100 Continue` (sent once, if asked for).
            Event::Http(h1::Event::NeedData) if self.http.waiting() == Some(h1::Waiting::Body) => {
                self.http.send_continue();
            }
            // Body progress: the idle timer starts over.
            Event::Http(h1::Event::BodyChunk(_)) => self.timers.stop(Timer::RequestBodyIdle),
            Event::Http(h1::Event::RequestHead(_)) => {
                self.detecting_h2 = false;
                self.timers.stop(Timer::ShutdownGrace);
                if self.shutting_down {
                    // Answered, with `Connection: close`.
                    self.http.close_after_response();
                }
            }
            _ => {}
        }
        self.update_timers(now);
        ev
    }

    /// The earliest deadline of the running timers: the driver wakes at
    /// or after it and calls [`Self::handle_timeout`].
    ///
    /// A close frame sent through [`Self::websocket`] starts the close
    /// timer at the next call that carries `now`; until then this returns
    /// [`Instant::ZERO`], already due, so the driver makes that call at once.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.protocol {
            Protocol::WebSocket(ws)
                if ws.close_sent()
                    && !ws.is_closed()
                    && !self.timers.is_armed(Timer::WsClose)
                    && self.timeouts.ws_close.is_some() =>
            {
                Some(Instant::ZERO)
            }
            _ => self.timers.next_timeout(),
        }
    }

    /// Fires every timer whose deadline is at or before `now`. Before the
    /// earliest deadline it does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.expire(now) {
            self.fire(timer, now);
        }
        self.update_timers(now);
    }

    fn fire(&mut self, timer: Timer, now: Instant) {
        match (timer, &mut self.protocol) {
            (Timer::KeepAlive | Timer::RequestHead | Timer::RequestBodyIdle, Protocol::Http) => {
                // h1 re-checks what it waits for: a stale timer does nothing.
                if let Some(e) = self.http.handle_timeout() {
                    self.pending = Some(Event::Http(h1::Event::Error(e)));
                }
            }
            (Timer::ShutdownGrace, Protocol::Http)
                if self.http.waiting() == Some(h1::Waiting::NextRequest) =>
            {
                self.http.handle_timeout();
            }
            (Timer::WsPing, Protocol::WebSocket(ws)) => {
                // Fails only once our close was sent: then no more pings.
                let sent = ws.send_ping(b"").is_ok();
                match self.timeouts.ws_ping_timeout {
                    Some(t) if sent => self.timers.set(Timer::WsPong, now + t),
                    None if sent => {
                        self.timers
                            .arm(Timer::WsPing, now, self.timeouts.ws_ping_interval);
                    }
                    _ => {}
                }
            }
            (Timer::WsPong, Protocol::WebSocket(ws)) if !ws.close_sent() => {
                self.pending = Some(Event::WebSocket(ws.fail(WsError::PingTimeout)));
            }
            (Timer::WsClose, Protocol::WebSocket(ws)) if !ws.is_closed() => {
                self.pending = Some(Event::WebSocket(ws.fail(WsError::Incomplete)));
            }
            // A timer of the other protocol, left from before the upgrade,
            // or one the state no longer calls for.
            _ => {}
        }
    }

    /// Arms and stops timers to match the state: called after every
    /// change that carries `now`.
    fn update_timers(&mut self, now: Instant) {
        match &self.protocol {
            Protocol::WebSocket(ws) => {
                if ws.is_closed() {
                    for t in [Timer::WsPing, Timer::WsPong, Timer::WsClose] {
                        self.timers.stop(t);
                    }
                } else if ws.close_sent() {
                    self.timers.stop(Timer::WsPing);
                    self.timers.stop(Timer::WsPong);
                    if !self.timers.is_armed(Timer::WsClose) {
                        self.timers.arm(Timer::WsClose, now, self.timeouts.ws_close);
                    }
                }
            }
            Protocol::Http => {
                let waiting = self.http.waiting().filter(|w| {
                    // While the driver holds off, body bytes cannot come.
                    !(self.read_paused && *w == h1::Waiting::Body)
                });
                let phase = waiting.map(|w| (w, self.exchanges));
                if phase != self.http_phase {
                    for t in [Timer::KeepAlive, Timer::RequestHead, Timer::RequestBodyIdle] {
                        self.timers.stop(t);
                    }
                    self.http_phase = phase;
                    match waiting {
                        Some(h1::Waiting::NextRequest) => {
                            self.timers
                                .arm(Timer::KeepAlive, now, self.timeouts.keep_alive);
                        }
                        Some(h1::Waiting::Head) => {
                            self.timers
                                .arm(Timer::RequestHead, now, self.timeouts.request_head);
                        }
                        Some(h1::Waiting::Body) | None => {}
                    }
                }
                // The body timer measures from the last progress.
                if waiting == Some(h1::Waiting::Body)
                    && !self.timers.is_armed(Timer::RequestBodyIdle)
                {
                    self.timers
                        .arm(Timer::RequestBodyIdle, now, self.timeouts.request_body_idle);
                }
            }
        }
    }

    /// Tells the connection whether the driver reads from the socket now.
    /// A driver that stops reading for backpressure (the application has
    /// not taken the body it has) says so, and the body idle timer, which
    /// blames the peer, does not run meanwhile.
    pub fn set_reading(&mut self, now: Instant, reading: bool) {
        if self.read_paused != reading {
            return;
        }
        self.read_paused = !reading;
        self.timers.stop(Timer::RequestBodyIdle);
        self.update_timers(now);
    }

    /// The HTTP/1.1 side, for responses (`send_response`, `send_body`...).
    pub fn http(&mut self) -> &mut h1::Connection {
        &mut self.http
    }

    /// The WebSocket side after an upgrade, for messages.
    pub fn websocket(&mut self) -> Option<&mut ws::Connection> {
        match &mut self.protocol {
            Protocol::WebSocket(ws) => Some(ws),
            Protocol::Http => None,
        }
    }

    /// Whether the connection was upgraded to WebSocket.
    pub fn is_websocket(&self) -> bool {
        matches!(self.protocol, Protocol::WebSocket(_))
    }

    /// After a complete response, readies the connection for the next
    /// request (see [`h1::Connection::start_next_cycle`]).
    pub fn start_next_cycle(&mut self, now: Instant) -> Result<(), UsageError> {
        self.http.start_next_cycle()?;
        self.exchanges += 1;
        self.read_paused = false;
        self.update_timers(now);
        Ok(())
    }

    /// Accepts the WebSocket upgrade of the current request: steps past its
    /// (empty) body, queues the `101` with the `Sec-WebSocket-Accept`,
    /// subprotocol, negotiated extension and `extra` fields, and switches
    /// to the WebSocket protocol; bytes already received after the head
    /// are its first frames. Starts the ping timer.
    pub fn accept_websocket(
        &mut self,
        now: Instant,
        offer: &Handshake,
        subprotocol: Option<&str>,
        extra: Vec<(Bytes, Bytes)>,
    ) -> Result<(), UsageError> {
        if self.is_websocket() || self.http.response_started() {
            return Err(UsageError::InvalidState("response already started"));
        }
        if offer.is_extended_connect() {
            return Err(UsageError::InvalidState(
                "an extended CONNECT opens a tunnel",
            ));
        }
        while let h1::Event::BodyChunk(_) | h1::Event::EndOfMessage = self.http.poll_event() {}
        let (ws, headers) = self.open_websocket(offer, subprotocol, extra);
        self.http.send_response(ResponseHead {
            status: 101,
            headers,
        })?;
        self.http.send_end()?;
        self.enter_websocket(now, ws);
        Ok(())
    }

    /// A WebSocket whose extended CONNECT (RFC 8441 on an HTTP/2 stream,
    /// RFC 9220 on an HTTP/3 stream) the application accepted: the
    /// connection, already switched to WebSocket with its ping timer
    /// running, for the bytes of that stream, and the answer to send on
    /// the stream before them: `200` with the subprotocol, negotiated
    /// extension and `extra` fields. The HTTP/2 or HTTP/3 stack frames
    /// both; the WebSocket rules and timers are this connection's, as
    /// after an HTTP/1.1 upgrade.
    pub fn accept_tunnel(
        config: Config,
        now: Instant,
        offer: &Handshake,
        subprotocol: Option<&str>,
        extra: Vec<(Bytes, Bytes)>,
    ) -> Result<(Self, ResponseHead), UsageError> {
        if !offer.is_extended_connect() {
            return Err(UsageError::InvalidState(
                "an HTTP/1.1 upgrade is accepted on its connection",
            ));
        }
        let mut conn = Self::new(config, now);
        let (ws, headers) = conn.open_websocket(offer, subprotocol, extra);
        conn.enter_websocket(now, ws);
        Ok((
            conn,
            ResponseHead {
                status: 200,
                headers,
            },
        ))
    }

    /// The WebSocket side that accepting `offer` opens, and the fields of
    /// the answer: the handshake's, the negotiated permessage-deflate, then
    /// `extra`.
    fn open_websocket(
        &self,
        offer: &Handshake,
        subprotocol: Option<&str>,
        extra: Vec<(Bytes, Bytes)>,
    ) -> (ws::Connection, Vec<(Bytes, Bytes)>) {
        let mut headers = offer.response_headers(subprotocol);
        let mut config = self.websocket.clone();
        config.deflate = None;
        if let Some((params, field)) = offer.negotiate_deflate(self.per_message_deflate) {
            headers.push((
                Bytes::from_static(b"sec-websocket-extensions"),
                Bytes::from(field),
            ));
            config.deflate = Some(params);
        }
        headers.extend(extra);
        (ws::Connection::new(config), headers)
    }

    /// Switches to the WebSocket protocol at `now`: bytes received after
    /// the HTTP/1.1 head are its first frames, the HTTP timers stop and the
    /// ping timer starts.
    fn enter_websocket(&mut self, now: Instant, mut ws: ws::Connection) {
        let leftover = self.http.take_buffered();
        if !leftover.is_empty() {
            ws.handle_bytes(&leftover);
        }
        self.protocol = Protocol::WebSocket(Box::new(ws));
        self.detecting_h2 = false;
        for t in [Timer::KeepAlive, Timer::RequestHead, Timer::RequestBodyIdle] {
            self.timers.stop(t);
        }
        self.timers
            .arm(Timer::WsPing, now, self.timeouts.ws_ping_interval);
        if self.shutting_down {
            self.shutdown(now);
        }
    }

    /// Answers an upgrade request that is not a valid opening handshake:
    /// `426 Upgrade Required` naming the version spoken (RFC 6455 §4.4) or
    /// `400`, and the connection closes.
    pub fn reject_websocket(&mut self, err: &HandshakeError) -> Result<(), UsageError> {
        self.http.close_after_response();
        let (head, body) = err.response();
        self.send_denial(head, body)
    }

    /// Answers an upgrade request with `status` and a plain-text `body`
    /// (the application's denial, or [`Self::reject_websocket`]); a `426`
    /// carries `Sec-WebSocket-Version: 13` (RFC 6455 §4.4). A denied
    /// upgrade is an ordinary exchange: the connection stays open unless
    /// the request or the server said otherwise.
    pub fn deny_websocket(&mut self, status: u16, body: &'static [u8]) -> Result<(), UsageError> {
        self.send_denial(ws::denial_head(status, body), body)
    }

    fn send_denial(&mut self, head: ResponseHead, body: &'static [u8]) -> Result<(), UsageError> {
        if self.is_websocket() {
            return Err(UsageError::InvalidState("already upgraded"));
        }
        self.http.send_response(head)?;
        if !body.is_empty() {
            self.http.send_body(Bytes::from_static(body))?;
        }
        self.http.send_end()
    }

    /// Begins a graceful shutdown at `now`: an idle connection closes, one
    /// that has not sent its first request gets [`Timeouts::shutdown_grace`]
    /// to do so, a request in progress is answered and then the connection
    /// closes, and an open WebSocket is sent close `1001`.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        match &mut self.protocol {
            Protocol::WebSocket(ws) => {
                if !ws.close_sent() && !ws.is_closed() {
                    let _ = ws.send_close(1001, "server shutting down");
                }
            }
            Protocol::Http => match self.http.waiting() {
                Some(h1::Waiting::NextRequest) if self.exchanges == 0 => {
                    let at = now + self.timeouts.shutdown_grace;
                    if self.timers.get(Timer::ShutdownGrace).is_none_or(|t| at < t) {
                        self.timers.set(Timer::ShutdownGrace, at);
                    }
                }
                // A head on its way is read (the head timer bounds it) and
                // answered with `Connection: close`.
                Some(h1::Waiting::Head) => {}
                _ => self.http.close_after_response(),
            },
        }
        self.update_timers(now);
    }

    /// Takes the bytes received but not parsed (after
    /// [`Event::Http2Preface`]: the preface and what followed it).
    pub fn take_buffered(&mut self) -> Bytes {
        self.http.take_buffered()
    }

    /// Moves every pending output segment, in order, into `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<Bytes>) {
        self.http.poll_transmit(out);
        if let Protocol::WebSocket(ws) = &mut self.protocol {
            ws.poll_transmit(out);
        }
    }

    /// Whether output is waiting for [`Self::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        self.http.has_transmit()
            || matches!(&self.protocol, Protocol::WebSocket(ws) if ws.has_transmit())
    }

    /// Whether the driver should close the socket once the output is
    /// written: the HTTP exchange ended the connection, or the WebSocket
    /// is closed.
    pub fn wants_close(&self) -> bool {
        match &self.protocol {
            Protocol::WebSocket(ws) => ws.is_closed(),
            Protocol::Http => {
                !self.http.is_keep_alive()
                    && (self.http.response_complete() || self.http.waiting().is_none())
            }
        }
    }
}

#[cfg(test)]
mod tests;
