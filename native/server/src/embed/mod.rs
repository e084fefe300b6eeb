//! The server without Python: the same I/O thread (HTTP/1.1 through `core`,
//! HTTP/2 through hyper, TLS through rustls, WebSocket), with requests
//! handed to a Rust [`Handler`] instead of an ASGI application. The C API's
//! server layer is a thin wrapper over this.
//!
//! Threads: the I/O thread runs the connections; a dispatcher thread takes
//! new requests from the hand-over mailbox and calls the handler. A
//! [`Request`] or [`WebSocket`] may then move to any thread; its blocking
//! calls (reading the body, sending under backpressure) park that thread,
//! never the I/O thread.

mod request;
mod websocket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use request::Request;
pub use websocket::{Message, WebSocket};

pub use crate::config::Level;
use crate::config::ServerConfig;
use crate::handoff::queue::{ConnWake, ConnWakes, Job, JobQueue};
use crate::handoff::{ConnWaking, Handoff, SendSide, Waiter, on_io_thread};
use crate::server::{self, ServerCtx, listener::Listener};

/// What a stream's blocking call can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// The peer went away (or the server stopped): nothing more can be
    /// received or sent.
    Disconnected,
    /// The call would block, and it was made on the I/O thread (a handler
    /// running with [`Dispatch::IoThread`]): hand the stream to another
    /// thread for blocking work.
    WouldBlock,
    /// The call breaks the protocol's order (a body before the response
    /// head, two heads...) or carries an invalid value.
    Invalid(String),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disconnected => f.write_str("disconnected"),
            Self::WouldBlock => f.write_str("would block the I/O thread"),
            Self::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StreamError {}

impl From<cormorant_core::asgi::SendError> for StreamError {
    fn from(e: cormorant_core::asgi::SendError) -> Self {
        match e {
            cormorant_core::asgi::SendError::Disconnected => Self::Disconnected,
            e => Self::Invalid(e.to_string()),
        }
    }
}

/// Where the [`Handler`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// On a dispatcher thread of its own: a slow handler delays other
    /// handler calls but not the connections.
    Thread,
    /// On the I/O thread, inline: no thread hop per request (the fastest),
    /// but the handler must never block; calls that would wait return
    /// [`StreamError::WouldBlock`] there (sends are buffered instead).
    IoThread,
}

/// The application side of an embedded server. Keep the calls short, or
/// hand the stream to another thread (see [`Dispatch`]).
pub trait Handler: Send + Sync + 'static {
    /// A new HTTP request (any version). Answer it on any thread; dropping
    /// the request without a complete response sends `500` (or cuts the
    /// response short).
    fn request(&self, request: Request);

    /// A WebSocket upgrade request. Dropping it without accepting answers
    /// `403`. The default refuses every upgrade.
    fn websocket(&self, websocket: WebSocket) {
        drop(websocket);
    }

    /// A line the server logs. The default writes errors to stderr.
    fn log(&self, level: Level, message: &str) {
        log_to_stderr(level, message);
    }
}

/// The default log: errors and worse to stderr.
pub fn log_to_stderr(level: Level, message: &str) {
    if level >= Level::Error {
        crate::console::err(format_args!("cormorant: {message}"));
    }
}

/// What every stream of one server shares with the embedding side.
pub struct Link {
    pub conn_wakes: Arc<ConnWakes>,
    /// Set once the server stopped: parked calls give up.
    pub stopped: AtomicBool,
}

/// How long a parked call sleeps before it looks at [`Link::stopped`].
pub const PARK_CHECK: Duration = Duration::from_millis(100);

/// A running server. [`Server::stop`] ends it gracefully; dropping it stops
/// it with no grace period.
pub struct Server {
    ctx: Arc<ServerCtx>,
    link: Arc<Link>,
    local_port: Option<u16>,
    io: Option<JoinHandle<std::io::Result<()>>>,
    dispatcher: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds and starts serving. `config_json` takes the keys of the
    /// Python API and configuration file (`host`, `port`, `uds`, `http`,
    /// `ssl_certfile`, `ssl_keyfile`, `limit_request_body`,
    /// `timeout_keep_alive`, `ws_max_size`...); unknown keys are an error.
    /// Errors are one readable line.
    pub fn start(
        config_json: &str,
        handler: Arc<dyn Handler>,
        dispatch: Dispatch,
    ) -> Result<Self, String> {
        let mut config = parse_config(config_json)?;
        config.validate()?;
        let listener = Listener::bind(&config)?;
        let local_port = listener.tcp_port();
        // What `Alt-Svc` names for HTTP/3 (`port` 0 picks one).
        config.port = local_port.unwrap_or(config.port);
        let conn_wakes =
            Arc::new(ConnWakes::new().map_err(|e| format!("cannot create eventfd: {e}"))?);
        let link = Arc::new(Link {
            conn_wakes: conn_wakes.clone(),
            stopped: AtomicBool::new(false),
        });
        let queue = Arc::new(
            match dispatch {
                Dispatch::Thread => JobQueue::new(),
                Dispatch::IoThread => {
                    let (link, handler) = (link.clone(), handler.clone());
                    JobQueue::direct(move |job| run_job(job, &link, &*handler))
                }
            }
            .map_err(|e| format!("cannot create eventfd: {e}"))?,
        );
        let ctx = Arc::new(ServerCtx::new(
            &config,
            queue.clone(),
            conn_wakes.clone(),
            None,
            None,
        )?);
        let io = {
            let ctx = ctx.clone();
            std::thread::Builder::new()
                .name("cormorant-io".into())
                .spawn(move || server::run(vec![listener], ctx))
                .map_err(|e| format!("cannot start the I/O thread: {e}"))?
        };
        let dispatcher = match dispatch {
            Dispatch::IoThread => None,
            Dispatch::Thread => {
                let link = link.clone();
                Some(
                    std::thread::Builder::new()
                        .name("cormorant-dispatch".into())
                        .spawn(move || dispatch_loop(&queue, &link, &*handler))
                        .map_err(|e| format!("cannot start the dispatcher thread: {e}"))?,
                )
            }
        };
        Ok(Self {
            ctx,
            link,
            local_port,
            io: Some(io),
            dispatcher,
        })
    }

    /// The bound TCP port (useful after binding port 0).
    pub fn port(&self) -> Option<u16> {
        self.local_port
    }

    /// Stops accepting, lets open requests finish for up to `grace`, then
    /// closes every connection and joins the server's threads. MUST NOT be
    /// called from a [`Handler`] callback (it would wait for itself).
    pub fn stop(mut self, grace: Duration) {
        self.shutdown(grace);
    }

    fn shutdown(&mut self, grace: Duration) {
        let Some(io) = self.io.take() else {
            return;
        };
        self.ctx.begin_shutdown();
        let deadline = Instant::now() + grace;
        while !io.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.ctx.abort.notify_one();
        let _ = io.join();
        self.link.stopped.store(true, Ordering::Release);
        // Wakes the dispatcher, which sees `stopped` and returns.
        self.ctx.queue.push(Job::Stop);
        if let Some(d) = self.dispatcher.take() {
            let _ = d.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

/// Settings of the Python server that mean nothing here (no Python app, no
/// worker processes, no Python logging): refused rather than ignored.
const NOT_EMBEDDED: &[&str] = &[
    "target",
    "interface",
    "blocking_threads",
    "factory",
    "app_dir",
    "workers",
    "loop_impl",
    "lifespan",
    "access_log",
    "access_log_format",
    "timeout_graceful_shutdown",
    "drain_delay",
    "max_queue_time",
    "limit_max_requests",
    "limit_max_requests_jitter",
    "log_json",
    "use_colors",
    "log_config",
    "env_file",
    "reload",
    "reload_dirs",
    "reload_includes",
    "reload_excludes",
    "reload_delay",
    "metrics",
    "metrics_address",
    "metrics_port",
    "workers_lifetime",
    "workers_max_rss",
    "timeout_worker_healthcheck",
    "respawn_failed_workers",
    "pid_file",
];

/// The configuration from its JSON text (empty for the defaults).
fn parse_config(json: &str) -> Result<ServerConfig, String> {
    if json.trim().is_empty() {
        return Ok(ServerConfig::default());
    }
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("invalid configuration: {e}"))?;
    if let Some(key) = value
        .as_object()
        .and_then(|o| o.keys().find(|k| NOT_EMBEDDED.contains(&k.as_str())))
    {
        return Err(format!(
            "invalid configuration: {key:?} has no effect in an embedded server"
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("invalid configuration: {e}"))
}

/// The dispatcher thread: hands new streams to the handler and wakes
/// parked calls (for streams whose waiter is not a thread, nothing to do).
fn dispatch_loop(queue: &JobQueue, link: &Arc<Link>, handler: &dyn Handler) {
    // As the Python thread: no wake-up preemption ping-pong with the I/O
    // thread, so each side works through a batch.
    server::batch_scheduling();
    let mut jobs = Vec::new();
    loop {
        crate::sys::wait_readable(queue.fd(), -1);
        queue.take(&mut jobs);
        for job in jobs.drain(..) {
            run_job(job, link, handler);
        }
        if link.stopped.load(Ordering::Acquire) {
            return;
        }
    }
}

/// Hands one job from the I/O thread to the handler.
fn run_job(job: Job, link: &Arc<Link>, handler: &dyn Handler) {
    match job {
        Job::Request(nr) => handler.request(Request::new(*nr, link.clone())),
        Job::WebSocket(nw) => handler.websocket(WebSocket::new(*nw, link.clone())),
        Job::Log(level, message) => handler.log(level, &message),
        Job::Access(line) => handler.log(Level::Info, &line),
        // Waiters here are threads, woken by the I/O side itself.
        Job::Wake(_) | Job::WsWake(_) | Job::Stop => {}
    }
}

/// After output was queued on `shared`: wakes its connection and, when
/// more than the high mark waits to be written (`full`), parks until the
/// connection drained to the low mark. The I/O thread cannot wait for
/// itself: there the output just stays buffered.
pub fn flush<S: SendSide>(
    shared: &Arc<Handoff<S>>,
    link: &Link,
    full: bool,
) -> Result<(), StreamError>
where
    ConnWake: ConnWaking<S>,
{
    shared.wake_conn(&link.conn_wakes);
    if !full || on_io_thread() {
        return Ok(());
    }
    loop {
        {
            let mut st = shared.lock();
            if st.can_send() {
                return Ok(());
            }
            st.waiters().wait_send(Waiter::this_thread());
        }
        if !park(link) {
            return Err(StreamError::Disconnected);
        }
    }
}

/// Parks the calling thread until woken, or for at most [`PARK_CHECK`].
/// Returns false once the server stopped.
pub fn park(link: &Link) -> bool {
    std::thread::park_timeout(PARK_CHECK);
    !link.stopped.load(Ordering::Acquire)
}
