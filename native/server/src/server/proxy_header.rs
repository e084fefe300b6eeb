//! The PROXY protocol header at the start of a TCP connection
//! (`--proxy-protocol`). Its bytes are peeked, judged by core
//! ([`HeaderWait`]: what this peer may send, and until when), and only a
//! header is consumed, exactly: the stream after it, HTTP or TLS, is
//! untouched.

use std::time::Duration;

use cormorant_core::proxy_protocol::{Expect, HeaderWait, V2_MAX_LEN, Verdict};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::conn::PeerInfo;
use super::{ServerCtx, clock};
use crate::config::Level;

/// How long to wait before peeking again when the bytes that arrived do
/// not settle it yet (a header split over segments, which is rare: a
/// balancer writes it in one).
const PEEK_AGAIN: Duration = Duration::from_millis(2);

/// Reads the header a trusted peer sends (or makes sure an untrusted one
/// sends none). The peer as the connection is to see it, or None when the
/// connection is to be closed (logged at debug level, with why).
pub(super) async fn read(
    sock: &mut TcpStream,
    info: PeerInfo,
    ctx: &ServerCtx,
) -> Option<PeerInfo> {
    let (expect, peers) = ctx.proxy_protocol.as_ref()?;
    let trusted = info.ip().is_some_and(|ip| peers.is_trusted(ip));
    let expect = if trusted { *expect } else { Expect::Forbidden };
    let timeout = ctx
        .conn
        .timeouts
        .request_head
        .unwrap_or(Duration::from_secs(30));
    let wait = HeaderWait::new(expect, clock::now(), timeout);
    let deadline = clock::deadline(wait.poll_timeout());
    let mut buf = vec![0; V2_MAX_LEN];
    let mut seen = 0;
    let verdict = loop {
        tokio::select! {
            r = sock.peek(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    ctx.log(Level::Debug, || format!(
                        "connection from {} closed before its proxy protocol header",
                        info.label(true)));
                    return None;
                }
                Ok(n) if n == seen => tokio::time::sleep(PEEK_AGAIN).await,
                Ok(n) => {
                    seen = n;
                    match wait.handle_bytes(&buf[..n]) {
                        Verdict::Need { .. } => {}
                        settled => break settled,
                    }
                }
            },
            () = tokio::time::sleep_until(deadline) => {
                if let Some(settled) = wait.handle_timeout(&buf[..seen], clock::now()) {
                    break settled;
                }
            }
        }
    };
    match verdict {
        Verdict::Plain => Some(info),
        Verdict::Header { header, len } => {
            // Already received: this read does not wait.
            sock.read_exact(&mut buf[..len]).await.ok()?;
            Some(match header.addresses {
                Some((client, server)) => info.proxied(client, server),
                None => info,
            })
        }
        Verdict::Reject(e) => {
            ctx.log(Level::Debug, || {
                format!("closing the connection from {}: {e}", info.label(true))
            });
            None
        }
        Verdict::Need { .. } => None,
    }
}
