//! The I/O side of a worker: a tokio runtime on its own thread that accepts
//! connections and drives `core::h1` over them. It never touches Python; it
//! hands requests to the Python thread through the [`JobQueue`].

pub mod access_log;
mod clock;
mod coalesce;
mod conn;
pub mod driven;
mod exchange;
pub use conn::WsSettings;
pub mod date;
mod file;
pub mod h2;
pub mod h3;
pub mod listener;
mod proxy_header;
pub mod request_meta;
pub mod static_files;
mod stream;
mod tls;
mod tls_io;
mod transport;
mod tunnel;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use cormorant_core::asgi::h2_fields::ServerFields;
use cormorant_core::server::{self, Timeouts};
use cormorant_core::{h1, ws};
use tokio::sync::{Notify, watch};

use bytes::Bytes;

use crate::config::{HttpVersions, Level, ServerConfig};
use crate::handoff::queue::{ConnWake, ConnWakes, Job, JobQueue};
use h2::H2Settings;
use listener::Listener;

/// Settings and counters shared by every connection of a worker.
pub struct ServerCtx {
    /// Limits and timeouts of each HTTP/1.1 (and WebSocket) connection;
    /// core's timers enforce them.
    pub conn: server::Config,
    pub queue: Arc<JobQueue>,
    /// Wake-ups from the Python thread for connection tasks.
    pub conn_wakes: Arc<ConnWakes>,
    /// The access log written on this thread, when it is on and not routed
    /// through Python logging.
    pub access_log: Option<Arc<access_log::AccessLog>>,
    /// WebSocket settings, or None with `--ws none` (upgrade requests are
    /// then served as plain HTTP).
    pub ws: Option<WsSettings>,
    /// HTTP versions served.
    pub http: HttpVersions,
    /// HTTP/2 settings (None with `--http 1`).
    pub h2: Option<H2Settings>,
    /// HTTP/3 settings, with `--http3`.
    pub h3: Option<h3::H3Settings>,
    /// TLS, when the server has a certificate.
    pub tls: Option<Arc<crate::tls::ServerTls>>,
    /// Longest time a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// This worker's metrics slot, with `--metrics`.
    pub metrics: Option<crate::metrics::Slot>,
    /// Lowest level worth sending to the logging side.
    pub log_level: Level,
    pub root_path: String,
    pub limit_concurrency: Option<usize>,
    pub limit_max_requests: Option<u64>,
    /// Requests whose response is not complete.
    pub in_flight: AtomicUsize,
    /// Open connections.
    pub connections: AtomicUsize,
    /// Requests started since the worker began.
    pub requests: AtomicU64,
    /// Becomes true to stop accepting and close idle connections (see
    /// [`begin_shutdown`](Self::begin_shutdown)); tasks subscribe to wait
    /// for it.
    pub shutdown: watch::Sender<bool>,
    /// The same, for a look without a wait: the watch's value sits behind
    /// a lock, whose two atomic operations cost several a request.
    stopping: AtomicBool,
    /// Wakes the runtime thread to drop every connection at once.
    pub abort: Notify,
    /// Peers whose proxy headers are believed; None with
    /// `--no-proxy-headers`.
    pub proxies: Option<cormorant_core::asgi::TrustedProxies>,
    /// Static routes answered on this thread (`--static-path-route`).
    pub statics: Option<static_files::StaticFiles>,
    /// `--proxy-protocol`: what a trusted peer's first bytes must be, and
    /// who is trusted.
    pub proxy_protocol: Option<(
        cormorant_core::proxy_protocol::Expect,
        cormorant_core::asgi::TrustedProxies,
    )>,
    /// `--request-id`: makes the IDs.
    pub request_ids: Option<request_meta::RequestIds>,
    /// `--request-start-header`.
    pub request_start_header: bool,
    /// `--max-queue-time`.
    pub max_queue_time: Option<Duration>,
    /// `--health-path`, answered without the app.
    pub health_path: Option<Box<[u8]>>,
    /// The stop began (a drain delay, then the shutdown): the health path
    /// answers 503.
    pub draining: AtomicBool,
}

impl ServerCtx {
    /// Applies the proxy headers of a request from a trusted peer to its
    /// scope (`trusted`: see `PeerInfo::trusted_proxy`). Returns
    /// whether they changed the client.
    pub fn apply_proxy_headers(
        &self,
        trusted: bool,
        scope: &mut cormorant_core::asgi::HttpScope,
    ) -> bool {
        let (true, Some(p)) = (trusted, &self.proxies) else {
            return false;
        };
        p.resolve(&scope.headers).apply(scope)
    }

    /// The settings of `config`, with fresh counters. Errors are one
    /// readable line (a bad header, certificate or static route).
    pub fn new(
        config: &ServerConfig,
        queue: Arc<JobQueue>,
        conn_wakes: Arc<ConnWakes>,
        metrics: Option<crate::metrics::Slot>,
        access_log: Option<Arc<access_log::AccessLog>>,
    ) -> Result<Self, String> {
        let tls = match config.tls_settings() {
            Some(settings) => Some(Arc::new(crate::tls::ServerTls::new(&settings)?)),
            None => None,
        };
        let routes = config.static_routes()?;
        let fields = server_fields(config);
        let h3 = match (&tls, config.http3) {
            (Some(tls), true) => Some(h3::H3Settings::new(config, tls, fields.clone())?),
            _ => None,
        };
        // Responses over TCP point clients at HTTP/3 (RFC 7838).
        let mut fields = fields;
        if h3.is_some() {
            fields.extra.push((
                Bytes::from_static(b"alt-svc"),
                cormorant_core::http::alt_svc_h3(config.port),
            ));
        }
        let statics = if routes.is_empty() {
            None
        } else {
            Some(
                static_files::StaticFiles::new(routes, config.static_path_expires)
                    .map_err(|e| e.to_string())?,
            )
        };
        Ok(Self {
            conn: conn_config(config, fields.clone()),
            metrics,
            queue,
            conn_wakes,
            http: config.http,
            tls,
            tls_handshake_timeout: config.timeout_tls_handshake,
            h2: config
                .http
                .http2()
                .then(|| H2Settings::from_config(config, fields)),
            h3,
            log_level: config.log_level,
            access_log,
            ws: WsSettings::from_config(config),
            root_path: config.root_path.clone(),
            limit_concurrency: config.limit_concurrency,
            limit_max_requests: config.limit_max_requests,
            in_flight: Default::default(),
            connections: Default::default(),
            requests: Default::default(),
            shutdown: watch::channel(false).0,
            stopping: AtomicBool::new(false),
            abort: Notify::new(),
            proxies: config.trusted_proxies()?,
            proxy_protocol: config
                .proxy_protocol
                .expect()
                .zip(config.proxy_protocol_peers()?),
            statics,
            request_ids: config.request_id.then(request_meta::RequestIds::default),
            request_start_header: config.request_start_header,
            max_queue_time: config.max_queue_time.map(Duration::from_millis),
            health_path: config.health_path.as_ref().map(|p| p.as_bytes().into()),
            draining: Default::default(),
        })
    }

    /// Whether the stop began.
    pub fn is_shutting_down(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Begins the stop: no more accepting, idle connections close, the
    /// requests in progress finish. The flag is set before the watch wakes
    /// its waiters, so that each of them sees it.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        // send_replace: `send` drops the value while no task has
        // subscribed yet.
        self.shutdown.send_replace(true);
    }

    /// The health path's answer when `target` is that path (any query):
    /// 200, or 503 once the stop began, and its body. None for every other
    /// target.
    #[inline]
    pub fn health_status(&self, target: &[u8]) -> Option<(u16, &'static [u8])> {
        let path = self.health_path.as_deref()?;
        self.health_answer(path, target)
    }

    fn health_answer(&self, path: &[u8], target: &[u8]) -> Option<(u16, &'static [u8])> {
        let asked = target.split(|&b| b == b'?').next().unwrap_or(target);
        if asked != path {
            return None;
        }
        let draining = self.draining.load(Ordering::Relaxed) || self.is_shutting_down();
        let (status, body): (u16, &'static [u8]) = if draining {
            (503, b"Draining")
        } else {
            (200, b"OK")
        };
        self.log(Level::Debug, || {
            format!("health check {}: {status}", String::from_utf8_lossy(path))
        });
        Some((status, body))
    }

    /// Logs on the application side (Python's `cormorant.error` logger, or
    /// the embedder's callback); lines below the log level are dropped here.
    pub fn log(&self, level: Level, message: impl FnOnce() -> String) {
        if level >= self.log_level {
            self.queue.push(Job::Log(level, message()));
        }
    }

    /// Counts a new request; asks the worker to stop when it reaches
    /// `--limit-max-requests`.
    pub fn count_request(&self) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if self.limit_max_requests == Some(n) {
            self.queue.push(Job::Stop);
        }
    }
}

/// The HTTP/1.1 limits and response fields of `config`.
/// The fields every response carries (`--no-server-header`,
/// `--no-date-header`, `--header`), for each protocol's own settings.
fn server_fields(c: &ServerConfig) -> ServerFields {
    let extra = c
        .headers
        .iter()
        .map(|h| (Bytes::from(h.name.clone()), Bytes::from(h.value.clone())));
    ServerFields {
        server: c.server_header.then(|| Bytes::from_static(b"cormorant")),
        date: c.date_header,
        extra: extra.collect(),
    }
}

fn conn_config(c: &ServerConfig, fields: ServerFields) -> server::Config {
    let http = h1::Config {
        max_request_line: c.limit_request_line,
        max_head_size: c.limit_request_head_size,
        max_headers: c.limit_request_fields,
        max_body_size: (c.limit_request_body > 0).then_some(c.limit_request_body),
        server_header: fields.server,
        date_header: fields.date,
        extra_headers: fields.extra,
        ..h1::Config::default()
    };
    let ws = WsSettings::from_config(c);
    let mut websocket = ws::Config::default();
    if let Some(ws) = &ws {
        websocket.max_message_size = ws.max_size;
        websocket.max_frame_size = ws.max_size;
    }
    server::Config {
        http,
        websocket,
        per_message_deflate: ws.as_ref().is_some_and(|w| w.per_message_deflate),
        timeouts: Timeouts {
            keep_alive: Some(c.timeout_keep_alive),
            request_head: Some(c.timeout_request_head),
            request_body_idle: (!c.timeout_request_body.is_zero())
                .then_some(c.timeout_request_body),
            ws_ping_interval: ws.as_ref().and_then(|w| w.ping_interval),
            ws_ping_timeout: ws.as_ref().and_then(|w| w.ping_timeout),
            ..Timeouts::default()
        },
        // The preface is sniffed before the HTTP/1.1 driver starts.
        detect_http2: false,
    }
}

/// One open connection, counted from the moment it is accepted (before the
/// preface sniffing or the TLS handshake) until its task ends: a graceful
/// shutdown waits for it even if no request was read yet.
struct OpenConnection(Arc<ServerCtx>);

impl OpenConnection {
    fn new(ctx: &Arc<ServerCtx>) -> Self {
        ctx.connections.fetch_add(1, Ordering::Relaxed);
        Self(ctx.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs an accept loop on each listener until shutdown, then waits for
/// connections to finish (or for an abort). Blocks the calling thread.
pub fn run(listeners: Vec<Listener>, ctx: Arc<ServerCtx>) -> std::io::Result<()> {
    batch_scheduling();
    crate::handoff::mark_io_thread();
    runtime()?.block_on(serve(listeners, ctx))
}

/// The runtime every server runs on: one thread, I/O and timers.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Serves `listeners` until shutdown, then waits for connections to finish
/// (or for an abort).
async fn serve(listeners: Vec<Listener>, ctx: Arc<ServerCtx>) -> std::io::Result<()> {
    let access_log = ctx.access_log.clone();
    let result = serve_until_closed(listeners, ctx).await;
    if let Some(log) = access_log {
        log.flush();
    }
    result
}

async fn serve_until_closed(listeners: Vec<Listener>, ctx: Arc<ServerCtx>) -> std::io::Result<()> {
    // The I/O thread's side of its mailbox: one wake-up of this task per
    // batch from the application's thread, then cheap same-thread
    // notifications. (A server its host's loop steps is woken directly; its
    // mailbox stays empty.)
    driven::spawn(ctx.conn_wakes.clone().deliver_to(ConnWake::deliver));
    if let Some(slot) = ctx.metrics.clone() {
        let ctx = ctx.clone();
        driven::spawn(async move {
            let mut every = tokio::time::interval(METRICS_GAUGES);
            loop {
                every.tick().await;
                slot.set_gauges(
                    ctx.in_flight.load(Ordering::Relaxed),
                    ctx.connections.load(Ordering::Relaxed),
                );
            }
        });
    }
    if let Some(log) = ctx.access_log.clone() {
        driven::spawn(async move {
            let mut every = tokio::time::interval(ACCESS_LOG_FLUSH);
            loop {
                every.tick().await;
                log.flush();
            }
        });
    }
    let accept = accept_all(listeners, &ctx);
    tokio::select! {
        r = accept => r?,
        _ = ctx.abort.notified() => return Ok(()),
    }
    // Graceful: wait for open connections to close by themselves.
    loop {
        if ctx.connections.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = ctx.abort.notified() => return Ok(()),
        }
    }
}

/// How often the in-flight and connection gauges are published.
const METRICS_GAUGES: Duration = Duration::from_millis(500);

/// How often the access log buffer is written out.
const ACCESS_LOG_FLUSH: Duration = Duration::from_millis(100);

/// One accept loop per listener (systemd can pass several), each a task of
/// its own, until shutdown. Dropping this future (an abort) ends them all,
/// closing the listeners, as leaving a single loop would.
async fn accept_all(listeners: Vec<Listener>, ctx: &Arc<ServerCtx>) -> std::io::Result<()> {
    let readiness = readiness_driver(ctx, &listeners);
    let quic = quic_sockets(&listeners, ctx)?;
    let mut loops = AbortOnDrop(
        listeners
            .into_iter()
            .map(|l| driven::spawn(accept_loop(l, ctx.clone(), readiness.clone())))
            .chain(
                quic.into_iter()
                    .map(|s| driven::spawn(h3::serve(s, ctx.clone()))),
            )
            .collect(),
    );
    for task in &mut loops.0 {
        task.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

/// With `--http3`, a UDP socket on the port of each TCP listener.
fn quic_sockets(
    listeners: &[Listener],
    ctx: &ServerCtx,
) -> std::io::Result<Vec<std::net::UdpSocket>> {
    if ctx.h3.is_none() {
        return Ok(Vec::new());
    }
    let mut sockets = Vec::new();
    for l in listeners {
        if let Some(s) = l.quic_socket().map_err(std::io::Error::other)? {
            sockets.push(s);
        }
    }
    Ok(sockets)
}

/// Tasks aborted when this is dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<std::io::Result<()>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The readiness-driven driver for HTTP/1.1 connections: those that begin
/// as cleartext HTTP/1.1 (on a Unix socket, and on TCP without TLS or a
/// PROXY protocol header) from their first byte, and TLS connections whose
/// handshake chose HTTP/1.1; not with `--http 2`. The async driver serves
/// the rest. `CORMORANT_ASYNC_HTTP1` (set, not "0") keeps every connection
/// on the async driver, to compare the two.
fn readiness_driver(ctx: &Arc<ServerCtx>, listeners: &[Listener]) -> Option<conn::Readiness> {
    let off = std::env::var_os("CORMORANT_ASYNC_HTTP1").is_some_and(|v| v != "0");
    let wanted = ctx.tls.is_some() || listeners.iter().any(|l| begins_plain(l, ctx));
    if off || !wanted || ctx.http == HttpVersions::Http2 {
        return None;
    }
    conn::Readiness::start(ctx).ok()
}

/// Whether the connections of `l` begin as cleartext HTTP/1.1 (or the h2c
/// preface): a TCP connection may begin with TLS or a PROXY header.
fn begins_plain(l: &Listener, ctx: &ServerCtx) -> bool {
    matches!(l, Listener::Unix(..)) || ctx.tls.is_none() && ctx.proxy_protocol.is_none()
}

async fn accept_loop(
    listener: Listener,
    ctx: Arc<ServerCtx>,
    readiness: Option<conn::Readiness>,
) -> std::io::Result<()> {
    let mut stop = ctx.shutdown.subscribe();
    let plain = begins_plain(&listener, &ctx);
    match listener {
        Listener::Tcp(l) => {
            l.set_nonblocking(true)?;
            let l = tokio::net::TcpListener::from_std(l)?;
            let server = l.local_addr().ok();
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((sock, peer)) => {
                            let _ = sock.set_nodelay(true);
                            let info = conn::PeerInfo::tcp(peer, server);
                            let open = OpenConnection::new(&ctx);
                            match &readiness {
                                Some(driver) if plain => {
                                    if let Ok(sock) = sock.into_std() {
                                        driver.add(conn::Socket::Tcp(sock), info, open);
                                    }
                                }
                                _ => {
                                    let readiness = readiness.clone();
                                    driven::spawn(serve_tcp(sock, info, open, readiness));
                                }
                            }
                        }
                        Err(e) => accept_error(e).await,
                    },
                    () = stopping(&mut stop) => return Ok(()),
                }
            }
        }
        Listener::Unix(l, path) => {
            l.set_nonblocking(true)?;
            let l = tokio::net::UnixListener::from_std(l)?;
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((sock, _)) => {
                            let info = conn::PeerInfo::unix(&path);
                            let open = OpenConnection::new(&ctx);
                            if let Some(driver) = &readiness {
                                if let Ok(sock) = sock.into_std() {
                                    driver.add(conn::Socket::Unix(sock), info, open);
                                }
                                continue;
                            }
                            let ctx = ctx.clone();
                            driven::spawn(async move {
                                if ctx.http == HttpVersions::Http2 {
                                    Box::pin(h2::serve(sock, info, "http", ctx)).await;
                                } else {
                                    conn::serve(sock, info, "http", ctx).await;
                                }
                                drop(open);
                            });
                        }
                        Err(e) => accept_error(e).await,
                    },
                    () = stopping(&mut stop) => return Ok(()),
                }
            }
        }
    }
}

/// Returns once a shutdown is asked for: wait_for, not changed, so that a
/// shutdown sent before `stop` subscribed counts too. (A function, so that
/// no guard of the flag is held across an await.) Unconstrained by tokio's
/// budget, so that every poll reaches the watch and leaves the task's waker
/// with it, which [`StopPoll`] relies on: a task that spent its budget
/// would otherwise get Pending without being registered.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = tokio::task::unconstrained(stop.wait_for(|&s| s)).await;
}

/// A connection's wait for the stop, cheap to poll at every wait: the
/// [`stopping`] future is polled at the first poll, which leaves the task's
/// waker with the watch, and after that only once the stop began (the watch
/// wakes the task then). Polling the watch at every wait would cost more
/// than the rest of an idle wait.
#[derive(Default)]
pub(super) struct StopPoll {
    armed: bool,
}

impl StopPoll {
    /// Completes once `stopped` does, polling it only when due. The check
    /// is made at every poll (a `select!` precondition is evaluated once
    /// per `select!`, and would miss a stop that wakes a wait under way).
    pub(super) fn wait<'a, F: Future<Output = ()>>(
        &'a mut self,
        ctx: &'a ServerCtx,
        mut stopped: Pin<&'a mut F>,
    ) -> impl Future<Output = ()> + 'a {
        std::future::poll_fn(move |cx| {
            if !std::mem::replace(&mut self.armed, true) || ctx.is_shutting_down() {
                stopped.as_mut().poll(cx)
            } else {
                Poll::Pending
            }
        })
    }
}

/// Serves a TCP connection with the protocol it speaks.
///
/// The task of every connection lives as long as the connection and is as
/// large as its largest state, so the TLS and HTTP/2 drivers, much larger
/// than HTTP/1.1's, are boxed: an idle keep-alive connection stays small.
/// `readiness` takes a TLS connection that chose HTTP/1.1.
async fn serve_tcp(
    mut sock: tokio::net::TcpStream,
    info: conn::PeerInfo,
    open: OpenConnection,
    readiness: Option<conn::Readiness>,
) {
    let ctx = open.0.clone();
    let info = match &ctx.proxy_protocol {
        None => info,
        Some(_) => match Box::pin(proxy_header::read(&mut sock, info, &ctx)).await {
            Some(info) => info,
            None => return,
        },
    };
    if ctx.tls.is_some() {
        return Box::pin(tls::serve(sock, info, open, readiness)).await;
    }
    match ctx.http {
        HttpVersions::Http2 => Box::pin(h2::serve_prior_knowledge(sock, info, "http", ctx)).await,
        // With `auto`, core tells h2c prior knowledge from HTTP/1.1 by its
        // preface.
        HttpVersions::Http1 | HttpVersions::Auto => conn::serve(sock, info, "http", ctx).await,
    }
}

/// Marks the calling thread SCHED_BATCH. The I/O thread and the Python
/// thread wake each other constantly; as batch threads, a wake-up does not
/// preempt the waker, so each side finishes its whole batch of work before
/// the other runs, instead of ping-ponging once per request.
pub fn batch_scheduling() {
    if std::env::var_os("CORMORANT_NO_SCHED_BATCH").is_some() {
        return;
    }
    crate::sys::set_batch_scheduling();
}

/// Out of file descriptors and similar: back off instead of spinning.
async fn accept_error(e: std::io::Error) {
    if !matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
    ) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
