//! A WebSocket connection after an HTTP/1.1 upgrade request: the
//! application answers the handshake (accept, close or a denial response),
//! then frames go through `core::ws`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cormorant_core::asgi::{HttpScope, WebSocketScope, WsOutput, WsReceive};
use cormorant_core::h1::{self, Event, ResponseHead};
use cormorant_core::ws;
use tokio::time::Instant;

use super::{Conn, Next, write_all};
use crate::handoff::queue::Job;
use crate::handoff::websocket::{NewWebSocket, WsShared, WsState, output_len};
use crate::server::date;
use crate::server::transport::Transport;

/// How long to wait for the peer's close frame after ours, before dropping
/// the connection (RFC 6455 §7.1.1 leaves the timeout to the server).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// WebSocket settings of a worker.
#[derive(Debug, Clone)]
pub(crate) struct WsSettings {
    /// Largest message (and frame), after decompression.
    pub(crate) max_size: usize,
    /// Messages received and not yet taken by the app, past which the
    /// connection stops reading (backpressure onto the peer).
    pub(crate) max_queue: usize,
    /// Send a ping this often.
    pub(crate) ping_interval: Option<Duration>,
    /// Drop the connection when a ping is not answered within this.
    pub(crate) ping_timeout: Option<Duration>,
    /// Offer permessage-deflate when the client asks for it.
    pub(crate) per_message_deflate: bool,
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
    ) -> Next {
        let offer = match ws::Handshake::from_request(&head.method, head.version, &head.headers) {
            Ok(h) => h,
            Err(e) => {
                let status = e.status_hint();
                return self.bad_handshake(status).await;
            }
        };
        // The upgrade request has no body; step past its end.
        while let Event::BodyChunk(_) = self.h1.poll_event() {}
        let Ok(mut http) = HttpScope::new(
            head.version.into(),
            &head.method,
            &head.target,
            head.headers,
            &self.info,
        ) else {
            return self.simple_response(400, b"Bad Request").await;
        };
        self.ctx.apply_proxy_headers(self.trusted_proxy, &mut http);
        let shared = Arc::new(WsShared::new());
        self.ctx.queue.push(Job::WebSocket(Box::new(NewWebSocket {
            scope: WebSocketScope::new(http),
            unix: self.unix,
            tls: self.tls.clone(),
            shared: shared.clone(),
        })));
        let (subprotocol, headers) = match self.ws_handshake(&shared).await {
            Handshake::Accepted {
                subprotocol,
                headers,
            } => (subprotocol, headers),
            Handshake::Done(next) => return next,
        };
        let deflate = offer.negotiate_deflate(settings.per_message_deflate);
        let mut response = offer.response_headers(subprotocol.as_deref());
        let mut params = None;
        if let Some((p, header)) = deflate {
            response.push((
                Bytes::from_static(b"sec-websocket-extensions"),
                Bytes::from(header),
            ));
            params = Some(p);
        }
        response.extend(headers);
        self.h1.set_date(date::http_date());
        let sent = self.h1.send_response(ResponseHead {
            status: 101,
            headers: response,
        });
        if sent.is_err() || self.h1.send_end().is_err() || self.flush().await.is_err() {
            self.ws_gone(&shared);
            return Next::Close;
        }
        let leftover = self.h1.take_buffered();
        let config = ws::Config {
            max_message_size: settings.max_size,
            max_frame_size: settings.max_size,
            deflate: params,
        };
        self.ws_open(&shared, ws::Connection::new(config), leftover, settings)
            .await;
        Next::Close
    }

    async fn bad_handshake(&mut self, status: u16) -> Next {
        if status == 426 {
            // RFC 6455 §4.4: name the version we speak.
            let extra: &[(&[u8], &[u8])] = &[(b"sec-websocket-version", b"13")];
            return self.server_response(426, extra, b"Upgrade Required").await;
        }
        self.simple_response(400, b"Bad WebSocket handshake").await
    }

    /// Waits for the application's answer to the handshake and writes a
    /// denial response if that is the answer.
    async fn ws_handshake(&mut self, shared: &Arc<WsShared>) -> Handshake {
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
                        self.h1.set_date(date::http_date());
                        self.h1.close_after_response();
                        let head = ResponseHead {
                            status: start.status,
                            headers: start.headers,
                        };
                        if self.h1.send_response(head).is_err() {
                            return Handshake::Done(self.ws_abort(shared));
                        }
                    }
                    WsOutput::DenyBody { body, end } => {
                        if !body.is_empty() && self.h1.send_body(body).is_err() {
                            return Handshake::Done(self.ws_abort(shared));
                        }
                        if end {
                            let _ = self.h1.send_end();
                            let _ = self.flush().await;
                            self.ws_gone(shared);
                            return Handshake::Done(Next::Close);
                        }
                    }
                    _ => {}
                }
            }
            // A 403 for a close before accept carries no body message.
            if shared.lock().stream.is_finished() && self.h1.response_started() {
                let _ = self.h1.send_end();
                let _ = self.flush().await;
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
    /// or the connection drops.
    async fn ws_open(
        &mut self,
        shared: &Arc<WsShared>,
        mut conn: ws::Connection,
        leftover: Bytes,
        settings: &WsSettings,
    ) {
        if !leftover.is_empty() {
            conn.handle_bytes(&leftover);
        }
        let mut stop = self.ctx.shutdown.subscribe();
        let mut bufs = Vec::new();
        let far = Instant::now() + Duration::from_secs(86400 * 365);
        let next_ping = settings.ping_interval.map(|i| Instant::now() + i);
        let ping_timer = tokio::time::sleep_until(next_ping.unwrap_or(far));
        tokio::pin!(ping_timer);
        let mut awaiting_pong = false;
        // Set once we sent a close: the peer has until then to answer.
        let close_timer = tokio::time::sleep_until(far);
        tokio::pin!(close_timer);
        let mut closing = false;
        loop {
            // 1. Peer events into the stream; app output into frames.
            // `taken` counts message bytes, acknowledged to `send()` once
            // written (compression makes the wire bytes differ).
            let mut taken = 0usize;
            let (wake, queue_full, got_pong) = {
                let mut st = shared.lock();
                let (done, got_pong) = pump_events(&mut conn, &mut st);
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
                if done && !st.stream.is_gone() {
                    st.stream.handle_disconnect();
                }
                (
                    st.needs_wake(),
                    st.stream.queued() >= settings.max_queue,
                    got_pong,
                )
            };
            if got_pong && awaiting_pong {
                awaiting_pong = false;
                if let Some(i) = settings.ping_interval {
                    ping_timer.as_mut().reset(Instant::now() + i);
                }
            }
            if wake {
                self.ctx.queue.push(Job::WsWake(shared.clone()));
            }
            if conn.close_sent() && !closing {
                closing = true;
                close_timer.as_mut().reset(Instant::now() + CLOSE_TIMEOUT);
            }
            // 2. Write.
            if conn.has_transmit() {
                bufs.clear();
                conn.poll_transmit(&mut bufs);
                if write_all(&mut self.io, &mut bufs).await.is_err() {
                    break;
                }
            }
            if taken > 0 {
                let mut st = shared.lock();
                st.out_bytes = st.out_bytes.saturating_sub(taken);
                let wake = st.needs_wake();
                drop(st);
                if wake {
                    self.ctx.queue.push(Job::WsWake(shared.clone()));
                }
            }
            if conn.is_closed() || self.eof {
                break;
            }
            // 3. Wait.
            tokio::select! {
                _ = shared.conn_wake.notified() => {}
                r = self.read_ws(&mut conn), if !queue_full && !self.eof => {
                    if r.is_err() {
                        break;
                    }
                }
                _ = &mut ping_timer => {
                    if awaiting_pong {
                        // No pong within the timeout: the peer is gone.
                        break;
                    }
                    if conn.send_ping(b"").is_ok() {
                        awaiting_pong = true;
                    }
                    // Next: the pong deadline (then the interval again).
                    let next = match (settings.ping_timeout, settings.ping_interval) {
                        (Some(t), _) => Instant::now() + t,
                        (None, Some(i)) => {
                            awaiting_pong = false;
                            Instant::now() + i
                        }
                        (None, None) => far,
                    };
                    ping_timer.as_mut().reset(next);
                }
                _ = &mut close_timer, if closing => break,
                _ = stop.changed(), if !closing => {
                    let _ = conn.send_close(1001, "server shutting down");
                }
            }
        }
        self.ws_gone(shared);
    }

    /// Reads once into the WebSocket connection.
    async fn read_ws(&mut self, conn: &mut ws::Connection) -> Result<(), ()> {
        self.rbuf.clear();
        match tokio::io::AsyncReadExt::read_buf(&mut self.io, &mut self.rbuf).await {
            Ok(0) => {
                self.eof = true;
                conn.handle_eof();
                Ok(())
            }
            Ok(_) => {
                conn.handle_bytes(&self.rbuf);
                Ok(())
            }
            Err(_) => {
                self.eof = true;
                conn.handle_eof();
                Err(())
            }
        }
    }

    /// The connection is over: the app's `receive()` yields a disconnect.
    fn ws_gone(&mut self, shared: &Arc<WsShared>) {
        let mut st = shared.lock();
        st.stream.handle_disconnect();
        let wake = st.needs_wake();
        drop(st);
        if wake {
            self.ctx.queue.push(Job::WsWake(shared.clone()));
        }
    }

    fn ws_abort(&mut self, shared: &Arc<WsShared>) -> Next {
        self.ws_gone(shared);
        Next::Close
    }
}

/// Moves every available peer event into the ASGI stream. Returns whether
/// the connection is finished (closed, failed or at EOF) and whether a pong
/// arrived.
fn pump_events(conn: &mut ws::Connection, st: &mut WsState) -> (bool, bool) {
    let mut got_pong = false;
    loop {
        match conn.poll_event() {
            ws::Event::Text(t) => st.stream.handle_message(WsReceive::Text(t)),
            ws::Event::Binary(b) => st.stream.handle_message(WsReceive::Bytes(b)),
            ws::Event::Ping(_) => {}
            ws::Event::Pong(_) => got_pong = true,
            ws::Event::Close { code, reason } => st.stream.handle_peer_close(code, reason),
            ws::Event::Error(e) => st.stream.handle_peer_close(e.close_code(), String::new()),
            ws::Event::NeedData => return (false, got_pong),
            _ => return (true, got_pong),
        }
    }
}
