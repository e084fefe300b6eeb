//! A WebSocket connection after an HTTP/1.1 upgrade request: the
//! application answers the handshake (accept, close or a denial response),
//! then frames go through `core::ws`. The open session's loop also serves
//! WebSockets on HTTP/2 streams ([`serve_tunnel`]).
//!
//! What a session decides without waiting is here, on [`Conn`], and shared
//! by both drivers: the async one below, and the readiness-driven one,
//! which serves the sessions of its cleartext connections itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cormorant_core::asgi::{WsOutput, WsReceive};
use cormorant_core::h1::{self, ResponseHead};
use cormorant_core::server::{self, Event};
use cormorant_core::ws;
use tokio::io::AsyncWriteExt;

use super::{Conn, Next, write_all};
use crate::handoff::websocket::{NewWebSocket, WsShared, WsState, output_len};
use crate::server::clock;
use crate::server::exchange::Exchange;
use crate::server::stream::StreamConn;
use crate::server::transport::Transport;

/// WebSocket settings of a worker.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Largest message (and frame), after decompression.
    pub max_size: usize,
    /// Messages received and not yet taken by the app, past which the
    /// connection stops reading (backpressure onto the peer).
    pub max_queue: usize,
    /// Send a ping this often (core's timer).
    pub ping_interval: Option<Duration>,
    /// Close with 1011 when a ping is not answered within this (core's
    /// timer).
    pub ping_timeout: Option<Duration>,
    /// Offer permessage-deflate when the client asks for it.
    pub per_message_deflate: bool,
}

impl WsSettings {
    /// The WebSocket settings of `config`, or None when WebSockets are off
    /// (`--ws none`). A zero interval or timeout means none.
    pub fn from_config(config: &crate::config::ServerConfig) -> Option<Self> {
        let on = |d: Duration| (!d.is_zero()).then_some(d);
        (config.ws == crate::config::WsMode::Auto).then(|| Self {
            max_size: config.ws_max_size,
            max_queue: config.ws_max_queue,
            ping_interval: on(config.ws_ping_interval),
            ping_timeout: on(config.ws_ping_timeout),
            per_message_deflate: config.ws_per_message_deflate,
        })
    }
}

/// One WebSocket session, from the upgrade request to its end: the state
/// either driver keeps for it.
pub(super) struct WsSession {
    shared: Arc<WsShared>,
    exchange: Exchange,
    /// The client's offer, until the app accepts it and core queues the
    /// 101: then frames go both ways.
    offer: Option<ws::Handshake>,
    /// Message bytes taken from the app and not yet written out,
    /// acknowledged to its `send()` once they are (compression makes the
    /// wire bytes differ).
    taken: usize,
    /// The app had `max_queue` messages not taken at the last pump:
    /// reading waits (backpressure onto the peer).
    paused: bool,
}

impl WsSession {
    /// The app accepted, and frames go both ways.
    pub(super) fn is_open(&self) -> bool {
        self.offer.is_none()
    }

    /// Reading waits for the app to take messages (see
    /// [`Conn::ws_pump`]).
    pub(super) fn is_paused(&self) -> bool {
        self.paused
    }

    /// Wakes the driver when the app has output or took a message.
    pub(super) fn wakeup(&self) -> &crate::handoff::wakeup::Wakeup {
        &self.shared.conn_wake
    }
}

/// An upgrade request that does not become a session.
pub(super) enum WsRefused {
    /// Core queued its answer (426 naming version 13, or 400): close
    /// gently once it is written.
    Rejected,
    /// No scope can describe the request: a 400 to make.
    BadRequest,
}

/// What the app's answer to the handshake came to so far.
pub(super) enum Answer {
    /// Nothing yet.
    Pending,
    /// Accepted: core queued the 101 and the session is open.
    Accepted,
    /// Denied (the response is queued) or failed: the session ends
    /// ([`Conn::ws_end`]), and the connection closes once written.
    Over,
}

/// What a session decides without waiting on its socket: shared by both
/// drivers.
impl<S> Conn<S> {
    /// Begins a session for an upgrade request: checks the client's offer
    /// and hands the app the scope.
    pub(super) fn ws_begin(
        &mut self,
        head: h1::RequestHead,
        exchange: Exchange,
    ) -> Result<WsSession, WsRefused> {
        let offer = match ws::Handshake::from_head(&head) {
            Ok(h) => h,
            Err(e) => {
                self.refresh_date();
                let _ = self.conn.reject_websocket(&e);
                self.linger = true;
                return Err(WsRefused::Rejected);
            }
        };
        // Its (empty) body is stepped past by core's `accept_websocket`.
        let Some((http, _)) = self.scope_of(head) else {
            return Err(WsRefused::BadRequest);
        };
        let shared = NewWebSocket::hand_over(&self.ctx.queue, http, self.unix, self.tls.clone());
        Ok(WsSession {
            shared,
            exchange,
            offer: Some(offer),
            taken: 0,
            paused: false,
        })
    }

    /// Applies the app's answer to the handshake, as far as it came (a
    /// complete denial is recorded: metrics, access log).
    pub(super) fn ws_answer(&mut self, s: &mut WsSession) -> Answer {
        let outs = s.shared.lock().take_handshake_output();
        for out in outs {
            match out {
                WsOutput::Accept {
                    subprotocol,
                    headers,
                } => {
                    return self.ws_accept(s, subprotocol.as_deref(), headers);
                }
                WsOutput::DenyStart(start) => {
                    self.refresh_date();
                    self.h1().close_after_response();
                    s.exchange.status = start.status;
                    let head = ResponseHead {
                        status: start.status,
                        headers: start.headers,
                    };
                    if self.h1().send_response(head).is_err() {
                        return Answer::Over;
                    }
                }
                WsOutput::DenyBody { body, end } => {
                    s.exchange.sent += body.len() as u64;
                    if !body.is_empty() && self.h1().send_body(body).is_err() {
                        return Answer::Over;
                    }
                    if end {
                        return self.ws_denied(s);
                    }
                }
                _ => {}
            }
        }
        // A 403 for a close before accept carries no body message.
        if s.shared.lock().stream.is_finished() && self.h1().response_started() {
            return self.ws_denied(s);
        }
        Answer::Pending
    }

    /// The app accepted: core writes the 101 (accept key, subprotocol,
    /// negotiated permessage-deflate, the app's fields) and starts the ping
    /// timer.
    fn ws_accept(
        &mut self,
        s: &mut WsSession,
        subprotocol: Option<&str>,
        headers: Vec<(Bytes, Bytes)>,
    ) -> Answer {
        let Some(offer) = &s.offer else {
            return Answer::Over;
        };
        self.refresh_date();
        if self
            .conn
            .accept_websocket(clock::now(), offer, subprotocol, headers)
            .is_err()
        {
            return Answer::Over;
        }
        s.offer = None;
        s.exchange.status = 101;
        Answer::Accepted
    }

    /// The denial response is complete.
    fn ws_denied(&mut self, s: &mut WsSession) -> Answer {
        let _ = self.h1().send_end();
        s.exchange.finish(&self.client_label, self.info.scheme);
        Answer::Over
    }

    /// The open session: peer events into the app's stream, the app's
    /// output into frames. Returns whether reading must pause (the app has
    /// not taken `max_queue` messages yet: backpressure onto the peer).
    pub(super) fn ws_pump(&mut self, s: &mut WsSession, settings: &WsSettings) -> bool {
        let mut taken = 0usize;
        let full = s.shared.update(&self.ctx.queue, |st| {
            let done = pump_events(&mut self.conn, st);
            if let Some(conn) = self.conn.websocket() {
                // Drained, not taken: the queue keeps its room for the
                // app's next messages.
                for out in st.out.drain(..) {
                    taken += output_len(&out);
                    match out {
                        WsOutput::Text(t) => {
                            let _ = conn.send_text(&t);
                        }
                        WsOutput::Binary(b) => {
                            let _ = conn.send_binary_bytes(b);
                        }
                        WsOutput::Close { code, reason } => {
                            let _ = conn.send_close(code, &reason);
                        }
                        _ => {}
                    }
                }
            }
            if done && !st.stream.is_gone() {
                st.stream.handle_disconnect();
            }
            st.read_paused = st.stream.queued() >= settings.max_queue;
            st.read_paused
        });
        s.taken += taken;
        s.paused = full;
        full
    }

    /// What was taken from the app is written: its waiting `send()` may go
    /// on.
    pub(super) fn ws_written(&mut self, s: &mut WsSession) {
        if s.taken == 0 {
            return;
        }
        let taken = std::mem::take(&mut s.taken);
        s.exchange.sent += taken as u64;
        s.shared.update(&self.ctx.queue, |st| {
            st.out_bytes = st.out_bytes.saturating_sub(taken);
        });
    }

    /// The open session is over: the close handshake ended, the connection
    /// failed or dropped.
    pub(super) fn ws_over(&self) -> bool {
        self.conn.wants_close() || self.eof
    }

    /// The session ends: the app's `receive()` yields a disconnect, and an
    /// accepted session is recorded (metrics, access log).
    pub(super) fn ws_end(&mut self, s: &mut WsSession) {
        if s.is_open() {
            s.exchange.finish(&self.client_label, self.info.scheme);
        }
        s.shared
            .update(&self.ctx.queue, |st| st.stream.handle_disconnect());
    }
}

impl<S: Transport> Conn<S> {
    /// Serves a request that asked for `Upgrade: websocket`.
    pub(super) async fn serve_websocket(
        &mut self,
        head: h1::RequestHead,
        settings: &WsSettings,
        exchange: Exchange,
    ) -> Next {
        let mut s = match self.ws_begin(head, exchange) {
            Ok(s) => s,
            Err(WsRefused::Rejected) => {
                let _ = self.flush().await;
                return Next::Close;
            }
            Err(WsRefused::BadRequest) => return self.simple_response(400, b"Bad Request").await,
        };
        if self.ws_handshake(&mut s).await {
            self.ws_open(&mut s, settings).await;
        }
        self.ws_end(&mut s);
        Next::Close
    }

    /// Waits for the application's answer to the handshake, and writes it;
    /// whether the session is open.
    async fn ws_handshake(&mut self, s: &mut WsSession) -> bool {
        let mut stop = self.ctx.shutdown.subscribe();
        loop {
            let answer = self.ws_answer(s);
            if self.flush().await.is_err() {
                return false;
            }
            match answer {
                Answer::Accepted => return true,
                Answer::Over => return false,
                Answer::Pending => {}
            }
            tokio::select! {
                _ = s.shared.conn_wake.notified() => {}
                r = self.read(), if !self.eof => {
                    if r.is_err() || self.eof {
                        return false;
                    }
                }
                _ = stop.changed() => return false,
            }
        }
    }

    /// The open connection: frames both ways until the close handshake ends
    /// or the connection drops. Core runs the ping, pong and close timers.
    async fn ws_open(&mut self, s: &mut WsSession, settings: &WsSettings) {
        let mut stop = self.ctx.shutdown.subscribe();
        let mut stopping = false;
        // One wait for the stop and one timer for the session's life, not a
        // new one per wait (the timer moves only when core's deadline does).
        let stopped = crate::server::stopping(&mut stop);
        tokio::pin!(stopped);
        let mut stop_poll = crate::server::StopPoll::default();
        let timer = tokio::time::sleep_until(clock::never());
        tokio::pin!(timer);
        let mut bufs = Vec::new();
        let ctx = self.ctx.clone();
        loop {
            // 1. Peer events into the stream; app output into frames.
            let queue_full = self.ws_pump(s, settings);
            // 2. Write.
            if self.conn.has_transmit() {
                bufs.clear();
                self.conn.poll_transmit(&mut bufs);
                if write_all(&mut self.io, &mut bufs).await.is_err() {
                    break;
                }
            }
            self.ws_written(s);
            if self.ws_over() {
                break;
            }
            // 3. Wait.
            let deadline = self.next_deadline();
            let timed = deadline.is_some();
            if let Some(at) = deadline
                && timer.deadline() != at
            {
                timer.as_mut().reset(at);
            }
            // biased: in this order, without a random start per wait. The
            // stop first (see StopPoll), then the timer, so that frames always
            // ready in either direction cannot starve them.
            tokio::select! {
                biased;
                () = stop_poll.wait(&ctx, stopped.as_mut()), if !stopping => {
                    stopping = true;
                    self.conn.shutdown(clock::now());
                }
                () = &mut timer, if timed => self.fire_timer(),
                () = s.shared.conn_wake.notified() => {}
                r = self.read(), if !queue_full && !self.eof => {
                    if r.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// Runs a WebSocket that the app accepted on a stream of an HTTP/2 or
/// HTTP/3 connection (see [`crate::server::tunnel`]): `io` is the stream's
/// bytes, `conn` core's connection for them. The same session loop as
/// after an HTTP/1.1 upgrade; at its end the stream is finished.
pub(in crate::server) async fn serve_tunnel<S: Transport>(
    io: S,
    conn: server::Connection,
    stream: &StreamConn,
    shared: Arc<WsShared>,
    exchange: Exchange,
) {
    let mut c = Conn::tunnel(io, conn, stream);
    let mut s = WsSession {
        shared,
        exchange,
        offer: None,
        taken: 0,
        paused: false,
    };
    if let Some(settings) = c.ctx.ws.clone() {
        c.ws_open(&mut s, &settings).await;
    }
    c.ws_end(&mut s);
    if c.flush().await.is_ok() {
        let _ = c.io.shutdown().await;
    }
}

/// Moves every available peer event into the ASGI stream. Returns whether
/// the connection is finished (closed, failed or at EOF).
fn pump_events(conn: &mut server::Connection, st: &mut WsState) -> bool {
    let now = clock::now();
    loop {
        let Event::WebSocket(ev) = conn.poll_event(now) else {
            return true;
        };
        match ev {
            ws::Event::Text(t) => st.stream.handle_message(WsReceive::Text(t)),
            ws::Event::Binary(b) => st.stream.handle_message(WsReceive::Bytes(b)),
            ws::Event::Ping(_) | ws::Event::Pong(_) => {}
            ws::Event::Close { code, reason } => st.stream.handle_peer_close(code, reason),
            // A ping timeout is 1011, as the peer was told.
            ws::Event::Error(e) => st.stream.handle_peer_close(e.close_code(), String::new()),
            ws::Event::NeedData => return false,
            _ => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WsSettings;
    use crate::config::ServerConfig;

    #[test]
    fn zero_ping_interval_means_no_pings_and_ws_none_means_off() {
        let mut c: ServerConfig = serde_json::from_str(r#"{"ws_ping_interval": null}"#).unwrap();
        let ws = WsSettings::from_config(&c).unwrap();
        assert_eq!(ws.ping_interval, None);
        assert!(ws.ping_timeout.is_some());
        c.ws = crate::config::WsMode::None;
        assert!(WsSettings::from_config(&c).is_none());
    }
}
