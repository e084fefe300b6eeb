//! TLS on accepted connections: the handshake (bounded in time, failures
//! logged at debug level), then HTTP/2 or HTTP/1.1 as ALPN decided.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::conn::{self, PeerInfo};
use super::tls_io::TlsSocket;
use super::transport::Transport;
use super::{OpenConnection, h2};
use crate::config::{HttpVersions, Level};
use crate::tls::connection_info;

impl Transport for TlsStream<TcpStream> {}

/// Serves a TCP connection of a TLS listener; after the handshake,
/// `readiness` serves it if HTTP/1.1 was chosen.
pub(super) async fn serve(
    sock: TcpStream,
    peer: PeerInfo,
    open: OpenConnection,
    readiness: Option<conn::Readiness>,
) {
    let ctx = open.0.clone();
    let Some(tls) = ctx.tls.clone() else {
        return;
    };
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let mut stop = ctx.shutdown.subscribe();
    let handshake = tokio::time::timeout(ctx.tls_handshake_timeout, acceptor.accept(sock));
    let stream = tokio::select! {
        r = handshake => match r {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                ctx.log(Level::Debug, || format!("TLS handshake with {} failed: {e}", peer.label(true)));
                return;
            }
            Err(_) => {
                ctx.log(Level::Debug, || format!("TLS handshake with {} timed out", peer.label(true)));
                return;
            }
        },
        _ = stop.changed() => return,
    };
    let info = connection_info(stream.get_ref().1, &tls);
    let h2 = match ctx.http {
        HttpVersions::Http2 => true,
        HttpVersions::Http1 => false,
        HttpVersions::Auto => info.alpn.as_deref() == Some(b"h2"),
    };
    let peer = peer.with_tls(Arc::new(info));
    if ctx.http == HttpVersions::Http2 {
        h2::serve_prior_knowledge(stream, peer, "https", ctx).await;
    } else if h2 {
        h2::serve(stream, peer, "https", ctx).await;
    } else if let Some(driver) = readiness {
        let (sock, tls) = stream.into_inner();
        if let Ok(sock) = sock.into_std() {
            let sock = conn::Socket::Tls(Box::new(TlsSocket::new(sock, tls)));
            driver.add(sock, peer, open);
        }
        return;
    } else {
        conn::serve(stream, peer, "https", ctx).await;
    }
    drop(open);
}
