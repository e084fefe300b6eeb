//! One HTTP/1.1 connection: bytes from the socket into `core::h1`, requests
//! to the Python thread, the application's output back to the socket.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use cormorant_core::asgi::{Address, ConnectionInfo, Extensions, HttpScope, HttpStream, Output};
use cormorant_core::h1::{self, BodyKind, ResponseHead};
use cormorant_core::http;
use cormorant_core::server::{self, Event};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::exchange::{Exchange, RequestLine};
use super::file::{BodyFile, add_content_length};
use super::static_files::{StaticBody, StaticRequest};
use super::stream::StreamConn;
use super::transport::{Prefixed, Transport};
use super::{ServerCtx, clock, date};
use crate::config::Level;

mod readiness;
mod websocket;

use crate::handoff::http::{NewRequest, RECV_HIGH_WATER, Shared};
use crate::handoff::queue::{Job, JobQueue};
use crate::tls::TlsInfo;
pub(super) use readiness::{Readiness, Socket};
pub use websocket::WsSettings;
pub(super) use websocket::serve_tunnel;

/// Bytes read from the socket per read call.
pub(super) const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// The I/O thread's read buffer, shared by all its connections: a read
    /// fills it and core copies the bytes out within the same poll, so a
    /// connection holds no read buffer while it waits (idle keep-alive,
    /// long-lived streams).
    static READ_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}
/// Pipelined bytes read ahead while a response is pending; past this the
/// connection stops reading until the response is done.
const PIPELINE_READ_AHEAD: usize = 64 * 1024;
/// After closing our side with request bytes possibly unread, how long we
/// keep reading (and discarding) so the client can finish sending and read
/// the response before we close: closing with unread input sends RST, which
/// can destroy a response the client has not read yet (RFC 9112 §9.6).
const LINGER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Most bytes discarded while lingering.
const LINGER_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Who is on the other end.
pub struct PeerInfo {
    client: Option<Address>,
    /// The peer's IP address (None on a Unix socket).
    ip: Option<std::net::IpAddr>,
    server: Option<Address>,
    pub unix: bool,
    /// What the TLS handshake established, on a TLS connection.
    pub tls: Option<Arc<TlsInfo>>,
    /// The addresses came from a PROXY protocol header of a trusted peer.
    pub proxied: bool,
}

impl PeerInfo {
    pub fn with_tls(mut self, tls: Arc<TlsInfo>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// `host:port` of the client for the access log, or "" when it is off.
    pub fn label(&self, access_log: bool) -> String {
        match (access_log, &self.client) {
            (true, Some(c)) => format!("{}:{}", c.host, c.port),
            (true, None) => "-".to_owned(),
            (false, _) => String::new(),
        }
    }

    /// Whether the peer's proxy headers are believed. A Unix-socket peer
    /// is a local process: trusted when the allow-list trusts loopback.
    pub fn trusted_proxy(&self, ctx: &ServerCtx) -> bool {
        ctx.proxies.as_ref().is_some_and(|p| match self.ip {
            Some(ip) => p.is_trusted(ip),
            None => p.trusts_local(),
        })
    }

    /// What the scope of each request on this connection says about it.
    pub fn connection_info(&self, scheme: &'static str, root_path: &str) -> ConnectionInfo {
        ConnectionInfo {
            scheme,
            client: self.client.clone(),
            server: self.server.clone(),
            root_path: root_path.to_owned(),
        }
    }

    pub fn tcp(peer: SocketAddr, server: Option<SocketAddr>) -> Self {
        let addr = |a: SocketAddr| Address {
            host: a.ip().to_string().into(),
            port: a.port(),
        };
        Self {
            client: Some(addr(peer)),
            ip: Some(peer.ip()),
            server: server.map(addr),
            unix: false,
            tls: None,
            proxied: false,
        }
    }

    /// The peer as a PROXY protocol header names it: the client, and the
    /// address it connected to, in place of the load balancer's.
    pub fn proxied(self, client: SocketAddr, server: SocketAddr) -> Self {
        Self {
            tls: self.tls,
            proxied: true,
            ..Self::tcp(client, Some(server))
        }
    }

    /// The peer's IP address (None on a Unix socket).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.ip
    }

    pub fn unix(path: &str) -> Self {
        Self {
            client: None,
            ip: None,
            server: Some(Address {
                host: path.into(),
                port: 0,
            }),
            unix: true,
            tls: None,
            proxied: false,
        }
    }
}

/// What became of one piece of the application's output.
enum Applied {
    /// More is to come.
    More,
    /// The response is complete.
    End,
    /// The response cannot be completed.
    Abort,
}

/// Where [`Conn::admit_request`] sends a request.
enum Admitted {
    /// To the app, handed over.
    App(HandedOver),
    /// To an answer the server makes itself.
    Server(ByServer),
}

/// A request the server answers itself.
enum ByServer {
    /// The health path: its status and body.
    Health {
        head: h1::RequestHead,
        status: u16,
        body: &'static [u8],
    },
    /// Over `--limit-concurrency`: a 503.
    Overloaded,
    /// Under a static route.
    Static {
        head: h1::RequestHead,
        exchange: Exchange,
    },
    /// A WebSocket upgrade.
    WebSocket {
        head: h1::RequestHead,
        exchange: Exchange,
    },
    /// No scope can describe it: a 400.
    BadRequest,
}

/// A request handed to the app, for its exchange.
struct HandedOver {
    shared: Arc<Shared>,
    exchange: Exchange,
    /// The request body is complete (or there is none).
    body_done: bool,
    expect_continue: bool,
}

/// What became of a request.
enum Next {
    /// Serve the next request on this connection.
    KeepAlive,
    /// Close the connection after flushing.
    Close,
}

struct Conn<S> {
    io: S,
    /// Core's connection: every protocol rule and timer.
    conn: server::Connection,
    ctx: Arc<ServerCtx>,
    info: ConnectionInfo,
    unix: bool,
    tls: Option<Arc<TlsInfo>>,
    /// The peer is a trusted proxy (`--forwarded-allow-ips`).
    trusted_proxy: bool,
    wbufs: Vec<Bytes>,
    eof: bool,
    /// `host:port` of the client, for the access log (empty when it is off).
    client_label: String,
    /// The connection closes with request bytes possibly unread: close
    /// gently (see [`LINGER_TIMEOUT`]).
    linger: bool,
    /// The connection opened with the HTTP/2 preface: hand it to HTTP/2.
    http2: bool,
    /// The peer is trusted with an `X-Request-ID`: a trusted proxy, or the
    /// connection came with a PROXY protocol header.
    trusted_ids: bool,
    /// When the bytes of the next request's head began to arrive (only
    /// when [`ServerCtx::tracks_arrival`]).
    head_began: Option<std::time::Instant>,
    /// The second of the `Date` core was last given.
    date_secs: u64,
}

/// Serves one connection until it closes.
pub(super) async fn serve<S: Transport>(
    io: S,
    peer: PeerInfo,
    scheme: &'static str,
    ctx: Arc<ServerCtx>,
) {
    let c = Conn::new(io, &peer, scheme, ctx);
    serve_from(c, peer, None).await;
}

/// Where the async driver takes over a connection that the readiness
/// driver began (see [`readiness`]).
enum Resume {
    /// In the exchange of a request handed to the app.
    Exchange(HandedOver),
    /// At a request the server answers itself.
    Served(ByServer),
    /// After the connection's HTTP/1.1 life: its output written, then the
    /// HTTP/2 driver (after the preface) or the close.
    Ended,
}

/// Serves `c` until it closes, from `resume` (from the start when None).
async fn serve_from<S: Transport>(mut c: Conn<S>, peer: PeerInfo, resume: Option<Resume>) {
    let scheme = c.info.scheme;
    let ctx = c.ctx.clone();
    c.run(resume).await;
    if c.http2 {
        let buffered = c.conn.take_buffered();
        // Boxed: the HTTP/2 driver's state would otherwise size every
        // HTTP/1.1 connection's task.
        return Box::pin(super::h2::serve(
            Prefixed::new(buffered, c.io),
            peer,
            scheme,
            ctx,
        ))
        .await;
    }
    let _ = c.flush().await;
    let _ = c.io.shutdown().await;
    if c.linger && !c.eof {
        linger(&mut c.io).await;
    }
}

impl<S> Conn<S> {
    /// A connection from its first byte.
    fn new(io: S, peer: &PeerInfo, scheme: &'static str, ctx: Arc<ServerCtx>) -> Self {
        let trusted_proxy = peer.trusted_proxy(&ctx);
        let mut config = ctx.conn.clone();
        // Cleartext with `--http auto`: h2c with prior knowledge is core's
        // Http2Preface event (over TLS, ALPN chose already).
        config.detect_http2 =
            ctx.http == super::HttpVersions::Auto && ctx.h2.is_some() && peer.tls.is_none();
        Self {
            io,
            conn: server::Connection::new(config, clock::now()),
            info: peer.connection_info(scheme, &ctx.root_path),
            unix: peer.unix,
            tls: peer.tls.clone(),
            trusted_proxy,
            wbufs: Vec::new(),
            eof: false,
            client_label: peer.label(ctx.access_log.is_some()),
            linger: false,
            http2: false,
            trusted_ids: trusted_proxy || peer.proxied,
            head_began: None,
            date_secs: 0,
            ctx,
        }
    }

    /// The bytes of an HTTP/2 or HTTP/3 stream that carries a WebSocket
    /// (see [`super::tunnel`]), with core's connection for them, already in
    /// WebSocket.
    fn tunnel(io: S, conn: server::Connection, stream: &StreamConn) -> Self {
        Self {
            io,
            conn,
            ctx: stream.ctx.clone(),
            info: stream.info.clone(),
            unix: stream.unix,
            tls: stream.tls.clone(),
            trusted_proxy: stream.trusted_proxy,
            wbufs: Vec::new(),
            eof: false,
            client_label: stream.client_label.clone(),
            linger: false,
            http2: false,
            trusted_ids: stream.trusted_ids,
            head_began: None,
            date_secs: 0,
        }
    }

    /// Its socket, and the connection without it (the readiness driver's
    /// socket goes to tokio).
    fn take_io(self) -> (S, Conn<()>) {
        let (c, io) = self.map_io(|io| ((), io));
        (io, c)
    }

    /// The same connection over what `f` makes of its socket, and what else
    /// `f` returns.
    fn map_io<T, R>(self, f: impl FnOnce(S) -> (T, R)) -> (Conn<T>, R) {
        let (io, r) = f(self.io);
        let c = Conn {
            io,
            conn: self.conn,
            ctx: self.ctx,
            info: self.info,
            unix: self.unix,
            tls: self.tls,
            trusted_proxy: self.trusted_proxy,
            wbufs: self.wbufs,
            eof: self.eof,
            client_label: self.client_label,
            linger: self.linger,
            http2: self.http2,
            trusted_ids: self.trusted_ids,
            head_began: self.head_began,
            date_secs: self.date_secs,
        };
        (c, r)
    }
}

impl Conn<()> {
    /// The connection over `io`.
    fn with_io<T>(self, io: T) -> Conn<T> {
        self.map_io(|()| (io, ())).0
    }
}

/// What a connection decides without waiting on its socket: shared by the
/// async driver below and the readiness-driven one.
impl<S> Conn<S> {
    /// The HTTP/1.1 side of the connection, for responses.
    fn h1(&mut self) -> &mut h1::Connection {
        self.conn.http()
    }

    /// When core's earliest timer is due, on tokio's clock; None when no
    /// timer runs (then the wait has no sleep).
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        self.conn.poll_timeout().map(clock::deadline)
    }

    /// Gives core the `Date` of the responses to come when the second has
    /// changed since it was last given (as core asks: once a second, not a
    /// copy for every response).
    fn refresh_date(&mut self) {
        let secs = date::now_secs();
        if secs != self.date_secs {
            self.date_secs = secs;
            let d = date::http_date_at(secs);
            self.h1().set_date(d);
        }
    }

    /// Core's timer fired: it decides what that means (408 for a late head
    /// or body, a silent close when idle, a ping...).
    fn fire_timer(&mut self) {
        self.fire_timer_at(clock::now());
    }

    /// Core's timer fired at `now`.
    fn fire_timer_at(&mut self, now: cormorant_core::time::Instant) {
        self.refresh_date();
        self.conn.handle_timeout(now);
    }

    /// The scope of a request, with the proxy headers of a trusted peer
    /// applied, and whether they changed the client; None for a request
    /// no scope can describe (core's 400).
    fn scope_of(&self, head: h1::RequestHead) -> Option<(HttpScope, bool)> {
        let mut scope = HttpScope::new(
            head.version.into(),
            &head.method,
            &head.target,
            head.headers,
            &self.info,
        )
        .ok()?;
        let forwarded = self.ctx.apply_proxy_headers(self.trusted_proxy, &mut scope);
        Some((scope, forwarded))
    }

    /// Before a response the server makes itself: steps past the end of
    /// a request without a body; one with a body is not read, so the
    /// connection closes after the response (gently).
    fn skip_request_body(&mut self, head: &h1::RequestHead) {
        if head.body == BodyKind::Empty {
            while let Event::Http(h1::Event::BodyChunk(_)) = self.conn.poll_event(clock::now()) {}
        } else {
            self.h1().close_after_response();
            self.linger = true;
        }
    }

    /// After a response the server made itself: the next request on this
    /// connection, when it may be reused.
    fn next_cycle(&mut self) -> Next {
        if self.eof || !self.h1().is_keep_alive() {
            return Next::Close;
        }
        match self.conn.start_next_cycle(clock::now()) {
            Ok(()) => Next::KeepAlive,
            Err(_) => Next::Close,
        }
    }

    /// Decides where a request goes, in order: the health path (before
    /// admission), admission (503 over `--limit-concurrency`), a static
    /// route, a WebSocket upgrade, else the app. Not async: the request
    /// served by the app, the common case, then awaits its exchange alone,
    /// and the state of the rare paths never sizes its future.
    fn admit_request(&mut self, ctx: &Arc<ServerCtx>, head: h1::RequestHead) -> Admitted {
        if let Some((status, body)) = ctx.health_status(&head.target) {
            return Admitted::Server(ByServer::Health { head, status, body });
        }
        let line = RequestLine {
            method: &head.method,
            target: &head.target,
            version: head.version.into(),
            headers: &head.headers,
        };
        let Ok(exchange) = Exchange::admit(ctx, line) else {
            return Admitted::Server(ByServer::Overloaded);
        };
        if ctx.is_shutting_down() {
            self.h1().close_after_response();
        }
        if ctx
            .statics
            .as_ref()
            .is_some_and(|s| s.route(&head.target).is_some())
        {
            return Admitted::Server(ByServer::Static { head, exchange });
        }
        if ctx.ws.is_some() && head.upgrade.as_deref() == Some(b"websocket") {
            return Admitted::Server(ByServer::WebSocket { head, exchange });
        }
        match self.hand_over(ctx, head, exchange) {
            Some(h) => Admitted::App(h),
            None => Admitted::Server(ByServer::BadRequest),
        }
    }

    /// Makes the request's scope and stream and hands them to the app; None
    /// for a request no scope can describe (core's 400).
    fn hand_over(
        &mut self,
        ctx: &ServerCtx,
        head: h1::RequestHead,
        mut exchange: Exchange,
    ) -> Option<HandedOver> {
        let has_body = head.body != BodyKind::Empty;
        let expect_continue = head.expect_continue;
        let head_only = head.method.as_ref() == b"HEAD";
        let extensions = Extensions::for_request(head.version.into(), &head.headers, true);
        let arrived = ctx.tracks_arrival().then(|| {
            self.head_began
                .take()
                .unwrap_or_else(std::time::Instant::now)
        });
        let (mut scope, forwarded) = self.scope_of(head)?;
        if forwarded {
            exchange.forwarded(scope.client.as_ref());
        }
        let request_id = ctx.annotate(&mut scope, self.trusted_ids, arrived);
        let shared = exchange.share(
            HttpStream::new(has_body, head_only).with_extensions(extensions),
            request_id.as_ref(),
        );
        let mut body_done = !has_body;
        if has_body && !expect_continue {
            // Hand over whatever body came with the head in the same crossing.
            let mut st = shared.lock();
            body_done = self.pump_body(&mut st);
        }
        ctx.queue.push(Job::Request(Box::new(NewRequest {
            scope,
            unix: self.unix,
            tls: self.tls.clone(),
            shared: shared.clone(),
            extensions,
            request_id,
            arrived,
        })));
        Some(HandedOver {
            shared,
            exchange,
            body_done,
            expect_continue,
        })
    }

    /// Writes one piece of the application's output through core: an
    /// informational response, the head, body bytes, the end. Output that
    /// sends a file goes to [`apply_file_output`](Self::apply_file_output)
    /// instead: this common path has nothing to wait for, so it is not a
    /// future to build and move for every piece.
    fn apply_output(&mut self, out: Output, exchange: &mut Exchange, body_done: bool) -> Applied {
        match self.apply_head(out, exchange, body_done, None) {
            Some(out) => self.apply_end(&out),
            None => Applied::Abort,
        }
    }

    /// The informational response, the head (with the `content-length` of
    /// a file of `file_len` bytes to follow) and the body bytes of `out`;
    /// what is left of it for [`apply_end`](Self::apply_end), or None when
    /// the response cannot be completed.
    fn apply_head(
        &mut self,
        mut out: Output,
        exchange: &mut Exchange,
        body_done: bool,
        file_len: Option<u64>,
    ) -> Option<Output> {
        exchange.sent += out.body.len() as u64;
        if let Some(hint) = out.informational.take() {
            let head = ResponseHead {
                status: hint.status,
                headers: hint.headers,
            };
            self.h1().send_informational(head).ok()?;
        }
        if let Some(mut start) = out.start.take() {
            if let Some(len) = file_len {
                add_content_length(&mut start.headers, len);
            }
            exchange.status = start.status;
            if !body_done {
                // The app answers before the whole request body arrived (or
                // without asking for it after `Expect: 100-continue`): the
                // connection cannot be reused safely, so say so in this
                // response.
                self.h1().close_after_response();
            }
            self.refresh_date();
            let head = ResponseHead {
                status: start.status,
                headers: start.headers,
            };
            self.h1().send_response(head).ok()?;
        }
        let body = std::mem::take(&mut out.body);
        if !body.is_empty() {
            self.h1().send_body(body).ok()?;
        }
        Some(out)
    }

    /// The end of `out`: its trailers or the last chunk, and whether the
    /// response is now complete.
    fn apply_end(&mut self, out: &Output) -> Applied {
        let mut applied = Applied::More;
        if out.end {
            let ended = match &out.trailers {
                Some(fields) => self.h1().send_trailers(fields),
                None => self.h1().send_end(),
            };
            if ended.is_err() {
                return Applied::Abort;
            }
            applied = Applied::End;
        }
        if out.abort {
            return Applied::Abort;
        }
        applied
    }

    /// Moves parsed body events into the stream. Returns whether the body is
    /// complete.
    fn pump_body(&mut self, st: &mut crate::handoff::http::StreamState) -> bool {
        let now = clock::now();
        loop {
            match self.conn.poll_event(now) {
                Event::Http(h1::Event::BodyChunk(b)) => {
                    if let Some(slot) = &self.ctx.metrics {
                        slot.received(b.len() as u64);
                    }
                    st.push_body(b, true)
                }
                Event::Http(h1::Event::EndOfMessage) => {
                    st.push_body(Bytes::new(), false);
                    return true;
                }
                Event::Http(h1::Event::NeedData | h1::Event::Paused) => return false,
                _ => {
                    // Error or Closed in the middle of a body.
                    st.stream.handle_disconnect();
                    self.eof = true;
                    return true;
                }
            }
        }
    }

    /// Acknowledges body bytes now written; wakes a `send()` waiting for
    /// room.
    fn written(&mut self, shared: &Arc<Shared>, n: usize) {
        shared.written(&self.ctx.queue, n);
    }

    fn disconnect(&mut self, shared: &Arc<Shared>) {
        shared.disconnect(&self.ctx.queue);
    }
}

impl<S: Transport> Conn<S> {
    async fn run(&mut self, resume: Option<Resume>) {
        let mut stop = self.ctx.shutdown.subscribe();
        let mut stopping = false;
        if self.ctx.is_shutting_down() {
            stopping = true;
            self.conn.shutdown(clock::now());
        }
        // One wait for the stop for the connection's life, not one per
        // request. A request in progress looks at the flag instead (see
        // `exchange_with_app`).
        let stopped = super::stopping(&mut stop);
        tokio::pin!(stopped);
        let mut stop_poll = super::StopPoll::default();
        let ctx = self.ctx.clone();
        // One timer for the connection's life, moved only when core's next
        // deadline moves (a head trickling in keeps its deadline).
        let timer = tokio::time::sleep_until(clock::never());
        tokio::pin!(timer);
        let next = match resume {
            None => Next::KeepAlive,
            Some(Resume::Exchange(h)) => Box::pin(self.exchange_with_app(&ctx, h)).await,
            Some(Resume::Served(by)) => Box::pin(self.serve_by_server(by)).await,
            Some(Resume::Ended) => Next::Close,
        };
        if let Next::Close = next {
            return;
        }
        loop {
            match self.conn.poll_event(clock::now()) {
                Event::Http(h1::Event::NeedData) => {
                    if self.eof {
                        return;
                    }
                    let deadline = self.next_deadline();
                    let timed = deadline.is_some();
                    // Moved only to an earlier deadline: a later one (the
                    // keep-alive deadline after each request) lets the timer
                    // fire early once, core finds nothing due, and the wait
                    // after that sets it. Resetting per request costs more.
                    if let Some(at) = deadline
                        && (at < timer.deadline() || timer.is_elapsed())
                    {
                        timer.as_mut().reset(at);
                    }
                    // biased: the branches in this order, without drawing a
                    // random start per wait. The stop first (see StopPoll),
                    // then the timer, so that bytes always ready cannot
                    // starve them.
                    tokio::select! {
                        biased;
                        () = stop_poll.wait(&ctx, stopped.as_mut()), if !stopping => {
                            stopping = true;
                            self.conn.shutdown(clock::now());
                        }
                        () = &mut timer, if timed => self.fire_timer(),
                        r = self.read() => match r {
                            Err(()) => return,
                            Ok(n) => {
                                if n > 0 && self.head_began.is_none() && self.ctx.tracks_arrival() {
                                    self.head_began = Some(std::time::Instant::now());
                                }
                            }
                        },
                    }
                }
                // Boxed: a request's state exists only while it is served,
                // not for the connection's whole life.
                Event::Http(h1::Event::RequestHead(head)) => {
                    if let Next::Close = self.serve_request(&ctx, head).await {
                        return;
                    }
                }
                Event::Http2Preface => {
                    self.http2 = true;
                    return;
                }
                Event::Http(h1::Event::Error(_)) => {
                    // core queued the error response, if one can be sent
                    // (written before the close).
                    self.linger = true;
                    return;
                }
                // Closed, or an event that cannot happen between requests.
                _ => return,
            }
        }
    }

    /// Serves one request from its head.
    async fn serve_request(&mut self, ctx: &Arc<ServerCtx>, head: h1::RequestHead) -> Next {
        match self.admit_request(ctx, head) {
            Admitted::App(h) => Box::pin(self.exchange_with_app(ctx, h)).await,
            Admitted::Server(by) => Box::pin(self.serve_by_server(by)).await,
        }
    }

    /// Reads once; the bytes that arrived (handed to core), 0 at EOF.
    async fn read(&mut self) -> Result<usize, ()> {
        std::future::poll_fn(|cx| self.poll_read(cx)).await
    }

    /// One read into the thread's buffer, handed to core at once.
    fn poll_read(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<usize, ()>> {
        READ_BUF.with_borrow_mut(|buf| {
            let mut rb = ReadBuf::new(buf);
            match std::pin::Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    self.eof = true;
                    self.conn.handle_eof();
                    Poll::Ready(Ok(0))
                }
                Poll::Ready(Ok(())) => {
                    self.conn.handle_bytes(clock::now(), rb.filled());
                    Poll::Ready(Ok(rb.filled().len()))
                }
                Poll::Ready(Err(_)) => {
                    self.eof = true;
                    Poll::Ready(Err(()))
                }
            }
        })
    }

    /// Reads once if bytes (or EOF) are ready now, without waiting.
    fn read_now(&mut self) -> Option<Result<usize, ()>> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match self.poll_read(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    async fn flush(&mut self) -> std::io::Result<usize> {
        if !self.wbufs.is_empty() {
            // Left by the readiness driver, which could not write it all.
            write_all(&mut self.io, &mut self.wbufs).await?;
        }
        if !self.conn.has_transmit() {
            return Ok(0);
        }
        self.wbufs.clear();
        self.conn.poll_transmit(&mut self.wbufs);
        let total: usize = self.wbufs.iter().map(Bytes::len).sum();
        write_all(&mut self.io, &mut self.wbufs).await?;
        Ok(total)
    }

    /// Writes a complete response made by the server itself (503, 400...).
    async fn simple_response(&mut self, status: u16, body: &'static [u8]) -> Next {
        self.refresh_date();
        self.h1().close_after_response();
        let headers = http::plain_text_fields(body);
        if self
            .h1()
            .send_response(ResponseHead { status, headers })
            .is_ok()
            && self.h1().send_body(Bytes::from_static(body)).is_ok()
        {
            let _ = self.h1().send_end();
        }
        let _ = self.flush().await;
        self.linger = true;
        Next::Close
    }

    /// Answers `--health-path` without the app, outside admission and the
    /// request count; the connection stays open when the request has no
    /// body and the server is not stopping.
    async fn health_response(
        &mut self,
        head: &h1::RequestHead,
        status: u16,
        body: &'static [u8],
    ) -> Next {
        self.skip_request_body(head);
        if self.ctx.is_shutting_down() {
            self.h1().close_after_response();
        }
        self.refresh_date();
        let head_out = ResponseHead {
            status,
            headers: http::plain_text_fields(body),
        };
        if self.h1().send_response(head_out).is_err()
            || self.h1().send_body(Bytes::from_static(body)).is_err()
            || self.h1().send_end().is_err()
            || self.flush().await.is_err()
        {
            self.linger = true;
            return Next::Close;
        }
        self.next_cycle()
    }

    /// Answers a request the server serves itself.
    async fn serve_by_server(&mut self, by: ByServer) -> Next {
        match by {
            ByServer::Health { head, status, body } => {
                self.health_response(&head, status, body).await
            }
            ByServer::Overloaded => self.simple_response(503, b"Service Unavailable").await,
            ByServer::Static { head, exchange } => self.serve_static(&head, exchange).await,
            ByServer::WebSocket { head, exchange } => {
                let ctx = self.ctx.clone();
                match ctx.ws.as_ref() {
                    Some(settings) => self.serve_websocket(head, settings, exchange).await,
                    None => Next::Close,
                }
            }
            ByServer::BadRequest => self.simple_response(400, b"Bad Request").await,
        }
    }

    /// Runs one request's exchange with the application until the response
    /// is complete or cannot be: its output to the socket, body bytes to
    /// it, and what the socket says (EOF, a timer) back.
    async fn exchange_with_app(&mut self, ctx: &ServerCtx, handed: HandedOver) -> Next {
        let HandedOver {
            ref shared,
            mut exchange,
            mut body_done,
            expect_continue,
        } = handed;
        let mut read_ahead = 0usize;
        let mut finished = false;
        let mut stop_seen = false;
        loop {
            // A stop during the exchange: core closes after this response
            // (it was told at admission if the stop came first).
            if !stop_seen && ctx.is_shutting_down() {
                stop_seen = true;
                self.conn.shutdown(clock::now());
            }
            // 1. Apply the application's output, in order.
            let (outs, want_read, app_done) = {
                let mut st = shared.lock();
                let outs = st.take_output();
                let app_done = st.stream.is_finished();
                let want_body = !body_done
                    && st.stream.wants_body()
                    && st.stream.buffered() < RECV_HIGH_WATER
                    && (!expect_continue || st.body_requested);
                (outs, want_body, app_done)
            };
            // Body bytes taken from the app in this round, acknowledged to
            // `send()` once written (not the wire bytes, which add framing).
            let mut taken = 0usize;
            for out in outs {
                taken += out.body.len();
                let applied = if out.file.is_some() {
                    // Boxed: a file's state would grow every request's.
                    Box::pin(self.apply_file_output(out, &mut exchange, body_done)).await
                } else {
                    self.apply_output(out, &mut exchange, body_done)
                };
                match applied {
                    Applied::More => {}
                    Applied::End => finished = true,
                    Applied::Abort => return self.abort(shared).await,
                }
            }
            if app_done && !finished {
                // The stream ended without a complete response: the app
                // returned after the client left, so nothing is owed.
                return self.abort(shared).await;
            }
            // 2. Write it.
            if self.conn.has_transmit() {
                match self.flush().await {
                    Ok(_) => self.written(shared, taken),
                    Err(_) => {
                        self.disconnect(shared);
                        return Next::Close;
                    }
                }
            }
            if finished {
                exchange.finish(&self.client_label, self.info.scheme);
                break;
            }
            if want_read {
                // Body bytes may already be buffered in `h1`: they came with
                // the head of a 100-continue request the app had not read yet.
                let mut progressed = false;
                shared.update(&ctx.queue, |st| {
                    let before = st.stream.buffered();
                    body_done = self.pump_body(st);
                    progressed = body_done || st.stream.buffered() != before;
                });
                // Core queues `100 Continue` when the body is asked for.
                if progressed || self.conn.has_transmit() {
                    continue;
                }
            }
            // 3. Wait for the app, or for the socket when we want body bytes
            //    or need to notice the client leaving.
            let read_enabled =
                !self.eof && (want_read || (body_done && read_ahead < PIPELINE_READ_AHEAD));
            if let Some(read) = self.wait_app_or_peer(shared, want_read, read_enabled).await {
                if body_done {
                    read_ahead += read;
                }
                body_done = self.take_input(shared, &ctx.queue, body_done);
                if self.eof {
                    // The client is gone: nothing the app sends can be
                    // delivered; its next send() raises ClientDisconnected.
                    // (After a malformed body, core may have queued a 400.)
                    let _ = self.flush().await;
                    return Next::Close;
                }
            }
        }
        if !body_done {
            self.linger = true;
        }
        if self.eof || !self.h1().is_keep_alive() || ctx.is_shutting_down() {
            return Next::Close;
        }
        match self.conn.start_next_cycle(clock::now()) {
            Ok(()) => Next::KeepAlive,
            Err(_) => Next::Close,
        }
    }

    /// [`apply_output`](Self::apply_output) for output that sends a file
    /// (`http.response.pathsend`): the file is opened first, so that a
    /// file that cannot be opened still gets a 500 when nothing was sent.
    async fn apply_file_output(
        &mut self,
        mut out: Output,
        exchange: &mut Exchange,
        body_done: bool,
    ) -> Applied {
        let file = match out.file.take() {
            None => None,
            Some(path) => match BodyFile::open(&path).await {
                Ok(f) => Some(f),
                Err(e) => {
                    self.ctx.log(Level::Error, || {
                        format!("cannot send {path:?} (http.response.pathsend): {e}")
                    });
                    if out.start.is_none() {
                        return Applied::Abort;
                    }
                    // Nothing was written yet: the client gets a 500 (after
                    // an early hint the app sent with it).
                    let hint = out.informational.take();
                    out = cormorant_core::asgi::internal_error();
                    out.informational = hint;
                    None
                }
            },
        };
        let len = file.as_ref().map(|f| f.len);
        let Some(out) = self.apply_head(out, exchange, body_done, len) else {
            return Applied::Abort;
        };
        if let Some(f) = file {
            exchange.sent += f.len;
            if self.send_file(f).await.is_err() {
                return Applied::Abort;
            }
        }
        self.apply_end(&out)
    }

    /// Waits for the application's next output, or (when `read_enabled`)
    /// for bytes or EOF from the socket, or for core's timer. A stop needs
    /// no wake-up here: it changes nothing until the app's next output.
    /// Returns the bytes read when the socket or a timer gave input to look
    /// at (0 for a timer, EOF or an error), None otherwise.
    async fn wait_app_or_peer(
        &mut self,
        shared: &Arc<Shared>,
        want_read: bool,
        read_enabled: bool,
    ) -> Option<usize> {
        // Body bytes are awaited only while the app wants them: core's body
        // idle timer blames the peer for nothing else.
        self.conn.set_reading(clock::now(), want_read);
        let deadline = self.next_deadline();
        let timed = deadline.is_some();
        // Made only if polled: most waits have no deadline.
        let timer = async move {
            if let Some(at) = deadline {
                tokio::time::sleep_until(at).await;
            }
        };
        // biased: in this order, without a random start per wait. The timer
        // (rarely armed here) first, so that neither the app's output nor
        // bytes always ready can starve it.
        tokio::select! {
            biased;
            () = timer, if timed => {
                self.fire_timer();
                Some(0)
            }
            () = shared.conn_wake.notified() => None,
            r = self.read(), if read_enabled => Some(r.unwrap_or(0)),
        }
    }

    /// After input from the socket: body bytes into the stream (with
    /// whatever else the socket already holds, so the app gets the body in
    /// few large messages), a disconnect noted, the app woken if it waits.
    /// Returns whether the body is complete.
    fn take_input(&mut self, shared: &Arc<Shared>, queue: &JobQueue, mut body_done: bool) -> bool {
        shared.update(queue, |st| {
            if !body_done {
                body_done = self.pump_body(st);
                while !body_done && !self.eof && st.stream.buffered() < RECV_HIGH_WATER {
                    match self.read_now() {
                        Some(Ok(_)) => body_done = self.pump_body(st),
                        Some(Err(())) | None => break,
                    }
                }
            }
            if self.eof && !st.stream.is_finished() {
                st.stream.handle_disconnect();
            }
        });
        body_done
    }

    /// Answers a request under a static route (`--static-path-route`)
    /// without the application.
    async fn serve_static(&mut self, head: &h1::RequestHead, mut exchange: Exchange) -> Next {
        let ctx = self.ctx.clone();
        let Some(statics) = ctx.statics.as_ref() else {
            return Next::Close;
        };
        let Some((mount, rest)) = statics.route(&head.target) else {
            return Next::Close;
        };
        let req = StaticRequest::from_fields(&head.method, &head.headers);
        let resp = statics.respond(mount, rest, &req).await;
        self.skip_request_body(head);
        self.refresh_date();
        exchange.status = resp.status;
        let head_out = ResponseHead {
            status: resp.status,
            headers: resp.headers,
        };
        if self.h1().send_response(head_out).is_err() {
            self.linger = true;
            return Next::Close;
        }
        let (sent, ok) = match resp.body {
            StaticBody::Bytes(b) => (
                b.len() as u64,
                b.is_empty() || self.h1().send_body(b).is_ok(),
            ),
            StaticBody::File(f) => (f.len, self.send_file(f).await.is_ok()),
        };
        if !ok || self.h1().send_end().is_err() || self.flush().await.is_err() {
            self.linger = true;
            return Next::Close;
        }
        exchange.sent = sent;
        exchange.finish(&self.client_label, self.info.scheme);
        self.next_cycle()
    }

    /// Writes the body from a file: with sendfile when the body has a
    /// length and the transport allows it, else in bounded chunks.
    async fn send_file(&mut self, mut f: BodyFile) -> Result<(), ()> {
        if self.h1().body_is_empty() {
            return Ok(());
        }
        if self.h1().body_is_length_framed() && self.io.can_sendfile() {
            self.h1().send_body_external(f.len).map_err(drop)?;
            self.flush().await.map_err(drop)?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&f.file);
            let mut offset = f.offset as i64;
            let end = f.offset + f.len;
            while (offset as u64) < end {
                let left = (end - offset as u64).min(1 << 30) as usize;
                match self.io.sendfile(fd, &mut offset, left).await {
                    // The file shrank: the response cannot be completed.
                    Ok(0) | Err(_) => return Err(()),
                    Ok(_) => {}
                }
            }
            return Ok(());
        }
        while let Some(chunk) = f.next_chunk().await.map_err(drop)? {
            self.h1().send_body(chunk).map_err(drop)?;
            self.flush().await.map_err(drop)?;
        }
        Ok(())
    }

    /// The response cannot be completed: close without finishing it, so the
    /// client sees a truncated message rather than a wrong one.
    async fn abort(&mut self, shared: &Arc<Shared>) -> Next {
        // Whatever part of the response is queued still goes out first.
        let _ = self.flush().await;
        self.disconnect(shared);
        self.linger = true;
        Next::Close
    }
}

/// Reads and discards what the client still sends after our FIN, until it
/// closes, [`LINGER_TIMEOUT`] passes or [`LINGER_MAX_BYTES`] arrive: closing
/// with bytes unread would reset the connection, and the client could lose
/// the answer it was sent.
pub(super) async fn linger<S: AsyncRead + Unpin>(io: &mut S) {
    let deadline = tokio::time::Instant::now() + LINGER_TIMEOUT;
    let mut discarded = 0;
    let mut buf = vec![0; 4096]; // on the heap: this runs rarely, its task lives long
    while discarded < LINGER_MAX_BYTES {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => return,
        }
    }
}

async fn write_all<S: AsyncWrite + Unpin>(
    io: &mut S,
    bufs: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let mut start = 0;
    while start < bufs.len() {
        let n = if bufs.len() - start == 1 {
            io.write(&bufs[start]).await?
        } else {
            let slices: Vec<IoSlice<'_>> = bufs[start..].iter().map(|b| IoSlice::new(b)).collect();
            io.write_vectored(&slices).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let mut left = n;
        while left > 0 && start < bufs.len() {
            let len = bufs[start].len();
            if left >= len {
                left -= len;
                start += 1;
            } else {
                let _ = bufs[start].split_to(left);
                left = 0;
            }
        }
        while start < bufs.len() && bufs[start].is_empty() {
            start += 1;
        }
    }
    bufs.clear();
    // What TLS holds of it (records the socket had no room for) goes out
    // now, not with the next write; a no-op on a plain socket.
    io.flush().await
}
