//! A WebSocket over one stream of an HTTP/2 connection (RFC 8441) or an
//! HTTP/3 connection (RFC 9220). The application answers the extended
//! CONNECT as it answers an HTTP/1.1 upgrade; an accepted one becomes
//! core's WebSocket connection over the stream's bytes, driven by the same
//! session loop as after an upgrade (`conn::serve_tunnel`), so frames,
//! permessage-deflate, pings, the close handshake and limits are the same
//! on every protocol. The stack only sends the answer and carries the bytes.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cormorant_core::asgi::WsOutput;
use cormorant_core::h1::ResponseHead;
use cormorant_core::server;

use super::ServerCtx;
use super::clock;
use super::stream::Tunnel;
use crate::handoff::websocket::WsShared;

/// The application's answer to a WebSocket handshake on a stream.
pub(super) enum Answer {
    /// Accepted: the `200` to send, then core's WebSocket connection runs
    /// over the stream's bytes.
    Accepted {
        head: ResponseHead,
        conn: Box<server::Connection>,
    },
    /// Denied, with a response of the app's (or core's 403/500 for an app
    /// that closed or failed before accepting), sent whole.
    Denied { head: ResponseHead, body: Bytes },
    /// The server stops before the app answered.
    Stopping,
}

/// Waits for the application's answer to `t`. Dropped before it answers
/// (the client reset the stream), the session ends: the app's `receive()`
/// yields `websocket.disconnect`.
pub(super) async fn answer(t: &mut Tunnel, ctx: &Arc<ServerCtx>) -> Answer {
    let guard = Disconnect {
        shared: t.shared.clone(),
        ctx,
    };
    let mut stop = ctx.shutdown.subscribe();
    let mut denial: Option<(ResponseHead, BytesMut)> = None;
    loop {
        let outs = t.shared.lock().take_handshake_output();
        for out in outs {
            match out {
                WsOutput::Accept {
                    subprotocol,
                    headers,
                } => {
                    let Ok((conn, head)) = server::Connection::accept_tunnel(
                        ctx.conn.clone(),
                        clock::now(),
                        &t.offer,
                        subprotocol.as_deref(),
                        headers,
                    ) else {
                        return Answer::Stopping;
                    };
                    std::mem::forget(guard);
                    t.exchange.status = head.status;
                    return Answer::Accepted {
                        head,
                        conn: Box::new(conn),
                    };
                }
                WsOutput::DenyStart(start) => {
                    t.exchange.status = start.status;
                    let head = ResponseHead {
                        status: start.status,
                        headers: start.headers,
                    };
                    denial = Some((head, BytesMut::new()));
                }
                WsOutput::DenyBody { body, end } => {
                    if let Some((_, collected)) = &mut denial {
                        collected.extend_from_slice(&body);
                    }
                    if end && let Some((head, body)) = denial.take() {
                        return denied(t, head, body.freeze());
                    }
                }
                _ => {}
            }
        }
        // A 403 or 500 for an app that ended before accepting has no body
        // message.
        if t.shared.lock().stream.is_finished()
            && let Some((head, body)) = denial.take()
        {
            return denied(t, head, body.freeze());
        }
        tokio::select! {
            () = t.shared.conn_wake.notified() => {}
            _ = stop.changed() => return Answer::Stopping,
        }
    }
}

/// The denial is complete: recorded (metrics, access line) as sent.
fn denied(t: &mut Tunnel, head: ResponseHead, body: Bytes) -> Answer {
    t.exchange.sent = body.len() as u64;
    Answer::Denied { head, body }
}

/// Ends the session for the app when the wait for its answer is dropped.
struct Disconnect<'a> {
    shared: Arc<WsShared>,
    ctx: &'a Arc<ServerCtx>,
}

impl Drop for Disconnect<'_> {
    fn drop(&mut self) {
        self.shared
            .update(&self.ctx.queue, |st| st.stream.handle_disconnect());
    }
}
