//! The Python-facing handle of one worker: owns the listeners and the
//! server (driven by the event loop, or on an I/O thread of its own), and
//! drains the job queue on the Python thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::app_call::{AppCall, Stream};
use super::queue_time::QueueTime;
use super::request::{Request, receive_message};
use super::task_pool::Tasks;
use super::websocket::{self, WebSocket};
use super::wsgi::Wsgi;
use super::{ClientDisconnected, PyCtx, StartupError, reject, resolve, scope};
use crate::access_format::AccessFormat;
use crate::config::{ServerConfig, WsMode};
use crate::handoff::SendSide;
use crate::handoff::http::{NewRequest, Shared};
use crate::handoff::queue::{ConnWakes, Job, JobQueue};
use crate::handoff::websocket::NewWebSocket;
use crate::server::access_log::AccessLog;
use crate::server::driven::Driven;
use crate::server::listener::Listener;

use crate::server::{self, ServerCtx};

/// Free heap memory a worker keeps instead of trimming it at every free:
/// several batches of bodies' worth (see [`crate::sys::keep_heap_top`]).
const KEPT_HEAP_TOP: usize = 8 << 20;

/// Python objects the drain needs, set by `start`.
struct Running {
    app: Py<PyAny>,
    /// Whether each app call first counts its wait (`--metrics`,
    /// `--max-queue-time`).
    timed: bool,
    tasks: Tasks,
    on_stop: Py<PyAny>,
    state: Option<Py<PyDict>>,
    pyctx: Arc<PyCtx>,
    /// A WSGI app's side (its requests are not coroutines).
    wsgi: Option<Wsgi>,
}

/// One worker: its listeners, the server, and the Python side's entry
/// points.
#[pyclass(module = "cormorant._cormorant")]
pub(crate) struct Worker {
    config: ServerConfig,
    /// Taken by `start`.
    listeners: Option<Vec<Listener>>,
    url: String,
    queue: Arc<JobQueue>,
    ctx: Option<Arc<ServerCtx>>,
    running: Option<Running>,
    io: Io,
    jobs: Vec<Job>,
    /// What the scopes of its requests share.
    kept: scope::Kept,
}

/// Where a worker's I/O runs.
enum Io {
    /// Not started, or joined.
    Idle,
    /// On a thread of its own (`CORMORANT_IO_THREAD=1`).
    Thread(JoinHandle<std::io::Result<()>>),
    /// On the Python thread, stepped by the event loop.
    Driven(Driven),
}

impl Worker {
    /// This worker's metrics slot: given by the supervisor, or, in a
    /// single-process server, a region of its own with its endpoint.
    fn metrics_slot(&mut self) -> PyResult<Option<crate::metrics::Slot>> {
        use crate::metrics::{Region, Slot, endpoint, render::ServerCounts};
        if !self.config.metrics {
            return Ok(None);
        }
        if let Some(slot) = crate::worker_protocol::metrics_slot() {
            return Ok(Some(slot));
        }
        let region = Arc::new(Region::create(1).map_err(|e| {
            StartupError::new_err(format!("cannot create the metrics region: {e}"))
        })?);
        let addr = format!(
            "{}:{}",
            self.config.metrics_address, self.config.metrics_port
        );
        let counts = Arc::new(std::sync::Mutex::new(ServerCounts {
            restarts: Vec::new(),
            workers: 1,
        }));
        endpoint::start(&addr, region.clone(), counts).map_err(StartupError::new_err)?;
        Ok(Some(Slot::take(region, 0)))
    }

    /// Hands a request to the app.
    fn new_request(
        py: Python<'_>,
        run: &Running,
        kept: &mut scope::Kept,
        nr: Box<NewRequest>,
    ) -> PyResult<Option<PyErr>> {
        let NewRequest {
            scope: s,
            unix,
            tls,
            shared,
            extensions,
            request_id,
            arrived,
        } = *nr;
        // Admitted by `admit_all` (and counted as pending) when there is a
        // limit.
        let counted = arrived.is_some() && run.pyctx.queue_time.has_limit();
        let state = run.state.as_ref().map(|d| d.bind(py));
        let dict = scope::http_scope(py, kept, &s, unix, state, extensions, tls.as_deref())?;
        if let Some(id) = request_id {
            scope::add_request_id(py, &dict, &id)?;
        }
        let req = Py::new(
            py,
            Request {
                shared,
                ctx: run.pyctx.clone(),
                arrived,
                counted: AtomicBool::new(counted),
            },
        )?;
        let call = AppCall::new(
            run.app.clone_ref(py),
            dict.unbind(),
            Stream::Http(req),
            run.timed,
        );
        run.tasks.start(py, call)
    }

    /// Dates the requests of a batch (less what they may have waited
    /// unseen) and, with `--max-queue-time`, judges them all before any
    /// app runs: each app call's first step runs at once, so the apps of
    /// a batch run one after another inside the drain, and a request
    /// judged only as its turn came would get its 503 after them all.
    /// Shed requests leave `jobs`.
    fn admit_all(run: &Running, jobs: &mut Vec<Job>) {
        let qt = &run.pyctx.queue_time;
        if !qt.is_active() {
            return;
        }
        jobs.retain_mut(|job| {
            let Job::Request(nr) = job else {
                return true;
            };
            let Some(read_at) = nr.arrived else {
                return true;
            };
            let arrived = qt.arrival(read_at);
            nr.arrived = Some(arrived);
            Request::admit(&nr.shared, &run.pyctx, arrived)
        });
    }

    /// Writes out the 503s of requests shed since `seen` was counted, now
    /// rather than after the apps the loop runs next (a driven server is
    /// stepped; an I/O thread writes them on its own).
    fn write_shed(io: &mut Io, queue_time: &QueueTime, seen: &mut u64) {
        let now = queue_time.shed_count();
        if std::mem::replace(seen, now) != now
            && let Io::Driven(d) = io
        {
            d.step_in_turn();
        }
    }

    fn new_websocket(
        py: Python<'_>,
        run: &Running,
        kept: &mut scope::Kept,
        nw: Box<NewWebSocket>,
    ) -> PyResult<Option<PyErr>> {
        let NewWebSocket {
            scope: s,
            unix,
            tls,
            shared,
        } = *nw;
        let state = run.state.as_ref().map(|d| d.bind(py));
        let dict = scope::websocket_scope(py, kept, &s, unix, state, tls.as_deref())?;
        let ws = Py::new(
            py,
            WebSocket {
                shared,
                ctx: run.pyctx.clone(),
            },
        )?;
        let call = AppCall::new(
            run.app.clone_ref(py),
            dict.unbind(),
            Stream::WebSocket(ws),
            false,
        );
        run.tasks.start(py, call)
    }

    /// The app could not even be started for a request (its scope or its
    /// coroutine could not be made): log why and answer 500, so the client
    /// is not left waiting.
    fn fail_request(py: Python<'_>, run: &Running, shared: &Arc<Shared>, e: PyErr) -> PyResult<()> {
        run.pyctx.log_app_error(
            py,
            e.value(py),
            "Exception while starting the ASGI application",
        )?;
        shared.answer(&run.pyctx.conn_wakes, |stream| stream.handle_app_exit(true));
        Ok(())
    }

    fn wake(py: Python<'_>, shared: &Arc<Shared>, conn_wakes: &ConnWakes) -> PyResult<()> {
        let mut st = shared.lock();
        st.waiters.wake_queued = false;
        let recv = if st.waiters.recv.is_some() && st.stream.receive_ready() {
            super::live_receiver(py, st.waiters.recv.take())?.map(|w| (w, st.stream.poll_receive()))
        } else {
            None
        };
        let disconnected = st.stream.is_disconnected();
        let send = if st.waiters.send.is_some() && st.can_send() {
            st.waiters.send.take().and_then(super::future_of)
        } else {
            None
        };
        let more_body = st.stream.wants_body();
        drop(st);
        if let Some((w, r)) = recv {
            super::deliver(py, w, receive_message(py, r)?.into_any().unbind())?;
            if more_body {
                shared.wake_conn(conn_wakes);
            }
        }
        if let Some(w) = send {
            if disconnected {
                reject(py, &w, ClientDisconnected::new_err("client disconnected"))?;
            } else {
                resolve(py, &w, py.None())?;
            }
        }
        Ok(())
    }

    /// Runs the pending jobs; on a driven server, then writes out what the
    /// apps that ran in them queued (a WebSocket echo, a response of an
    /// app that did not suspend) in one more step, and runs what that step
    /// gave. The output thus leaves in this turn of the loop, with no
    /// signal through the poller and no second turn.
    fn run_jobs_then_output(&mut self, py: Python<'_>) -> PyResult<()> {
        let Io::Driven(d) = &self.io else {
            return self.run_jobs(py);
        };
        let held = d.hold_wakes();
        let ran = self.run_jobs(py);
        let Io::Driven(d) = &mut self.io else {
            return ran;
        };
        if d.run_held(held) {
            // Wake-ups from these go through the poller, as between steps.
            let more = self.run_jobs(py);
            return ran.and(more);
        }
        ran
    }

    /// Handles every pending job.
    fn run_jobs(&mut self, py: Python<'_>) -> PyResult<()> {
        let mut jobs = std::mem::take(&mut self.jobs);
        self.queue.take(&mut jobs);
        let Some(run) = self.running.as_ref() else {
            return Ok(());
        };
        let kept = &mut self.kept;
        let queue_time = &run.pyctx.queue_time;
        queue_time.turn();
        let mut shed = queue_time.shed_count();
        Self::admit_all(run, &mut jobs);
        Self::write_shed(&mut self.io, queue_time, &mut shed);
        let mut first_err = None;
        for job in jobs.drain(..) {
            let r = match job {
                Job::Request(nr) if run.wsgi.is_some() => {
                    if let Some(w) = &run.wsgi {
                        w.dispatch(py, nr);
                    }
                    Ok(())
                }
                Job::Request(nr) => {
                    let shared = nr.shared.clone();
                    match Self::new_request(py, run, kept, nr) {
                        Ok(raised) => raised.map_or(Ok(()), Err),
                        Err(e) => Self::fail_request(py, run, &shared, e),
                    }
                }
                Job::Wake(shared) => Self::wake(py, &shared, &run.pyctx.conn_wakes),
                Job::WebSocket(nw) => Self::new_websocket(py, run, kept, nw)
                    .and_then(|raised| raised.map_or(Ok(()), Err)),
                Job::WsWake(shared) => websocket::wake(py, &shared, &run.pyctx.conn_wakes),
                Job::Stop => run.on_stop.call0(py).map(drop),
                Job::Access(line) => match &run.pyctx.access_logger {
                    Some(logger) => logger
                        .call_method1(py, intern!(py, "info"), (line,))
                        .map(drop),
                    None => Ok(()),
                },
                Job::Log(level, message) => run
                    .pyctx
                    .error_logger
                    .call_method1(py, intern!(py, "log"), (level.number(), message))
                    .map(drop),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        self.jobs = jobs;
        // Apps started at once may have shed requests as they started.
        Self::write_shed(&mut self.io, queue_time, &mut shed);
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[pymethods]
impl Worker {
    /// Validates the configuration and binds the listener, or adopts the
    /// sockets a supervisor passed (`listen_fds`), or those systemd passed
    /// to this process (socket activation: they replace `--host`,
    /// `--port`, `--uds` and `--fd`).
    #[new]
    #[pyo3(signature = (config_json, listen_fds = None))]
    fn new(config_json: &str, listen_fds: Option<Vec<i32>>) -> PyResult<Self> {
        let mut config: ServerConfig = serde_json::from_str(config_json)
            .map_err(|e| StartupError::new_err(format!("invalid configuration: {e}")))?;
        config.validate().map_err(StartupError::new_err)?;
        let inherited = match listen_fds {
            Some(fds) => Some(fds.into_iter().map(Listener::adopt).collect()),
            None => crate::systemd::take_listeners().transpose(),
        };
        let listeners = match inherited {
            Some(adopted) => {
                // Not ours to remove at the end.
                config.uds = None;
                adopted.map_err(StartupError::new_err)?
            }
            None => vec![Listener::bind(&config).map_err(StartupError::new_err)?],
        };
        // The port bound (`--port 0`, an inherited socket): what `Alt-Svc`
        // names for HTTP/3.
        if let Some(port) = listeners.iter().find_map(Listener::tcp_port) {
            config.port = port;
        }
        let url = urls(&listeners, config.serves_tls());
        let queue = JobQueue::new()
            .map_err(|e| StartupError::new_err(format!("cannot create eventfd: {e}")))?;
        Ok(Self {
            config,
            listeners: Some(listeners),
            url,
            queue: Arc::new(queue),
            ctx: None,
            running: None,
            io: Io::Idle,
            jobs: Vec::new(),
            kept: scope::Kept::default(),
        })
    }

    /// Where the worker listens, as a URL (`https` with TLS).
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The protocols served, for the startup line: `HTTP/1.1, HTTP/2`.
    #[getter]
    fn protocols(&self) -> String {
        self.config.protocol_names()
    }

    /// The descriptor the event loop must watch and answer with `drain`,
    /// once started.
    #[getter]
    fn fd(&self) -> i32 {
        match &self.io {
            Io::Driven(d) => d.fd(),
            _ => self.queue.fd(),
        }
    }

    /// How often, in seconds, the event loop must call `tick_drain` even
    /// when `fd` is not readable (for the server's timers), or None: often
    /// while connections are open, seldom while there are none.
    #[getter]
    fn tick(&self) -> Option<f64> {
        match &self.io {
            Io::Driven(_) if self.connections() > 0 => Some(Driven::TICK.as_secs_f64()),
            Io::Driven(_) => Some(Driven::IDLE_TICK.as_secs_f64()),
            _ => None,
        }
    }

    /// Starts serving: each request's app call is a coroutine, which
    /// first counts its wait when `timed` (`--metrics`,
    /// `--max-queue-time`). With `pooled`, its first step runs at once
    /// under a pooled task that `spawn(coro)` makes (see
    /// [`super::task_pool`]); else `spawn(coro)` schedules each.
    /// `on_stop()` is called when the worker wants to stop on its own.
    /// With `wsgi = (errors, file_wrapper, multiprocess)`, `app` is a WSGI
    /// application, run on `--blocking-threads` threads; those are its
    /// environ's `wsgi.errors`, `wsgi.file_wrapper` and
    /// `wsgi.multiprocess` (true under a supervisor).
    #[pyo3(signature = (event_loop, app, spawn, on_stop, state = None, access_log = "off", timed = false, pooled = false, wsgi = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python call
    fn start(
        &mut self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        app: Py<PyAny>,
        spawn: Py<PyAny>,
        on_stop: Py<PyAny>,
        state: Option<Py<PyDict>>,
        access_log: &str,
        timed: bool,
        pooled: bool,
        wsgi: Option<(Py<PyAny>, Py<PyAny>, bool)>,
    ) -> PyResult<()> {
        let listeners = self
            .listeners
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("worker already started"))?;
        let create_future = event_loop.getattr(intern!(py, "create_future"))?;
        let done = create_future.call0()?;
        done.call_method1(intern!(py, "set_result"), (py.None(),))?;
        let logging = py.import("logging")?;
        let error_logger = logging.call_method1("getLogger", ("cormorant.error",))?;
        // Decided once: a disabled access logger costs nothing per request,
        // and Cormorant's own default handler is replaced by the I/O thread
        // writing the same lines (Python logging costs ~10 µs a record).
        let access_logger = match access_log {
            "python" => Some(
                logging
                    .call_method1("getLogger", ("cormorant.access",))?
                    .unbind(),
            ),
            "native" | "off" => None,
            other => {
                return Err(PyRuntimeError::new_err(format!(
                    "access_log must be off, python or native, not {other:?}"
                )));
            }
        };
        let access_format = match &self.config.access_log_format {
            Some(f) => AccessFormat::parse(f).map_err(StartupError::new_err)?,
            None => AccessFormat::default(),
        };
        let access_log = match access_log {
            "native" => Some(AccessLog::new(access_format, self.config.log_json)),
            "python" => Some(AccessLog::to_app(access_format, self.queue.clone())),
            _ => None,
        };
        if wsgi.is_some() {
            // A WSGI app cannot take an upgrade: it sees the request.
            self.config.ws = WsMode::None;
        }
        let conn_wakes = Arc::new(
            ConnWakes::new()
                .map_err(|e| StartupError::new_err(format!("cannot create eventfd: {e}")))?,
        );
        let metrics = self.metrics_slot()?;
        let pyctx = Arc::new(PyCtx {
            create_future: create_future.unbind(),
            done: done.unbind(),
            error_logger: error_logger.clone().unbind(),
            access_logger,
            conn_wakes: conn_wakes.clone(),
            queue_time: QueueTime::new(
                metrics.clone(),
                self.config.max_queue_time.map(Duration::from_millis),
            ),
        });
        let wsgi = match wsgi {
            Some((errors, file_wrapper, multiprocess)) => Some(Wsgi::start(
                app.clone_ref(py),
                pyctx.clone(),
                self.config.blocking_threads,
                multiprocess,
                errors,
                file_wrapper,
            )?),
            None => None,
        };
        // With a pool, new requests go from the I/O thread straight to it,
        // and the I/O needs no GIL at all: it runs on a thread of its own.
        let wsgi_pool = wsgi.as_ref().is_some_and(|w| !w.is_inline());
        let queue = match &wsgi {
            Some(w) if wsgi_pool => Arc::new(
                w.direct_queue(self.queue.clone())
                    .map_err(|e| StartupError::new_err(format!("cannot create eventfd: {e}")))?,
            ),
            _ => self.queue.clone(),
        };
        let ctx = Arc::new(
            ServerCtx::new(
                &self.config,
                queue,
                conn_wakes,
                metrics,
                access_log.map(Arc::new),
            )
            .map_err(StartupError::new_err)?,
        );
        self.running = Some(Running {
            app,
            wsgi,
            timed,
            tasks: Tasks::new(py, event_loop, &pyctx.create_future, spawn, pooled)?,
            on_stop,
            state,
            pyctx,
        });
        self.ctx = Some(ctx.clone());
        crate::sys::keep_heap_top(KEPT_HEAP_TOP);
        let driven =
            if wsgi_pool || std::env::var_os("CORMORANT_IO_THREAD").is_some_and(|v| v != "0") {
                None
            } else {
                Driven::new()
                    .inspect_err(|e| {
                        let line = format!("serving from an I/O thread: {e}");
                        let _ = error_logger.call_method1(intern!(py, "warning"), (line,));
                    })
                    .ok()
            };
        self.io = match driven {
            Some(mut driven) => {
                // Jobs are pushed during a step and taken right after it.
                self.queue.stop_signalling();
                driven.serve(listeners, ctx);
                Io::Driven(driven)
            }
            None => {
                // The I/O thread and this one wake each other constantly.
                server::batch_scheduling();
                let thread = std::thread::Builder::new()
                    .name("cormorant-io".into())
                    .spawn(move || server::run(listeners, ctx))
                    .map_err(|e| {
                        PyRuntimeError::new_err(format!("cannot start I/O thread: {e}"))
                    })?;
                Io::Thread(thread)
            }
        };
        Ok(())
    }

    /// Publishes how late the event loop ran a timer (`--metrics`).
    fn report_loop_lag(&self, seconds: f64) {
        if let Some(slot) = self.ctx.as_ref().and_then(|c| c.metrics.as_ref()) {
            slot.set_loop_lag(Duration::from_secs_f64(seconds.max(0.0)));
        }
    }

    /// Runs a driven server's ready work, then handles every pending job.
    /// Called by the event loop when `fd` is readable.
    fn drain(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Io::Driven(d) = &mut self.io {
            d.step();
        }
        self.run_jobs_then_output(py)
    }

    /// What `drain` does, every `tick`, for the server's timers; but in
    /// the loop turn's read turn: a client answered in this turn is read
    /// when `fd` is next readable, with the rest of its group, not by a
    /// tick in between.
    fn tick_drain(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Io::Driven(d) = &mut self.io {
            d.step_in_turn();
        }
        self.run_jobs_then_output(py)
    }

    /// The stop began: the health path answers 503 from now on, while the
    /// server goes on serving (`--drain-delay`).
    fn begin_drain(&self) {
        if let Some(ctx) = &self.ctx {
            ctx.draining.store(true, Ordering::Relaxed);
        }
    }

    /// Stops accepting, closes idle connections, and lets in-flight
    /// requests finish.
    fn shutdown(&self) {
        if let Some(ctx) = &self.ctx {
            ctx.begin_shutdown();
        }
    }

    /// Drops every connection now.
    fn abort(&self) {
        if let Some(ctx) = &self.ctx {
            ctx.begin_shutdown();
            ctx.abort.notify_one();
        }
    }

    /// Open connections.
    #[getter]
    fn connections(&self) -> usize {
        self.ctx
            .as_ref()
            .map_or(0, |c| c.connections.load(Ordering::Relaxed))
    }

    /// Requests whose response is not complete.
    #[getter]
    fn in_flight(&self) -> usize {
        self.ctx
            .as_ref()
            .map_or(0, |c| c.in_flight.load(Ordering::Relaxed))
    }

    /// Waits for the server to end, and removes its socket file. The
    /// handle is not borrowed while it waits: the event loop must go on
    /// calling `drain`, since the server may still hand it a request
    /// accepted as the stop began (and, when the loop drives the server,
    /// `drain` is what runs it). So a driven server is joined from another
    /// thread too, which polls for its end.
    fn join(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        loop {
            let mut this = borrow_when_free(slf);
            let io = std::mem::replace(&mut this.io, Io::Idle);
            // Held until `io` is put back, without letting the GIL go.
            let joined = match io {
                Io::Idle => Ok(()),
                Io::Thread(t) => {
                    // The thread is ours now: the handle is free while it ends.
                    drop(this);
                    let r = match py.detach(|| t.join()) {
                        Ok(r) => r.map_err(|e| PyRuntimeError::new_err(format!("I/O thread: {e}"))),
                        Err(_) => Err(PyRuntimeError::new_err("I/O thread panicked")),
                    };
                    this = borrow_when_free(slf);
                    r
                }
                Io::Driven(mut d) if d.finished() => {
                    let r = d.join();
                    // Kept: the loop may still watch its poller.
                    this.io = Io::Driven(d);
                    r.map_err(|e| PyRuntimeError::new_err(format!("server: {e}")))
                }
                Io::Driven(d) => {
                    this.io = Io::Driven(d);
                    drop(this);
                    py.detach(|| std::thread::sleep(JOIN_POLL));
                    continue;
                }
            };
            remove_socket_file(&this.config);
            // Its threads are done with the requests: end them, with the
            // handle free (the loop may still drain).
            let wsgi = this.running.as_mut().and_then(|r| r.wsgi.take());
            drop(this);
            if let Some(mut w) = wsgi {
                w.close(py);
            }
            return joined;
        }
    }
}

/// Where `listeners` listen, for the startup line: their URLs, joined by
/// " and " (a comma or space would end a URL someone copies).
pub(crate) fn urls(listeners: &[Listener], tls: bool) -> String {
    let urls: Vec<String> = listeners.iter().map(|l| l.url(tls)).collect();
    urls.join(" and ")
}

/// The handle, once `drain` (which may hold it while Python code it calls
/// lets the GIL go) has let it go.
fn borrow_when_free<'py>(slf: &Bound<'py, Worker>) -> PyRefMut<'py, Worker> {
    loop {
        match slf.try_borrow_mut() {
            Ok(this) => return this,
            Err(_) => slf.py().detach(|| std::thread::sleep(JOIN_POLL)),
        }
    }
}

/// How often a join checks whether a driven server has ended.
const JOIN_POLL: Duration = Duration::from_millis(5);

/// Removes the Unix socket file this process bound (not an inherited one).
pub(crate) fn remove_socket_file(config: &ServerConfig) {
    if let (Some(path), None) = (&config.uds, config.fd) {
        let _ = std::fs::remove_file(path);
    }
}
