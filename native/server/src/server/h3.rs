//! HTTP/3 over QUIC (`--http3`). quinn carries QUIC, with rustls for its
//! TLS 1.3; the h3 crate does HTTP/3's framing and QPACK. Each request
//! stream starts through the same lifecycle as an HTTP/2 stream
//! ([`super::stream`]) and is one `core::asgi::HttpStream`, so apps see the
//! same semantics with `http_version` "3".
//!
//! Each worker serves its own UDP socket on the TCP listener's port, in a
//! SO_REUSEPORT group: the kernel spreads QUIC flows over the workers by
//! their address and port, so a client whose address changes (connection
//! migration) may reach a worker that does not know its connection, and
//! the connection then fails over to a new one.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use cormorant_core::asgi::{HttpVersion, Output, ResponseStart, h2_fields};
use h3::error::Code;
use http::{Response, StatusCode};
use quinn::crypto::rustls::QuicServerConfig;

use super::conn::PeerInfo;
use super::exchange::Exchange;
use super::file::{BodyFile, add_content_length};
use super::static_files::StaticBody;
use super::stream::{self, BodyPiece, Early, StreamConn};
use super::{OpenConnection, ServerCtx, driven};
use crate::config::{Level, ServerConfig};
use crate::handoff::http::Shared;
use crate::tls::{ServerTls, TlsInfo};

type Conn = h3::server::Connection<h3_quinn::Connection, Bytes>;
type SendHalf = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
type RecvHalf = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;

/// HTTP/3 settings, from `--http3` and the `--http3-*` flags.
pub struct H3Settings {
    quic: quinn::ServerConfig,
    /// Largest request header section accepted, in bytes.
    max_field_section_size: u64,
    /// The fields every response carries: HTTP/3's own copy (no
    /// `alt-svc`: the client is already here).
    fields: h2_fields::ServerFields,
}

impl H3Settings {
    /// QUIC's configuration: the server's TLS settings (certificates,
    /// client authentication, cipher suites) with ALPN `h3`, and 0-RTT only
    /// when asked for. Errors are one readable line.
    pub fn new(
        c: &ServerConfig,
        tls: &ServerTls,
        fields: h2_fields::ServerFields,
    ) -> Result<Self, String> {
        let mut crypto = (*tls.config).clone();
        crypto.alpn_protocols = vec![b"h3".to_vec()];
        // QUIC takes early data all or nothing (RFC 9001 §4.6.1).
        crypto.max_early_data_size = if c.http3_0rtt { u32::MAX } else { 0 };
        let crypto = QuicServerConfig::try_from(crypto).map_err(|e| {
            format!("--http3 needs TLS 1.3 and the TLS_AES_128_GCM_SHA256 suite: {e}")
        })?;
        let mut quic = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let idle = quinn::IdleTimeout::try_from(c.http3_idle_timeout)
            .map_err(|_| "--http3-idle-timeout is too long".to_owned())?;
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(c.http3_max_concurrent_streams.into())
            .max_idle_timeout((!c.http3_idle_timeout.is_zero()).then_some(idle))
            .stream_receive_window(c.http3_stream_window_size.into())
            .receive_window(c.http3_connection_window_size.into())
            // Responses go out in the order they were written, each whole,
            // not interleaved: with many in flight, each completes sooner.
            .send_fairness(false);
        quic.transport_config(Arc::new(transport));
        Ok(Self {
            quic,
            max_field_section_size: c.http2_max_header_list_size.into(),
            fields,
        })
    }
}

/// quinn's tokio runtime, with its tasks spawned through
/// [`driven::spawn`], so that a step of a driven server runs them.
#[derive(Debug)]
struct Runtime(quinn::TokioRuntime);

impl quinn::Runtime for Runtime {
    fn new_timer(&self, at: std::time::Instant) -> Pin<Box<dyn quinn::AsyncTimer>> {
        self.0.new_timer(at)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        driven::spawn(future);
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> io::Result<Arc<dyn quinn::AsyncUdpSocket>> {
        self.0.wrap_udp_socket(socket)
    }

    fn now(&self) -> std::time::Instant {
        self.0.now()
    }
}

/// During a stop, how often a connection checks for requests in flight,
/// and an endpoint for open connections.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// How long a stop waits for QUIC connections to finish closing (their
/// CONNECTION_CLOSE sent, in the draining period) once none is open.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Serves HTTP/3 on `socket` until shutdown: then each connection sends
/// GOAWAY and finishes its requests. The endpoint counts as an open
/// connection until then, so the stop waits for it.
pub(super) async fn serve(socket: std::net::UdpSocket, ctx: Arc<ServerCtx>) -> io::Result<()> {
    let Some(settings) = ctx.h3.as_ref() else {
        return Ok(());
    };
    let open = OpenConnection::new(&ctx);
    let local = socket.local_addr().ok();
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(settings.quic.clone()),
        socket,
        Arc::new(Runtime(quinn::TokioRuntime)),
    )?;
    // Held by each of this endpoint's connections.
    let live = Arc::new(());
    let mut stop = ctx.shutdown.subscribe();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => {
                    let open = (OpenConnection::new(&ctx), live.clone());
                    driven::spawn(connection(incoming, local, ctx.clone(), open));
                }
                None => break,
            },
            () = super::stopping(&mut stop) => break,
        }
    }
    // New connections are refused from here; open ones finish.
    endpoint.set_server_config(None);
    while Arc::strong_count(&live) > 1 {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, endpoint.wait_idle()).await;
    drop(open);
    Ok(())
}

/// Serves one QUIC connection's HTTP/3 requests until it closes, or until
/// the stop: then GOAWAY, and the requests under way finish.
async fn connection(
    incoming: quinn::Incoming,
    local: Option<SocketAddr>,
    ctx: Arc<ServerCtx>,
    open: (OpenConnection, Arc<()>),
) {
    let (Some(settings), Some(tls)) = (ctx.h3.as_ref(), ctx.tls.as_ref()) else {
        return;
    };
    let quic = match incoming.await {
        Ok(quic) => quic,
        Err(e) => {
            ctx.log(Level::Debug, || format!("QUIC handshake failed: {e}"));
            return;
        }
    };
    let peer = PeerInfo::tcp(quic.remote_address(), local).with_tls(Arc::new(tls_info(&quic, tls)));
    let conn = Arc::new(StreamConn::new(peer, "https", ctx.clone()));
    let built = h3::server::builder()
        .max_field_section_size(settings.max_field_section_size)
        // No reserved frames after a response's last DATA frame: some
        // clients (aioquic up to 1.2) then never see the response end.
        .send_grease(false)
        .build(h3_quinn::Connection::new(quic.clone()))
        .await;
    let mut h3: Conn = match built {
        Ok(h3) => h3,
        Err(e) => {
            ctx.log(Level::Debug, || format!("HTTP/3 connection failed: {e}"));
            return;
        }
    };
    let mut stop = ctx.shutdown.subscribe();
    let mut goaway_sent = false;
    loop {
        // After our GOAWAY, the connection ends once no request is in
        // flight (each holds `conn`); h3 only ends it after the client's.
        let requests_done = async {
            while Arc::strong_count(&conn) > 1 {
                tokio::time::sleep(DRAIN_POLL).await;
            }
        };
        tokio::select! {
            () = requests_done, if goaway_sent => break,
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    driven::spawn(request(resolver, conn.clone(), quic.clone()));
                }
                // Every request done after a GOAWAY (ours or the client's).
                Ok(None) => break,
                Err(e) => {
                    if !e.is_h3_no_error() {
                        ctx.log(Level::Debug, || format!("HTTP/3 connection closed: {e}"));
                    }
                    break;
                }
            },
            () = super::stopping(&mut stop), if !goaway_sent => {
                goaway_sent = true;
                // The requests accepted so far are served; the client's
                // later ones are refused with H3_REQUEST_REJECTED, to retry.
                let _ = h3.shutdown(1).await;
            }
        }
    }
    quic.close(
        Code::H3_NO_ERROR.value().try_into().unwrap_or_default(),
        b"",
    );
    drop(open);
}

/// The `tls` extension of a QUIC connection. QUIC is always TLS 1.3;
/// quinn does not say which cipher suite was negotiated.
fn tls_info(quic: &quinn::Connection, tls: &ServerTls) -> TlsInfo {
    let peer: Vec<rustls_pki_types::CertificateDer<'static>> = quic
        .peer_identity()
        .and_then(|id| id.downcast().ok())
        .map(|certs| *certs)
        .unwrap_or_default();
    let alpn = quic
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    crate::tls::quic_connection_info(&peer, alpn, tls)
}

/// One request stream, from its head to its complete response.
async fn request(
    resolver: h3::server::RequestResolver<h3_quinn::Connection, Bytes>,
    conn: Arc<StreamConn>,
    quic: quinn::Connection,
) {
    let Ok((req, stream)) = resolver.resolve_request().await else {
        return;
    };
    let (parts, ()) = req.into_parts();
    let (send, mut recv) = stream.split();
    // The body's first bytes, or its end, may have come with the head.
    let first = poll_data_now(&mut recv);
    let has_body = !matches!(first, Some(Ok(None)));
    let mut stream = Stream {
        send,
        recv: has_body.then_some(recv),
        pending: first.filter(|_| has_body),
        head_sent: false,
        conn,
        quic,
        shared: None,
        exchange: None,
        head_only: false,
        done: false,
    };
    match stream::start(
        &stream.conn,
        HttpVersion::Http3,
        &parts,
        has_body,
        true,
        None,
    ) {
        Ok(started) => {
            stream.shared = Some(started.shared);
            stream.exchange = Some(started.exchange);
            stream.head_only = started.head_only;
            stream.run().await;
        }
        Err(Early::Status(status, body)) => stream.server_response(status, body).await,
        Err(Early::Static(mount, rest, exchange)) => {
            Box::pin(stream.static_response(&parts, (mount, rest, exchange))).await;
        }
        // No `:protocol` is passed: h3 0.0.8 parses only "webtransport" and
        // "connect-udp" there, so WebSocket over HTTP/3 (RFC 9220) waits on
        // it, and SETTINGS_ENABLE_CONNECT_PROTOCOL is not advertised.
        Err(Early::Refused(_) | Early::WebSocket(_)) => {
            stream.server_response(501, b"Not Implemented").await;
        }
    }
}

type DataResult = Result<Option<Bytes>, h3::error::StreamError>;

/// A chunk of request body if one is already here; None if it would wait.
fn poll_data_now(recv: &mut RecvHalf) -> Option<DataResult> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match recv.poll_recv_data(&mut cx) {
        std::task::Poll::Ready(r) => Some(r.map(|d| d.map(into_bytes))),
        std::task::Poll::Pending => None,
    }
}

/// A request stream being answered.
struct Stream {
    send: SendHalf,
    /// The request body, while more of it may come.
    recv: Option<RecvHalf>,
    /// Body read before the app had the request.
    pending: Option<DataResult>,
    head_sent: bool,
    conn: Arc<StreamConn>,
    quic: quinn::Connection,
    /// Shared with the app (None for a stream the server answers itself).
    shared: Option<Arc<Shared>>,
    exchange: Option<Exchange>,
    head_only: bool,
    /// The response is complete, or the app was told the stream is gone.
    done: bool,
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.done
            && let Some(shared) = &self.shared
        {
            shared.disconnect(&self.conn.ctx.queue);
        }
    }
}

impl Stream {
    fn own_fields(&self) -> Option<&h2_fields::ServerFields> {
        self.conn.ctx.h3.as_ref().map(|h3| &h3.fields)
    }

    /// A response of the server's own, plain text.
    async fn server_response(&mut self, status: u16, body: &'static [u8]) {
        let fields = cormorant_core::http::plain_text_fields(body);
        if self.send_head(status, fields, true).await.is_ok()
            && (body.is_empty() || self.send.send_data(Bytes::from_static(body)).await.is_ok())
        {
            let _ = self.send.finish().await;
        }
        self.done = true;
    }

    async fn static_response(
        &mut self,
        parts: &http::request::Parts,
        route: (usize, Vec<u8>, Exchange),
    ) {
        let Some(own) = self.own_fields() else {
            return;
        };
        let answer = match stream::static_answer(&self.conn, parts, route, own).await {
            Ok(answer) => answer,
            Err((status, body)) => return self.server_response(status, body).await,
        };
        self.done = true;
        let mut head = Response::new(());
        *head.status_mut() = answer.status;
        *head.headers_mut() = answer.headers;
        if self.send.send_response(head).await.is_err() {
            return;
        }
        let sent = match answer.body {
            None => Ok(()),
            Some(StaticBody::Bytes(b)) if b.is_empty() => Ok(()),
            Some(StaticBody::Bytes(b)) => self.send.send_data(b).await.map_err(drop),
            Some(StaticBody::File(f)) => self.send_file(f).await.map(drop),
        };
        match sent {
            Ok(()) => {
                let _ = self.send.finish().await;
            }
            Err(()) => self.send.stop_stream(Code::H3_INTERNAL_ERROR),
        }
    }

    /// Writes a response head, with the server's own fields first if `own`.
    async fn send_head(
        &mut self,
        status: u16,
        fields: Vec<(Bytes, Bytes)>,
        own: bool,
    ) -> Result<(), ()> {
        let headers = stream::header_map(self.own_fields().filter(|_| own), fields)?;
        let mut head = Response::new(());
        *head.status_mut() = StatusCode::from_u16(status).map_err(drop)?;
        *head.headers_mut() = headers;
        self.send.send_response(head).await.map_err(drop)
    }

    /// Writes the app's output and pumps the request body until the
    /// response is complete or the stream is gone.
    async fn run(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        if let Some(first) = self.pending.take() {
            self.push_data(&shared, first);
        }
        loop {
            let (outs, want_body) = stream::take_output(&shared, self.recv.is_some());
            for out in outs {
                match self.apply(&shared, out).await {
                    Ok(false) => {}
                    Ok(true) => return self.finish(),
                    Err(()) => return self.abort(&shared),
                }
            }
            if stream::app_finished(&shared) {
                // The app ended without completing its response.
                if !self.head_sent {
                    let _ = self
                        .apply(&shared, cormorant_core::asgi::internal_error())
                        .await;
                    return self.finish();
                }
                return self.abort(&shared);
            }
            let closed = self.quic.closed();
            let recv = self.recv.as_mut().filter(|_| want_body);
            tokio::select! {
                () = shared.conn_wake.notified() => {}
                data = next_data(recv) => self.push_data(&shared, data),
                _ = closed => {
                    self.done = true;
                    shared.disconnect(&self.conn.ctx.queue);
                    return;
                }
            }
        }
    }

    /// Writes one output; true once the response is complete.
    async fn apply(&mut self, shared: &Arc<Shared>, mut out: Output) -> Result<bool, ()> {
        if let Some(hint) = out.informational.take()
            && !self.head_sent
        {
            // An interim response carries only its own fields.
            self.send_head(hint.status, hint.headers, false).await?;
        }
        let mut file = None;
        if let Some(mut start) = out.start.take() {
            if let Some(path) = out.file.take() {
                match super::file::open_logged(&self.conn.ctx, &path).await {
                    Some(f) => {
                        add_content_length(&mut start.headers, f.len);
                        file = Some(f);
                    }
                    None => {
                        out = cormorant_core::asgi::internal_error();
                        start = out.start.take().unwrap_or(ResponseStart {
                            status: 500,
                            headers: Vec::new(),
                        });
                    }
                }
            }
            if let Some(exchange) = self.exchange.as_mut() {
                exchange.status = start.status;
            }
            if self
                .send_head(start.status, start.headers, true)
                .await
                .is_err()
            {
                self.conn.ctx.log(Level::Error, || {
                    "invalid response header from the application".to_owned()
                });
                return Err(());
            }
            self.head_sent = true;
        }
        let file = file.filter(|_| !self.head_only);
        if !out.body.is_empty() {
            let n = out.body.len();
            self.send.send_data(out.body).await.map_err(drop)?;
            self.sent(shared, n);
        }
        if let Some(f) = file {
            let n = self.send_file(f).await?;
            if let Some(exchange) = self.exchange.as_mut() {
                exchange.sent += n;
            }
        }
        if out.abort {
            return Err(());
        }
        if !out.end {
            return Ok(false);
        }
        if let Some(fields) = out.trailers {
            let map = stream::header_map(None, fields)?;
            self.send.send_trailers(map).await.map_err(drop)?;
        }
        self.send.finish().await.map_err(drop)?;
        Ok(true)
    }

    /// Streams a file as the response body; the bytes sent.
    async fn send_file(&mut self, mut f: BodyFile) -> Result<u64, ()> {
        let mut n = 0;
        while let Some(chunk) = f.next_chunk().await.map_err(drop)? {
            n += chunk.len() as u64;
            self.send.send_data(chunk).await.map_err(drop)?;
        }
        Ok(n)
    }

    /// Body bytes handed to QUIC: counted, and a `send()` waiting for room
    /// is woken.
    fn sent(&mut self, shared: &Arc<Shared>, n: usize) {
        if let Some(exchange) = self.exchange.as_mut() {
            exchange.sent += n as u64;
        }
        shared.written(&self.conn.ctx.queue, n);
    }

    /// The response is complete: metrics and the access line.
    fn finish(&mut self) {
        self.done = true;
        if let Some(exchange) = self.exchange.as_mut() {
            self.conn.finish(exchange);
        }
    }

    /// The response cannot be completed: the stream is reset, so the client
    /// sees it was cut off, and the app hears the stream is gone.
    fn abort(&mut self, shared: &Arc<Shared>) {
        self.send.stop_stream(Code::H3_INTERNAL_ERROR);
        self.done = true;
        shared.disconnect(&self.conn.ctx.queue);
    }

    /// Feeds request body to the app: a chunk, its end, or a reset.
    fn push_data(&mut self, shared: &Arc<Shared>, data: DataResult) {
        let piece = match data {
            Ok(Some(chunk)) => BodyPiece::Data(chunk),
            Ok(None) => BodyPiece::End,
            Err(_) => BodyPiece::Reset,
        };
        let ctx = &self.conn.ctx;
        let mut ended = false;
        shared.update(&ctx.queue, |st| {
            ended = stream::feed_body(st, piece, ctx.metrics.as_ref());
        });
        if ended {
            self.recv = None;
        }
    }
}

/// The next chunk of request body; never, when it is not wanted.
async fn next_data(recv: Option<&mut RecvHalf>) -> DataResult {
    match recv {
        Some(recv) => recv.recv_data().await.map(|d| d.map(into_bytes)),
        None => std::future::pending().await,
    }
}

/// A chunk of body as h3 hands it over, as `Bytes` (no copy when it is
/// one already).
fn into_bytes(mut chunk: impl Buf) -> Bytes {
    chunk.copy_to_bytes(chunk.remaining())
}
