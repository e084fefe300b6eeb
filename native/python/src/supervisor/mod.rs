//! Several worker processes sharing one port. The supervisor never imports
//! the application: it binds, starts the workers, replaces them (rolling
//! restarts, recycling, crashes), adds and removes them on signals, and
//! stops them. What to do and when is [`pool::Pool`]'s decision, a sans-IO
//! policy machine tested on a virtual clock; this module is the process
//! layer that feeds it what happened and carries out its actions.
//!
//! Signals: SIGTERM/SIGINT stop every worker gracefully (SIGTERM after
//! `--drain-delay`, passed on as SIGTERM; SIGINT at once, passed on as
//! SIGINT, which also ends a drain delay under way); SIGHUP replaces
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
//! systemd: the supervisor is the service's main process and the only one
//! that notifies (see [`crate::systemd`]): READY=1 once every worker is
//! ready, RELOADING=1 then READY=1 around a rolling restart, STOPPING=1 as
//! a stop begins, and WATCHDOG=1 from its main loop.
//!
//! Control pipe: each worker inherits the write end of its own pipe, named
//! by `CORMORANT_READY_FD`, and writes one byte on it: [`MSG_READY`] once
//! it accepts connections, [`MSG_RECYCLE`] when it reached
//! `--limit-max-requests` and wants to be replaced (it keeps serving until
//! its replacement is ready).

mod pool;

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cormorant_core::time::Instant as CoreInstant;
use pyo3::prelude::*;

use crate::bridge::StartupError;
use crate::config::ServerConfig;
use crate::server::listener::Listener;
use crate::worker_protocol::{
    ENV_CONFIG, ENV_LISTEN_FDS, ENV_METRICS_FD, ENV_METRICS_SLOT, ENV_READY_FD, ENV_WORKER_ID,
    MSG_ALIVE, MSG_READY, MSG_RECYCLE,
};
use pool::{Action, Event, Exit, Notify, Policy, Pool, Sig, WorkerId};

/// Main loop period: reaction time to signals, control bytes and exits.
const TICK: Duration = Duration::from_millis(20);

/// systemd's status while the workers stop (after any drain delay).
const STOPPING_STATUS: &str = "STATUS=stopping: finishing the requests in flight";

pub(crate) use pool::STOP_SIGNAL_GAP;

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

/// One worker process.
struct Proc {
    child: Child,
    /// Read end of the control pipe (non-blocking); None after EOF.
    ctl: Option<File>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: libc::c_int) {
        // Not reaped yet: we hold its `Child` and only `try_wait` it.
        crate::sys::signal_child(self.child.id(), sig);
    }

    /// The control bytes the worker wrote since the last call, as events.
    fn poll_ctl(&mut self, id: WorkerId, events: &mut Vec<Event>) {
        let Some(ctl) = &mut self.ctl else { return };
        let mut buf = [0u8; 64];
        loop {
            match ctl.read(&mut buf) {
                Ok(0) => {
                    self.ctl = None;
                    return;
                }
                Ok(n) => events.extend(buf[..n].iter().filter_map(|&b| match b {
                    MSG_READY => Some(Event::Ready(id)),
                    MSG_ALIVE => Some(Event::Alive(id)),
                    MSG_RECYCLE => Some(Event::WantsRecycle(id)),
                    _ => None,
                })),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return, // WouldBlock: nothing more for now
            }
        }
    }

    /// How it ended, once it has.
    fn exited(&mut self) -> Option<Exit> {
        let status = self.child.try_wait().ok().flatten()?;
        Some(Exit {
            code: status.code(),
            text: describe(status),
        })
    }

    /// Resident set size in bytes, from /proc/<pid>/statm.
    fn rss(&self) -> Option<u64> {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.pid())).ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * crate::sys::page_size())
    }
}

/// The process layer: the pool's actions carried out on processes and
/// sockets.
struct Supervisor {
    config: ServerConfig,
    exe: String,
    /// Where the workers listen, for the status systemd shows.
    url: String,
    /// One SO_REUSEPORT socket per slot (TCP), else one shared listener.
    reuse_port: bool,
    /// The sockets systemd passed, which every worker serves (empty when
    /// the supervisor bound its own).
    activated: Vec<Arc<Listener>>,
    pool: Pool,
    /// Each slot's socket, in slot order.
    sockets: Vec<Arc<Listener>>,
    /// The sockets of removed slots, kept until their worker has exited.
    detached: HashMap<WorkerId, Arc<Listener>>,
    procs: HashMap<WorkerId, Proc>,
    /// Core's clock: the pool's times are offsets from this.
    epoch: Instant,
    /// With `--metrics`: the workers' shared counters and our own.
    metrics: Option<Metrics>,
    /// With `--reload`: the watched files.
    watch: Option<crate::reload::Watch>,
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
    let (listeners, activated) = match crate::systemd::take_listeners() {
        Ok(Some(passed)) => (passed, true),
        Ok(None) => (bind_all(config).map_err(StartupError::new_err)?, false),
        Err(e) => return Err(StartupError::new_err(e)),
    };
    let reuse_port = config.fd.is_none() && config.uds.is_none() && !activated;
    let exe: String = py.import("sys")?.getattr("executable")?.extract()?;
    let url = if activated {
        crate::bridge::worker::urls(&listeners, config.serves_tls())
    } else {
        listeners[0].url(config.serves_tls())
    };

    release_python_sigint(py)?;
    // Counters, so that two signals in one tick count twice.
    let counters: [Arc<AtomicUsize>; 5] = Default::default();
    let [term, int, hup, ttin, ttou] = &counters;
    for (sigs, counter) in [
        (&[signal_hook::consts::SIGTERM][..], term),
        (&[signal_hook::consts::SIGINT][..], int),
        (&[signal_hook::consts::SIGHUP][..], hup),
        (&[signal_hook::consts::SIGTTIN][..], ttin),
        (&[signal_hook::consts::SIGTTOU][..], ttou),
    ] {
        for &sig in sigs {
            crate::sys::count_signal(sig, counter.clone()).map_err(|e| {
                StartupError::new_err(format!("cannot install signal handler: {e}"))
            })?;
        }
    }
    let watch = if config.reload {
        Some(crate::reload::Watch::new(config).map_err(StartupError::new_err)?)
    } else {
        None
    };
    let target = config.target.clone().unwrap_or_default();
    crate::proctitle::set(&format!("cormorant: supervisor {target}"), "cormorant-sup");
    write_pid_file(config)?;
    let what = match &watch {
        Some(w) => format!("reloading when {} changes", w.describe()),
        None => format!("with {} workers", config.workers),
    };
    log(
        "info",
        &format!(
            "Cormorant supervisor (pid {}) serving on {} ({}) {what}",
            std::process::id(),
            url,
            config.protocol_names(),
        ),
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    // One socket per worker, or the one shared listener for all (every
    // passed socket, with socket activation).
    let listeners: Vec<Arc<Listener>> = listeners.into_iter().map(Arc::new).collect();
    let activated = if activated {
        listeners.clone()
    } else {
        Vec::new()
    };
    let sockets = (0..config.workers)
        .map(|i| listeners.get(i).unwrap_or(&listeners[0]).clone())
        .collect();
    let policy = Policy {
        workers: config.workers,
        respawn_failed: config.respawn_failed_workers,
        max_requests: config.limit_max_requests,
        max_requests_jitter: config.limit_max_requests_jitter,
        lifetime: config.workers_lifetime,
        max_rss: config.workers_max_rss.map(|m| m * 1024 * 1024),
        graceful_timeout: config.timeout_graceful_shutdown,
        drain_delay: config.drain_delay,
        hung_timeout: config.timeout_worker_healthcheck,
        reuse_port,
        reload: config.reload,
    };
    let mut sup = Supervisor {
        config: config.clone(),
        exe,
        url,
        reuse_port,
        activated,
        pool: Pool::new(policy, CoreInstant::ZERO, seed),
        sockets,
        detached: HashMap::new(),
        procs: HashMap::new(),
        epoch: Instant::now(),
        metrics: start_metrics(config).map_err(StartupError::new_err)?,
        watch,
    };
    let code = py.detach(|| sup.run([term, int], hup, ttin, ttou));
    let bound_here = sup.activated.is_empty();
    drop(sup);
    if bound_here {
        crate::bridge::worker::remove_socket_file(config);
    }
    remove_pid_file(config);
    Ok(code)
}

impl Supervisor {
    /// Now, on the pool's clock.
    fn now(&self) -> CoreInstant {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        CoreInstant::from_nanos(nanos)
    }

    /// Every tick: signals, control bytes and exits into the pool, its
    /// deadlines, then its actions; until it says exit.
    fn run(
        &mut self,
        [term, int]: [&AtomicUsize; 2],
        hup: &AtomicUsize,
        ttin: &AtomicUsize,
        ttou: &AtomicUsize,
    ) -> i32 {
        let mut stops_seen = [0, 0];
        let mut events = Vec::new();
        // WATCHDOG=1 at half systemd's period, from this loop: if it hangs,
        // systemd restarts the service.
        let ping_every = crate::systemd::watchdog().map(|period| period / 2);
        let mut next_ping = Instant::now();
        loop {
            if let Some(code) = self.carry_out() {
                return code;
            }
            if let Some(every) = ping_every {
                if Instant::now() >= next_ping {
                    crate::systemd::notify("WATCHDOG=1");
                    next_ping = Instant::now() + every;
                }
            }
            // Several copies of a stop signal within one tick are one.
            for (seen, (counter, drain)) in stops_seen.iter_mut().zip([(term, true), (int, false)])
            {
                let stops = counter.load(Ordering::Relaxed);
                if stops > *seen {
                    *seen = stops;
                    events.push(Event::Stop { drain });
                }
            }
            if hup.swap(0, Ordering::Relaxed) > 0 {
                events.push(Event::Reload);
            }
            if let Some(changed) = self.watch.as_mut().and_then(crate::reload::Watch::poll) {
                log(
                    "warning",
                    &format!("{} changed; reloading", changed.display()),
                );
                events.push(Event::FileChanged);
            }
            events.extend((0..ttin.swap(0, Ordering::Relaxed)).map(|_| Event::Add));
            events.extend((0..ttou.swap(0, Ordering::Relaxed)).map(|_| Event::Remove));
            let mut ids: Vec<WorkerId> = self.procs.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let Some(p) = self.procs.get_mut(&id) else {
                    continue;
                };
                p.poll_ctl(id, &mut events);
                if let Some(exit) = p.exited() {
                    self.procs.remove(&id);
                    events.push(Event::Exited(id, exit));
                }
            }
            let now = self.now();
            for event in events.drain(..) {
                self.pool.handle(event, now);
            }
            self.pool.handle_timeout(now);
            if let Some(code) = self.carry_out() {
                return code;
            }
            if let Some((_, counts)) = &self.metrics {
                counts.lock().unwrap_or_else(|e| e.into_inner()).workers = self.pool.workers();
            }
            // A tick, or less when one of the pool's deadlines or the next
            // watchdog ping comes sooner.
            let due = self.pool.poll_timeout().map_or(TICK, |at| {
                at.saturating_duration_since(self.now()).min(TICK)
            });
            let ping = ping_every.map_or(TICK, |_| {
                next_ping.saturating_duration_since(Instant::now())
            });
            std::thread::sleep(due.min(ping));
        }
    }

    /// Carries out every action the pool has queued (feeding back what
    /// they produce); `Some(code)` when it is time to exit.
    fn carry_out(&mut self) -> Option<i32> {
        while let Some(action) = self.pool.poll_action() {
            let now = self.now();
            match action {
                Action::Spawn {
                    worker,
                    slot,
                    max_requests,
                } => match self.spawn(slot, max_requests) {
                    Ok(p) => {
                        self.pool.set_pid(worker, p.pid());
                        self.procs.insert(worker, p);
                    }
                    Err(e) => self
                        .pool
                        .handle(Event::SpawnFailed(worker, e.to_string()), now),
                },
                Action::Signal(id, sig) => {
                    if let Some(p) = self.procs.get(&id) {
                        p.signal(match sig {
                            Sig::Term => libc::SIGTERM,
                            Sig::Int => libc::SIGINT,
                            Sig::Quit => libc::SIGQUIT,
                            Sig::DumpStacks => libc::SIGUSR1,
                        });
                    }
                }
                Action::Kill(id) => {
                    if let Some(mut p) = self.procs.remove(&id) {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                    }
                }
                Action::OpenSlot(slot) => {
                    let event = match self.open_socket() {
                        Ok(l) => {
                            self.sockets.push(l);
                            Event::SlotOpened(slot)
                        }
                        Err(e) => Event::SlotFailed(slot, e),
                    };
                    self.pool.handle(event, now);
                }
                Action::DetachSocket { slot, worker } => {
                    if slot + 1 == self.sockets.len() {
                        if let Some(l) = self.sockets.pop() {
                            self.detached.insert(worker, l);
                        }
                    }
                }
                Action::CloseSocket(worker) => drop(self.detached.remove(&worker)),
                Action::Steer(n) => self.steer(n),
                Action::SampleRss(id) => {
                    if let Some(rss) = self.procs.get(&id).and_then(Proc::rss) {
                        self.pool.handle(Event::Rss(id, rss), now);
                    }
                }
                Action::ProbeQueue(id) => {
                    let len = self
                        .detached
                        .get(&id)
                        .and_then(|l| accept_queue_len(l.raw_fd()));
                    self.pool.handle(Event::QueueLen(id, len), now);
                }
                Action::CountRestart(reason) => count_restart(&self.metrics, reason),
                Action::Log(level, msg) => log(level.as_str(), &msg),
                Action::Notify(note) => {
                    crate::systemd::notify(&self.status(note));
                }
                Action::Exit(code) => {
                    // Killed or gone: reap whatever is left.
                    for (_, mut p) in self.procs.drain() {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                    }
                    return Some(code);
                }
            }
        }
        None
    }

    /// What systemd hears for `note`.
    fn status(&self, note: Notify) -> String {
        let serving = |n: usize| {
            let s = if n == 1 { "" } else { "s" };
            format!("serving on {} with {n} worker{s}", self.url)
        };
        match note {
            Notify::Ready { workers } => format!("READY=1\nSTATUS={}", serving(workers)),
            Notify::Workers(n) => format!("STATUS={}", serving(n)),
            Notify::Reloading(reason) => format!(
                "{}\nSTATUS=replacing workers ({})",
                cormorant_server::systemd::reloading(),
                reason.as_str()
            ),
            Notify::Stopping { draining: true } => format!(
                "STOPPING=1\nSTATUS=draining for {}s, then stopping",
                self.config.drain_delay.as_secs_f64()
            ),
            Notify::Stopping { draining: false } => format!("STOPPING=1\n{STOPPING_STATUS}"),
            Notify::Drained => STOPPING_STATUS.to_owned(),
        }
    }

    /// Starts a worker on slot `slot`'s socket.
    fn spawn(&mut self, slot: usize, max_requests: Option<u64>) -> std::io::Result<Proc> {
        let listener = self
            .sockets
            .get(slot)
            .cloned()
            .ok_or_else(|| std::io::Error::other("no socket for the slot"))?;
        let id = slot + 1;
        let mut cfg = self.config.clone();
        cfg.workers = 1;
        cfg.reload = false;
        cfg.fd = Some(listener.raw_fd());
        cfg.uds = None;
        cfg.pid_file = None;
        cfg.workers_lifetime = None;
        cfg.workers_max_rss = None;
        // The pool chose this worker's limit (the jitter applied).
        cfg.limit_max_requests_jitter = 0;
        cfg.limit_max_requests = max_requests;
        // With socket activation, every worker serves every passed socket.
        let lfds: Vec<RawFd> = if self.activated.is_empty() {
            vec![listener.raw_fd()]
        } else {
            cfg.fd = None;
            self.activated.iter().map(|l| l.raw_fd()).collect()
        };
        let json = serde_json::to_string(&cfg).map_err(std::io::Error::other)?;
        let (ctl_read, ctl_write) = crate::sys::pipe()?;
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
        if !self.activated.is_empty() {
            let list: Vec<String> = lfds.iter().map(RawFd::to_string).collect();
            cmd.env(ENV_LISTEN_FDS, list.join(","));
        }
        // Taken out of our environment at startup already; never a
        // worker's, whatever embedded us.
        for name in cormorant_server::systemd::VARIABLES {
            cmd.env_remove(name);
        }
        // Every other descriptor of ours is close-on-exec, so the worker
        // inherits just its own listeners and its own pipe (and the metrics
        // region); it gets SIGTERM if the supervisor dies.
        let inherited = lfds.into_iter().chain([wfd]).chain(mfd).collect();
        crate::sys::inherit_fds_and_parent_death(&mut cmd, inherited);
        let child = cmd.spawn()?;
        drop(ctl_write);
        Ok(Proc {
            child,
            ctl: Some(ctl_read),
        })
    }

    /// SIGTTIN: a socket for one more worker (a new SO_REUSEPORT socket on
    /// the same port, or the shared listener).
    fn open_socket(&self) -> Result<Arc<Listener>, String> {
        let first = self.sockets.first().ok_or("no socket")?;
        if !self.reuse_port {
            return Ok(first.clone());
        }
        let mut same_port = self.config.clone();
        same_port.port = first.tcp_port().unwrap_or(self.config.port);
        Listener::bind_reuse_port(&same_port, true)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// Points the SO_REUSEPORT group's steering program at the first `n`
    /// sockets. The kernel numbers a group's sockets in the order they
    /// joined and closing the last one renumbers nothing, so index i is
    /// slot i: the pool only ever adds at the end and removes the last slot.
    fn steer(&self, n: usize) {
        if !self.reuse_port {
            return;
        }
        let Some(first) = self.sockets.first() else {
            return;
        };
        if let Err(e) = attach_steering(first.raw_fd(), n as u32) {
            log(
                "warning",
                &format!(
                    "cannot attach the SO_REUSEPORT steering program ({e}); removing a \
                     worker may reset connections queued on its socket"
                ),
            );
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(sig) => format!("signal {sig}"),
        None => status.to_string(),
    }
}

/// Attaches a classic BPF program to the SO_REUSEPORT group of `fd` that
/// picks one of its first `n` sockets at random (`SO_ATTACH_REUSEPORT_CBPF`,
/// Linux 4.5).
fn attach_steering(fd: RawFd, n: u32) -> std::io::Result<()> {
    // Not in every libc version's constants: linux/filter.h.
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
    crate::sys::attach_reuseport_cbpf(fd, &mut prog)
}

/// Connections waiting in a TCP listener's accept queue (TCP_INFO reports
/// it as `tcpi_unacked` for a listening socket).
fn accept_queue_len(fd: RawFd) -> Option<u32> {
    crate::sys::tcp_info(fd).map(|info| info.tcpi_unacked)
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
