//! A WebSocket connection after an HTTP/1.1 upgrade request: the
//! application answers the handshake (accept, close or a denial response),
//! then frames go through `core::ws`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cormorant_core::asgi::{WebSocketScope, WsOutput, WsReceive};
use cormorant_core::h1::{self, ResponseHead};
use cormorant_core::server::{self, Event};
use cormorant_core::ws;

use super::{Conn, Next, write_all};
use crate::handoff::queue::Job;
use crate::handoff::websocket::{NewWebSocket, WsShared, WsState, output_len};
use crate::server::clock;
use crate::server::exchange::Exchange;
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

/// What ended the handshake phase.
enum Handshake {
    Accepted {
        subprotocol: Option<String>,
        headers: Vec<(Bytes, Bytes)>,
    },
    Done(Next),
}

impl<S: Transport> Conn<S> {
    /// Serves a request that asked for `Upgrade: websocket`.
    pub(super) async fn serve_websocket(
        &mut self,
        head: h1::RequestHead,
        settings: &WsSettings,
        mut exchange: Exchange,
    ) -> Next {
        let offer = match ws::Handshake::from_head(&head) {
            Ok(h) => h,
            Err(e) => {
                // Core answers: 426 naming version 13, or 400.
                self.refresh_date();
                let _ = self.conn.reject_websocket(&e);
                let _ = self.flush().await;
                self.linger = true;
                return Next::Close;
            }
        };
        // Its (empty) body is stepped past by core's `accept_websocket`.
        let Some((http, _)) = self.scope_of(head) else {
            return self.simple_response(400, b"Bad Request").await;
        };
        let shared = Arc::new(WsShared::new());
        self.ctx.queue.push(Job::WebSocket(Box::new(NewWebSocket {
            scope: WebSocketScope::new(http),
            unix: self.unix,
            tls: self.tls.clone(),
            shared: shared.clone(),
        })));
        let (subprotocol, headers) = match self.ws_handshake(&shared, &mut exchange).await {
            Handshake::Accepted {
                subprotocol,
                headers,
            } => (subprotocol, headers),
            Handshake::Done(next) => return next,
        };
        self.refresh_date();
        // Core writes the 101 (accept key, subprotocol, negotiated
        // permessage-deflate, the app's fields) and starts the ping timer.
        let accepted =
            self.conn
                .accept_websocket(clock::now(), &offer, subprotocol.as_deref(), headers);
        if accepted.is_err() || self.flush().await.is_err() {
            self.ws_gone(&shared);
            return Next::Close;
        }
        exchange.status = 101;
        self.ws_open(&shared, settings, &mut exchange).await;
        exchange.finish(&self.client_label, self.info.scheme);
        Next::Close
    }

    /// Waits for the application's answer to the handshake and writes a
    /// denial response if that is the answer.
    async fn ws_handshake(&mut self, shared: &Arc<WsShared>, exchange: &mut Exchange) -> Handshake {
        let mut stop = self.ctx.shutdown.subscribe();
        loop {
            let outs: Vec<WsOutput> = shared.lock().out.drain(..).collect();
            let mut outs = outs.into_iter();
            while let Some(out) = outs.next() {
                match out {
                    WsOutput::Accept {
                        subprotocol,
                        headers,
                    } => {
                        // Messages sent right after accept wait for the
                        // open phase, in order.
                        let mut st = shared.lock();
                        for (i, rest) in outs.enumerate() {
                            st.out.insert(i, rest);
                        }
                        return Handshake::Accepted {
                            subprotocol,
                            headers,
                        };
                    }
                    WsOutput::DenyStart(start) => {
                        self.refresh_date();
                        self.h1().close_after_response();
                        exchange.status = start.status;
                        let head = ResponseHead {
                            status: start.status,
                            headers: start.headers,
                        };
                        if self.h1().send_response(head).is_err() {
                            return Handshake::Done(self.ws_abort(shared));
                        }
                    }
                    WsOutput::DenyBody { body, end } => {
                        exchange.sent += body.len() as u64;
                        if !body.is_empty() && self.h1().send_body(body).is_err() {
                            return Handshake::Done(self.ws_abort(shared));
                        }
                        if end {
                            let _ = self.h1().send_end();
                            let _ = self.flush().await;
                            exchange.finish(&self.client_label, self.info.scheme);
                            self.ws_gone(shared);
                            return Handshake::Done(Next::Close);
                        }
                    }
                    _ => {}
                }
            }
            // A 403 for a close before accept carries no body message.
            if shared.lock().stream.is_finished() && self.h1().response_started() {
                let _ = self.h1().send_end();
                let _ = self.flush().await;
                exchange.finish(&self.client_label, self.info.scheme);
                self.ws_gone(shared);
                return Handshake::Done(Next::Close);
            }
            if self.flush().await.is_err() {
                return Handshake::Done(self.ws_abort(shared));
            }
            tokio::select! {
                _ = shared.conn_wake.notified() => {}
                r = self.read(), if !self.eof => {
                    if r.is_err() || self.eof {
                        return Handshake::Done(self.ws_abort(shared));
                    }
                }
                _ = stop.changed() => return Handshake::Done(self.ws_abort(shared)),
            }
        }
    }

    /// The open connection: frames both ways until the close handshake ends
    /// or the connection drops. Core runs the ping, pong and close timers.
    async fn ws_open(
        &mut self,
        shared: &Arc<WsShared>,
        settings: &WsSettings,
        exchange: &mut Exchange,
    ) {
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
            // `taken` counts message bytes, acknowledged to `send()` once
            // written (compression makes the wire bytes differ).
            let mut taken = 0usize;
            let queue_full = shared.update(&ctx.queue, |st| {
                let done = pump_events(&mut self.conn, st);
                if let Some(conn) = self.conn.websocket() {
                    for out in std::mem::take(&mut st.out) {
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
                st.stream.queued() >= settings.max_queue
            });
            // 2. Write.
            if self.conn.has_transmit() {
                bufs.clear();
                self.conn.poll_transmit(&mut bufs);
                if write_all(&mut self.io, &mut bufs).await.is_err() {
                    break;
                }
            }
            if taken > 0 {
                exchange.sent += taken as u64;
                shared.update(&self.ctx.queue, |st| {
                    st.out_bytes = st.out_bytes.saturating_sub(taken);
                });
            }
            if self.conn.wants_close() || self.eof {
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
                () = shared.conn_wake.notified() => {}
                r = self.read(), if !queue_full && !self.eof => {
                    if r.is_err() {
                        break;
                    }
                }
            }
        }
        self.ws_gone(shared);
    }

    /// The connection is over: the app's `receive()` yields a disconnect.
    fn ws_gone(&mut self, shared: &Arc<WsShared>) {
        shared.update(&self.ctx.queue, |st| st.stream.handle_disconnect());
    }

    fn ws_abort(&mut self, shared: &Arc<WsShared>) -> Next {
        self.ws_gone(shared);
        Next::Close
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
