//! Several worker processes sharing one port. The supervisor never imports
//! the application: it binds, starts the workers, replaces them (rolling
//! restarts, recycling, crashes), adds and removes them on signals, and
//! stops them.
//!
//! Signals: SIGTERM/SIGINT stop every worker gracefully; SIGHUP replaces
//! every worker, one at a time; SIGTTIN adds a worker and SIGTTOU removes
//! one (never below 1).
//!
//! One stop request is one graceful stop. A signal sent to the whole
//! process group (systemd's `KillMode=control-group`, Ctrl+C, `timeout`)
//! reaches the supervisor and every worker at once, and the supervisor
//! passes its SIGTERM on too: a worker with a supervisor therefore treats
//! every SIGTERM/SIGINT after the first as the same stop. Only a stop
//! request that reaches the supervisor [`STOP_SIGNAL_GAP`] or more after
//! the first is a deliberate second one: the supervisor then sends SIGQUIT,
//! on which workers close every connection at once.
//!
//! A replacement is always started on the same listening socket as the
//! worker it replaces and becomes the slot's worker only once it reports
//! READY; only then does the old one get SIGTERM (stop accepting, finish
//! in-flight requests, run lifespan shutdown). The supervisor keeps every
//! listening socket open, so connections queued on a socket wait for the
//! next `accept` instead of being reset.
//!
//! Control pipe: each worker inherits the write end of its own pipe, named
//! by `CORMORANT_READY_FD`, and writes one byte on it: [`MSG_READY`] once
//! it accepts connections, [`MSG_RECYCLE`] when it reached
//! `--limit-max-requests` and wants to be replaced (it keeps serving until
//! its replacement is ready).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::bridge::StartupError;
use crate::config::ServerConfig;
use crate::server::listener::Listener;
use crate::worker_protocol::{
    ENV_CONFIG, ENV_METRICS_FD, ENV_METRICS_SLOT, ENV_READY_FD, ENV_WORKER_ID, MSG_READY,
    MSG_RECYCLE, WORKER_BOOT_ERROR,
};

/// A worker that dies within this long of starting (or before it is ready)
/// counts as a crash at startup; this many in a row stop the server
/// instead of looping forever.
const CRASH_WINDOW: Duration = Duration::from_secs(2);
const MAX_QUICK_CRASHES: u32 = 5;
/// How long a replacement may take to become ready before it is given up
/// (the old worker keeps serving).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often each worker's resident memory is sampled (`--workers-max-rss`).
const RSS_INTERVAL: Duration = Duration::from_secs(1);
/// Main loop period: reaction time to signals, control bytes and exits.
const TICK: Duration = Duration::from_millis(20);
/// SIGTTOU: after new connections are steered away from the socket being
/// removed, handshakes already under way may still land on it; they take
/// one round trip, so this is ample.
const DRAIN_SETTLE: Duration = Duration::from_millis(200);
/// SIGTTOU: the longest wait for the removed socket's queue to empty.
const DRAIN_MAX: Duration = Duration::from_secs(10);
/// Extra time after `--timeout-graceful-shutdown` for a worker's lifespan
/// shutdown before it is killed.
const LIFESPAN_MARGIN: f64 = 5.0;

/// Stop signals closer together than this are copies of one stop request
/// (the same group signal arriving twice, or two tools sending it); one
/// this long after the first is a deliberate second request that drops
/// connections. Workers without a supervisor apply the same gap
/// (`_cormorant.STOP_SIGNAL_GAP`).
pub(crate) const STOP_SIGNAL_GAP: Duration = Duration::from_secs(1);

/// Logs through `cormorant.error` from a process that watches workers
/// (the supervisor, the reloader); stderr if logging fails.
pub(crate) fn log(level: &str, msg: &str) {
    Python::attach(|py| {
        let r = py
            .import("logging")
            .and_then(|l| l.call_method1("getLogger", ("cormorant.error",)))
            .and_then(|l| l.call_method1(level, (msg,)));
        if r.is_err() {
            crate::console::err(msg);
        }
    });
}

/// Why a worker is being replaced (it appears in the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Sighup,
    MaxRequests,
    Lifetime,
    MaxRss,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sighup => "SIGHUP",
            Self::MaxRequests => "max requests",
            Self::Lifetime => "lifetime",
            Self::MaxRss => "max rss",
        }
    }

    /// The `reason` label of `cormorant_worker_restarts_total`.
    fn label(self) -> &'static str {
        match self {
            Self::Sighup => "sighup",
            Self::MaxRequests => "max_requests",
            Self::Lifetime => "lifetime",
            Self::MaxRss => "max_rss",
        }
    }

    fn level(self) -> &'static str {
        match self {
            Self::MaxRss => "warning",
            _ => "info",
        }
    }
}

/// One worker process.
struct Proc {
    child: Child,
    /// Worker number (the slot's, 1-based), for logs and process titles.
    id: usize,
    started: Instant,
    /// Read end of the control pipe (non-blocking); None after EOF.
    ctl: Option<File>,
    ready: bool,
    /// It reached `--limit-max-requests`.
    wants_recycle: bool,
    /// When `--workers-lifetime` asks for its replacement.
    recycle_at: Option<Instant>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: sending a signal to our own child by pid; it is not reaped
        // yet (we hold its `Child` and only `try_wait` it), so the pid is
        // still ours.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Reads the control bytes the worker wrote since the last call.
    fn poll_ctl(&mut self) {
        let Some(ctl) = &mut self.ctl else { return };
        let mut buf = [0u8; 64];
        loop {
            match ctl.read(&mut buf) {
                Ok(0) => {
                    self.ctl = None;
                    return;
                }
                Ok(n) => {
                    for &b in &buf[..n] {
                        match b {
                            MSG_READY => self.ready = true,
                            MSG_RECYCLE => self.wants_recycle = true,
                            _ => {}
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return, // WouldBlock: nothing more for now
            }
        }
    }

    /// `Some(status)` once the process has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Resident set size in bytes, from /proc/<pid>/statm.
    fn rss(&self) -> Option<u64> {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.pid())).ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages * u64::try_from(page).unwrap_or(4096))
    }
}

/// A worker position: its listening socket, the worker serving it, and the
/// replacement being started.
struct Slot {
    listener: Arc<Listener>,
    worker: Option<Proc>,
    next: Option<(Proc, Reason)>,
    /// A replacement is wanted, not yet started.
    want: Option<Reason>,
}

/// A slot removed by SIGTTOU: its worker drains the socket's queue, then
/// stops; the socket is closed once it has exited.
struct Draining {
    listener: Arc<Listener>,
    worker: Option<Proc>,
    since: Instant,
    term_sent: bool,
}

struct Supervisor {
    config: ServerConfig,
    exe: String,
    /// One SO_REUSEPORT socket per slot (TCP), else one shared listener.
    reuse_port: bool,
    slots: Vec<Slot>,
    /// Old workers told to stop, waiting for them to exit.
    retiring: Vec<Proc>,
    draining: Vec<Draining>,
    quick_crashes: u32,
    rng: u64,
    last_rss: Instant,
    /// With `--metrics`: the workers' shared counters and our own.
    metrics: Option<Metrics>,
}

/// With `--metrics`: the region every worker counts into, and the
/// supervisor's own counts, both rendered by the endpoint.
type Metrics = (
    Arc<crate::metrics::Region>,
    Arc<std::sync::Mutex<crate::metrics::render::ServerCounts>>,
);

fn start_metrics(config: &ServerConfig) -> Result<Option<Metrics>, String> {
    use crate::metrics::{Region, endpoint, region::MAX_SLOTS, render::ServerCounts};
    if !config.metrics {
        return Ok(None);
    }
    let region = Arc::new(
        Region::create(MAX_SLOTS).map_err(|e| format!("cannot create the metrics region: {e}"))?,
    );
    let counts = Arc::new(std::sync::Mutex::new(ServerCounts {
        restarts: Vec::new(),
        workers: config.workers,
    }));
    let addr = format!("{}:{}", config.metrics_address, config.metrics_port);
    endpoint::start(&addr, region.clone(), counts.clone())?;
    Ok(Some((region, counts)))
}

/// Counts a worker restart for the metrics.
fn count_restart(metrics: &Option<Metrics>, reason: &str) {
    if let Some((_, counts)) = metrics {
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        match c.restarts.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => c.restarts.push((reason.to_owned(), 1)),
        }
    }
}

/// Gives SIGINT back to its default before a watching process installs its
/// own handler. Python's handler would otherwise still run (signal-hook
/// chains to the previous one) and raise KeyboardInterrupt once the
/// process is back in Python, turning a clean stop into death by SIGINT.
pub(crate) fn release_python_sigint(py: Python<'_>) -> PyResult<()> {
    let signal = py.import("signal")?;
    signal.call_method1(
        "signal",
        (signal.getattr("SIGINT")?, signal.getattr("SIG_DFL")?),
    )?;
    Ok(())
}

/// Runs the supervisor until SIGTERM/SIGINT. Returns the exit code.
pub(crate) fn supervise(py: Python<'_>, config: &ServerConfig) -> PyResult<i32> {
    let reuse_port = config.fd.is_none() && config.uds.is_none();
    let listeners = bind_all(config).map_err(StartupError::new_err)?;
    let exe: String = py.import("sys")?.getattr("executable")?.extract()?;
    let url = listeners[0].url(config.serves_tls());

    release_python_sigint(py)?;
    // Counters, so that two signals in one tick count twice.
    let counters: [Arc<AtomicUsize>; 4] = Default::default();
    let [term, hup, ttin, ttou] = &counters;
    for (sigs, counter) in [
        (
            &[signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT][..],
            term,
        ),
        (&[signal_hook::consts::SIGHUP][..], hup),
        (&[signal_hook::consts::SIGTTIN][..], ttin),
        (&[signal_hook::consts::SIGTTOU][..], ttou),
    ] {
        for &sig in sigs {
            let c = counter.clone();
            // SAFETY: the handler only increments an atomic, which is
            // async-signal-safe.
            unsafe {
                signal_hook::low_level::register(sig, move || _ = c.fetch_add(1, Ordering::Relaxed))
            }
            .map_err(|e| StartupError::new_err(format!("cannot install signal handler: {e}")))?;
        }
    }
    let target = config.target.clone().unwrap_or_default();
    crate::proctitle::set(&format!("cormorant: supervisor {target}"), "cormorant-sup");
    write_pid_file(config)?;
    log(
        "info",
        &format!(
            "Cormorant supervisor (pid {}) serving on {} ({}) with {} workers",
            std::process::id(),
            url,
            config.protocols(),
            config.workers
        ),
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut sup = Supervisor {
        config: config.clone(),
        exe,
        reuse_port,
        slots: Vec::new(),
        retiring: Vec::new(),
        draining: Vec::new(),
        quick_crashes: 0,
        rng: seed ^ u64::from(std::process::id()).rotate_left(32) | 1,
        last_rss: Instant::now(),
        metrics: start_metrics(config).map_err(StartupError::new_err)?,
    };
    let mut listeners = listeners.into_iter().map(Arc::new);
    let mut shared = None;
    for i in 0..config.workers {
        // One socket per worker, or the one shared listener for all.
        let listener = match (&shared, listeners.next()) {
            (_, Some(l)) => {
                shared = Some(l.clone());
                l
            }
            (Some(l), None) => Arc::clone(l),
            (None, None) => unreachable!("bind_all returns at least one listener"),
        };
        let worker = match sup.spawn(&listener, i + 1) {
            Ok(w) => w,
            Err(e) => {
                sup.stop_all(term);
                remove_pid_file(config);
                return Err(StartupError::new_err(format!("cannot start worker: {e}")));
            }
        };
        sup.slots.push(Slot {
            listener,
            worker: Some(worker),
            next: None,
            want: None,
        });
    }
    sup.steer();
    let code = py.detach(|| sup.run(term, hup, ttin, ttou));
    drop(sup);
    crate::bridge::worker::remove_socket_file(config);
    remove_pid_file(config);
    Ok(code)
}

impl Supervisor {
    fn run(
        &mut self,
        term: &AtomicUsize,
        hup: &AtomicUsize,
        ttin: &AtomicUsize,
        ttou: &AtomicUsize,
    ) -> i32 {
        let mut pending_ttin = 0;
        loop {
            if term.load(Ordering::Relaxed) > 0 {
                self.stop_all(term);
                return 0;
            }
            if hup.swap(0, Ordering::Relaxed) > 0 {
                log("info", "SIGHUP: replacing every worker, one at a time");
                for slot in &mut self.slots {
                    slot.want = Some(Reason::Sighup);
                }
            }
            pending_ttin += ttin.swap(0, Ordering::Relaxed);
            // A new socket joins the SO_REUSEPORT group at the end: wait
            // until removed sockets are closed so indices stay in slot
            // order (see `steer`).
            while pending_ttin > 0 && self.draining.is_empty() {
                pending_ttin -= 1;
                self.add_slot();
            }
            for _ in 0..ttou.swap(0, Ordering::Relaxed) {
                self.remove_slot();
            }
            for i in 0..self.slots.len() {
                if let Err(code) = self.check_slot(i) {
                    self.stop_all(term);
                    return code;
                }
            }
            self.retiring.retain_mut(|p| match p.exited() {
                Some(status) => {
                    log(
                        "debug",
                        &format!("old worker {} (pid {}) exited ({status})", p.id, p.pid()),
                    );
                    false
                }
                None => true,
            });
            self.check_draining();
            self.check_recycling();
            if let Some((_, counts)) = &self.metrics {
                counts.lock().unwrap_or_else(|e| e.into_inner()).workers = self.slots.len();
            }
            // One rolling replacement at a time: starting Python and the
            // app costs CPU the serving workers need.
            if self.slots.iter().all(|s| s.next.is_none()) {
                if let Some(i) = self
                    .slots
                    .iter()
                    .position(|s| s.want.is_some() && s.worker.as_ref().is_some_and(|w| w.ready))
                {
                    self.start_replacement(i);
                }
            }
            std::thread::sleep(TICK);
        }
    }

    /// Starts a worker for `listener`.
    fn spawn(&mut self, listener: &Listener, id: usize) -> std::io::Result<Proc> {
        let mut cfg = self.config.clone();
        cfg.workers = 1;
        cfg.fd = Some(listener.raw_fd());
        cfg.uds = None;
        cfg.pid_file = None;
        cfg.workers_lifetime = None;
        cfg.workers_max_rss = None;
        // Each worker gets its own limit so they do not all recycle at once.
        let jitter = cfg.limit_max_requests_jitter;
        cfg.limit_max_requests_jitter = 0;
        if jitter > 0 {
            let r = self.random() % (jitter + 1);
            cfg.limit_max_requests = cfg.limit_max_requests.map(|n| n + r);
        }
        let json = serde_json::to_string(&cfg).map_err(std::io::Error::other)?;
        let (ctl_read, ctl_write) = pipe()?;
        let lfd = listener.raw_fd();
        let wfd = ctl_write.as_raw_fd();
        // The metrics region, when on: worker `id` counts into slot id - 1
        // (a replacement continues its predecessor's counters).
        let mfd = self.metrics.as_ref().map(|(region, _)| region.raw_fd());
        let mut cmd = Command::new(&self.exe);
        cmd.args([
            "-c",
            "from cormorant._worker import worker_main; worker_main()",
        ])
        .env(ENV_CONFIG, json)
        .env(ENV_READY_FD, wfd.to_string())
        .env(ENV_WORKER_ID, id.to_string());
        if let Some(fd) = mfd {
            cmd.env(ENV_METRICS_FD, fd.to_string())
                .env(ENV_METRICS_SLOT, (id - 1).to_string());
        }
        // SAFETY: runs in the child between fork and exec; fcntl and prctl
        // are async-signal-safe and touch only the child. Every other
        // descriptor of ours is close-on-exec, so the worker inherits just
        // its own listener and its own pipe; it gets SIGTERM if the
        // supervisor dies.
        unsafe {
            cmd.pre_exec(move || {
                for fd in [Some(lfd), Some(wfd), mfd].into_iter().flatten() {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(ctl_write);
        let started = Instant::now();
        let recycle_at = self.config.workers_lifetime.map(|l| {
            // Up to 10% later, so workers started together drift apart.
            let jitter = (self.random() % 1000) as f64 / 10_000.0;
            started + Duration::from_secs_f64(l * (1.0 + jitter))
        });
        Ok(Proc {
            child,
            id,
            started,
            ctl: Some(ctl_read),
            ready: false,
            wants_recycle: false,
            recycle_at,
        })
    }

    fn random(&mut self) -> u64 {
        // xorshift64: spreading limits needs no better.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Reads control bytes, promotes a ready replacement, and handles
    /// exits. `Err(code)` stops the server.
    fn check_slot(&mut self, i: usize) -> Result<(), i32> {
        let slot = &mut self.slots[i];
        if let Some(w) = &mut slot.worker {
            w.poll_ctl();
            if w.wants_recycle && slot.want.is_none() && slot.next.is_none() {
                w.wants_recycle = false;
                slot.want = Some(Reason::MaxRequests);
            }
        }
        // The replacement: ready, dead, or too slow.
        if let Some((next, reason)) = &mut slot.next {
            next.poll_ctl();
            let reason = *reason;
            if next.ready {
                let (next, _) = slot.next.take().expect("checked above");
                match slot.worker.take() {
                    Some(old) => {
                        old.signal(libc::SIGTERM);
                        log(
                            reason.level(),
                            &format!(
                                "worker {} (pid {}) replaced by pid {} ({})",
                                old.id,
                                old.pid(),
                                next.pid(),
                                reason.as_str()
                            ),
                        );
                        self.retiring.push(old);
                    }
                    None => log(
                        reason.level(),
                        &format!(
                            "worker {} (pid {}) is ready ({})",
                            next.id,
                            next.pid(),
                            reason.as_str()
                        ),
                    ),
                }
                slot.worker = Some(next);
                count_restart(&self.metrics, reason.label());
            } else if let Some(status) = next.exited() {
                let pid = next.pid();
                slot.next = None;
                log(
                    "error",
                    &format!(
                        "the replacement of worker {} (pid {pid}) exited before it was ready \
                         ({status}); keeping the old worker",
                        i + 1
                    ),
                );
                self.keep_old_worker(i);
            } else if next.started.elapsed() > READY_TIMEOUT {
                let _ = next.child.kill();
                let _ = next.child.wait();
                log(
                    "error",
                    &format!(
                        "the replacement of worker {} was not ready after {} s; keeping the \
                         old worker",
                        i + 1,
                        READY_TIMEOUT.as_secs()
                    ),
                );
                self.slots[i].next = None;
                self.keep_old_worker(i);
            }
        }
        let slot = &mut self.slots[i];
        let Some(w) = &mut slot.worker else {
            return self.respawn(i);
        };
        let Some(status) = w.exited() else {
            return Ok(());
        };
        let pid = w.pid();
        let lived = w.started.elapsed();
        let was_ready = w.ready;
        slot.worker = None;
        if status.code() == Some(WORKER_BOOT_ERROR) {
            // The worker said why on stderr; respawning cannot help.
            log(
                "critical",
                &format!(
                    "worker {} (pid {pid}) failed to boot; stopping the server",
                    i + 1
                ),
            );
            return Err(1);
        }
        if status.success() {
            log(
                "info",
                &format!("worker {} (pid {pid}) exited; starting a new one", i + 1),
            );
            count_restart(&self.metrics, "exited");
            self.quick_crashes = 0;
        } else {
            count_restart(&self.metrics, "crashed");
            if !self.config.respawn_failed_workers {
                log(
                    "critical",
                    &format!(
                        "worker {} (pid {pid}) died ({}) and --respawn-failed-workers is off; \
                         stopping the server",
                        i + 1,
                        describe(status)
                    ),
                );
                return Err(1);
            }
            if lived < CRASH_WINDOW || !was_ready {
                self.quick_crashes += 1;
            } else {
                self.quick_crashes = 0;
            }
            if self.quick_crashes >= MAX_QUICK_CRASHES {
                log(
                    "critical",
                    &format!(
                        "workers keep dying right after they start ({} in a row); stopping \
                         the server",
                        self.quick_crashes
                    ),
                );
                return Err(1);
            }
            log(
                "warning",
                &format!(
                    "worker {} (pid {pid}) died ({}); starting a new one (crashed)",
                    i + 1,
                    describe(status)
                ),
            );
        }
        self.respawn(i)
    }

    /// A slot without a worker gets a new one, unless a replacement is
    /// already starting (it takes over when ready). Until the new worker
    /// accepts, the socket's queue waits for it.
    fn respawn(&mut self, i: usize) -> Result<(), i32> {
        if self.slots[i].next.is_some() {
            return Ok(());
        }
        let listener = self.slots[i].listener.clone();
        match self.spawn(&listener, i + 1) {
            Ok(p) => {
                self.slots[i].worker = Some(p);
                Ok(())
            }
            Err(e) => {
                log("critical", &format!("cannot start worker: {e}"));
                Err(1)
            }
        }
    }

    /// A replacement failed: the old worker stays, and is not asked to be
    /// replaced again for the same reason right away.
    fn keep_old_worker(&mut self, i: usize) {
        let lifetime = self.config.workers_lifetime;
        let slot = &mut self.slots[i];
        slot.want = None;
        if let (Some(w), Some(l)) = (&mut slot.worker, lifetime) {
            w.recycle_at = Some(Instant::now() + Duration::from_secs_f64(l));
        }
    }

    fn start_replacement(&mut self, i: usize) {
        let Some(reason) = self.slots[i].want.take() else {
            return;
        };
        let listener = self.slots[i].listener.clone();
        let old = self.slots[i].worker.as_ref().map_or(0, Proc::pid);
        log(
            reason.level(),
            &format!(
                "{}: starting a replacement for worker {} (pid {old})",
                reason.as_str(),
                i + 1
            ),
        );
        match self.spawn(&listener, i + 1) {
            Ok(p) => self.slots[i].next = Some((p, reason)),
            Err(e) => log("error", &format!("cannot start a replacement worker: {e}")),
        }
    }

    /// `--workers-lifetime` and `--workers-max-rss`.
    fn check_recycling(&mut self) {
        let now = Instant::now();
        let sample_rss =
            self.config.workers_max_rss.is_some() && now - self.last_rss >= RSS_INTERVAL;
        if sample_rss {
            self.last_rss = now;
        }
        let max_rss = self.config.workers_max_rss.unwrap_or(0) * 1024 * 1024;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(w) = &slot.worker else { continue };
            if !w.ready || slot.want.is_some() || slot.next.is_some() {
                continue;
            }
            if w.recycle_at.is_some_and(|t| now >= t) {
                slot.want = Some(Reason::Lifetime);
            } else if sample_rss {
                if let Some(rss) = w.rss().filter(|&r| r > max_rss) {
                    log(
                        "warning",
                        &format!(
                            "worker {} (pid {}) uses {} MiB, above --workers-max-rss {}",
                            i + 1,
                            w.pid(),
                            rss / (1024 * 1024),
                            max_rss / (1024 * 1024)
                        ),
                    );
                    slot.want = Some(Reason::MaxRss);
                }
            }
        }
    }

    /// SIGTTIN: one more worker, on a new SO_REUSEPORT socket (or the
    /// shared listener).
    fn add_slot(&mut self) {
        let listener = if self.reuse_port {
            let mut same_port = self.config.clone();
            same_port.port = self.slots[0]
                .listener
                .tcp_port()
                .unwrap_or(self.config.port);
            match Listener::bind_reuse_port(&same_port, true) {
                Ok(l) => Arc::new(l),
                Err(e) => {
                    log("error", &format!("SIGTTIN: cannot add a worker: {e}"));
                    return;
                }
            }
        } else {
            self.slots[0].listener.clone()
        };
        let id = self.slots.len() + 1;
        match self.spawn(&listener, id) {
            Ok(p) => {
                self.slots.push(Slot {
                    listener,
                    worker: Some(p),
                    next: None,
                    want: None,
                });
                self.steer();
                log(
                    "info",
                    &format!("SIGTTIN: adding worker {id} (now {id} workers)"),
                );
            }
            Err(e) => log("error", &format!("SIGTTIN: cannot start a worker: {e}")),
        }
    }

    /// SIGTTOU: removes the last worker without losing a connection.
    ///
    /// Closing a SO_REUSEPORT socket resets the connections queued on it,
    /// and the kernel keeps queueing new ones on it as long as it listens.
    /// So first the group's steering program stops sending new connections
    /// to it; its worker keeps accepting until the queue is empty (and
    /// handshakes begun before the switch have completed); only then does
    /// it get SIGTERM, and the socket is closed after it has exited.
    fn remove_slot(&mut self) {
        if self.slots.len() <= 1 {
            log("warning", "SIGTTOU: already down to one worker");
            return;
        }
        let Some(slot) = self.slots.pop() else { return };
        self.steer();
        if let Some((next, _)) = slot.next {
            next.signal(libc::SIGTERM);
            self.retiring.push(next);
        }
        let id = self.slots.len() + 1;
        log(
            "info",
            &format!(
                "SIGTTOU: removing worker {id} (now {} workers)",
                self.slots.len()
            ),
        );
        self.draining.push(Draining {
            listener: slot.listener,
            worker: slot.worker,
            since: Instant::now(),
            // A shared listener stays open: the worker can stop at once.
            term_sent: false,
        });
        let reuse_port = self.reuse_port;
        if let Some(d) = self.draining.last_mut() {
            if !reuse_port {
                if let Some(w) = &d.worker {
                    w.signal(libc::SIGTERM);
                }
                d.term_sent = true;
            }
        }
    }

    fn check_draining(&mut self) {
        self.draining.retain_mut(|d| {
            let Some(w) = &mut d.worker else {
                return false;
            };
            if !d.term_sent {
                let waited = d.since.elapsed();
                if waited >= DRAIN_SETTLE
                    && (accept_queue_len(d.listener.raw_fd()) == Some(0) || waited > DRAIN_MAX)
                {
                    w.signal(libc::SIGTERM);
                    d.term_sent = true;
                }
                return true;
            }
            if let Some(status) = w.exited() {
                log(
                    "info",
                    &format!("worker {} (pid {}) stopped ({status})", w.id, w.pid()),
                );
                return false; // drops (closes) the listener
            }
            true
        });
    }

    /// Points the SO_REUSEPORT group's steering program at the sockets of
    /// the current slots. The kernel numbers a group's sockets in the order
    /// they joined and closing the last one renumbers nothing, so index i
    /// is slot i: we only ever add at the end and remove the last slot.
    fn steer(&self) {
        if !self.reuse_port {
            return;
        }
        let Some(first) = self.slots.first() else {
            return;
        };
        if let Err(e) = attach_steering(first.listener.raw_fd(), self.slots.len() as u32) {
            log(
                "warning",
                &format!(
                    "cannot attach the SO_REUSEPORT steering program ({e}); removing a \
                     worker may reset connections queued on its socket"
                ),
            );
        }
    }

    /// SIGTERM to every worker, then SIGKILL to those still alive after the
    /// graceful timeout plus a margin for their lifespan shutdown. A second
    /// stop request at least [`STOP_SIGNAL_GAP`] after the first becomes
    /// SIGQUIT, on which the workers drop their connections at once; copies
    /// of the first one change nothing.
    fn stop_all(&mut self, term: &AtomicUsize) {
        let mut procs: Vec<Proc> = Vec::new();
        for slot in self.slots.drain(..) {
            procs.extend(slot.worker);
            procs.extend(slot.next.map(|(p, _)| p));
        }
        procs.append(&mut self.retiring);
        for d in self.draining.drain(..) {
            procs.extend(d.worker);
        }
        for p in &procs {
            p.signal(libc::SIGTERM);
        }
        let mut seen = term.load(Ordering::Relaxed);
        let first = Instant::now();
        let mut escalated = false;
        let deadline = self
            .config
            .timeout_graceful_shutdown
            .map(|g| Instant::now() + Duration::from_secs_f64(g + LIFESPAN_MARGIN));
        loop {
            procs.retain_mut(|p| p.exited().is_none());
            if procs.is_empty() {
                return;
            }
            let now_seen = term.load(Ordering::Relaxed);
            if now_seen > seen {
                seen = now_seen;
                if !escalated && first.elapsed() >= STOP_SIGNAL_GAP {
                    escalated = true;
                    log(
                        "warning",
                        "second stop signal: workers close every connection now",
                    );
                    for p in &procs {
                        p.signal(libc::SIGQUIT);
                    }
                }
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                log(
                    "warning",
                    &format!(
                        "killing {} worker(s) that did not stop in time",
                        procs.len()
                    ),
                );
                for p in &mut procs {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                }
                return;
            }
            std::thread::sleep(TICK);
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(sig) => format!("signal {sig}"),
        None => status.to_string(),
    }
}

/// A close-on-exec pipe whose read end is non-blocking.
fn pipe() -> std::io::Result<(File, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours alone.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The write end blocks as usual (the worker writes two bytes at most).
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(w.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(w.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok((r, w))
}

/// Attaches a classic BPF program to the SO_REUSEPORT group of `fd` that
/// picks one of its first `n` sockets at random (`SO_ATTACH_REUSEPORT_CBPF`,
/// Linux 4.5).
fn attach_steering(fd: RawFd, n: u32) -> std::io::Result<()> {
    // Not in every libc version's constants: linux/filter.h, asm/socket.h.
    const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;
    // BPF_LD | BPF_W | BPF_ABS (BPF_LD and BPF_W are 0)
    const BPF_LD_W_ABS: u16 = 0x20;
    // BPF_ALU | BPF_MOD | BPF_K (BPF_K is 0)
    const BPF_ALU_MOD_K: u16 = 0x04 | 0x90;
    // BPF_RET | BPF_A
    const BPF_RET_A: u16 = 0x06 | 0x10;
    const SKF_AD_RANDOM: u32 = (-0x1000i32 + 56) as u32;
    let mut prog = [
        libc::sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: SKF_AD_RANDOM,
        },
        libc::sock_filter {
            code: BPF_ALU_MOD_K,
            jt: 0,
            jf: 0,
            k: n.max(1),
        },
        libc::sock_filter {
            code: BPF_RET_A,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies
    // the program.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&raw const fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Connections waiting in a TCP listener's accept queue (TCP_INFO reports
/// it as `tcpi_unacked` for a listening socket).
fn accept_queue_len(fd: RawFd) -> Option<u32> {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        );
        (r == 0).then_some(info.tcpi_unacked)
    }
}

/// The listeners of the workers. For TCP, one SO_REUSEPORT socket per
/// worker, so the kernel spreads connections evenly over them (a shared
/// socket lets the busiest worker take almost everything at low load).
/// Unix sockets and inherited fds are shared.
fn bind_all(config: &ServerConfig) -> Result<Vec<Listener>, String> {
    if config.fd.is_some() || config.uds.is_some() {
        return Ok(vec![Listener::bind(config)?]);
    }
    // A plain bind first: it fails if anything else holds the port (even a
    // process that also uses SO_REUSEPORT), and resolves port 0.
    let probe = Listener::bind(config)?;
    let mut same_port = config.clone();
    same_port.port = probe.tcp_port().unwrap_or(config.port);
    drop(probe);
    (0..config.workers)
        .map(|_| Listener::bind_reuse_port(&same_port, true))
        .collect()
}

/// `--pid-file`: the pid of the process to signal.
pub(crate) fn write_pid_file(config: &ServerConfig) -> PyResult<()> {
    if let Some(path) = &config.pid_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| StartupError::new_err(format!("cannot write pid file {path}: {e}")))?;
    }
    Ok(())
}

pub(crate) fn remove_pid_file(config: &ServerConfig) {
    if let Some(path) = &config.pid_file {
        let _ = std::fs::remove_file(path);
    }
}
