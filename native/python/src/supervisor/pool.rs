//! The supervisor's policy, sans-IO: which workers to start, replace,
//! signal and kill, and when. Events come in with the time (`now`, core's
//! [`Instant`]); actions come out for the process layer
//! ([`super::Supervisor`]) to carry out. No processes, sockets, clock or
//! logging here, so every policy is tested on a virtual clock below.
//!
//! # Call order (the process layer's duties)
//! 1. [`Pool::new`] queues the first workers' spawns.
//! 2. Feed what happened with [`Pool::handle`] (a worker's control byte,
//!    its exit, a signal, an RSS sample, a socket's queue length...), and
//!    call [`Pool::handle_timeout`] at [`Pool::poll_timeout`] (or on every
//!    tick: an early call does nothing).
//! 3. Carry out every [`Pool::poll_action`] in order; a spawn that fails is
//!    fed back as [`Event::SpawnFailed`], a slot's socket as
//!    [`Event::SlotOpened`] or [`Event::SlotFailed`].
//! 4. Stop at [`Action::Exit`].
//!
//! The policies: a slot's worker that dies is replaced (a crash loop stops
//! the server; a worker that could not boot stops it at once); a
//! replacement (SIGHUP, `--limit-max-requests` with jitter,
//! `--workers-lifetime`, `--workers-max-rss`) starts beside the old worker
//! and takes over only when ready, one at a time; SIGTTIN adds a slot,
//! SIGTTOU drains and removes the last; one stop request is one graceful
//! stop, a second one [`STOP_SIGNAL_GAP`] or more later drops connections,
//! and the graceful timeout ends in SIGKILL. Along the way it says what the
//! service manager should hear ([`Notify`]): ready once every slot's worker
//! is, reloading until every replacement of a rolling restart is ready,
//! stopping as soon as a stop begins.

use std::collections::VecDeque;
use std::time::Duration;

use cormorant_core::time::Instant;

/// A worker that dies within this long of starting (or before it is ready)
/// counts as a crash at startup; [`MAX_QUICK_CRASHES`] in a row stop the
/// server instead of looping forever.
pub(crate) const CRASH_WINDOW: Duration = Duration::from_secs(2);
/// Quick crashes in a row that stop the server.
pub(crate) const MAX_QUICK_CRASHES: u32 = 5;
/// How long a replacement may take to become ready before it is given up
/// (the old worker keeps serving).
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often each worker's resident memory is sampled (`--workers-max-rss`).
pub(crate) const RSS_INTERVAL: Duration = Duration::from_secs(1);
/// SIGTTOU: after new connections are steered away from the socket being
/// removed, handshakes already under way may still land on it; they take
/// one round trip, so this is ample.
pub(crate) const DRAIN_SETTLE: Duration = Duration::from_millis(200);
/// SIGTTOU: the longest wait for the removed socket's queue to empty.
pub(crate) const DRAIN_MAX: Duration = Duration::from_secs(10);
/// Extra time after `--timeout-graceful-shutdown` for a worker's lifespan
/// shutdown before it is killed.
pub(crate) const LIFESPAN_MARGIN: Duration = Duration::from_secs(5);
/// How long a hung worker gets to write its threads' stacks (asked for
/// with [`Sig::DumpStacks`]) before it is killed.
pub(crate) const STACK_DUMP_GRACE: Duration = Duration::from_millis(500);
/// Stop signals closer together than this are copies of one stop request
/// (the same group signal arriving twice, or two tools sending it); one
/// this long after the first is a deliberate second request that drops
/// connections. Workers without a supervisor apply the same gap
/// (`_cormorant.STOP_SIGNAL_GAP`).
pub(crate) const STOP_SIGNAL_GAP: Duration = Duration::from_secs(1);

/// A worker process, numbered by the pool (never reused).
pub(crate) type WorkerId = u64;

/// Why a worker is being replaced (it appears in the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Sighup,
    MaxRequests,
    Lifetime,
    MaxRss,
    /// `--reload`: a watched file changed.
    FileChange,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Sighup => "SIGHUP",
            Self::MaxRequests => "max requests",
            Self::Lifetime => "lifetime",
            Self::MaxRss => "max rss",
            Self::FileChange => "file change",
        }
    }

    /// The `reason` label of `cormorant_worker_restarts_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Sighup => "sighup",
            Self::MaxRequests => "max_requests",
            Self::Lifetime => "lifetime",
            Self::MaxRss => "max_rss",
            Self::FileChange => "reload",
        }
    }

    fn level(self) -> Level {
        match self {
            Self::MaxRss => Level::Warning,
            _ => Level::Info,
        }
    }

    /// A rolling restart of every worker, asked for from outside: the
    /// service manager hears it as a reload. (Recycling one worker is not.)
    fn is_reload(self) -> bool {
        matches!(self, Self::Sighup | Self::FileChange)
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exit {
    /// Its exit code, if it exited (not killed by a signal).
    pub(crate) code: Option<i32>,
    /// How it ended, for the log (`exit status: 1`, `signal 9`).
    pub(crate) text: String,
}

impl Exit {
    fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// What happened, for [`Pool::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The worker accepts connections (its READY control byte).
    Ready(WorkerId),
    /// The worker's event loop turned (its ALIVE byte, with
    /// `--timeout-worker-healthcheck`).
    Alive(WorkerId),
    /// The worker reached `--limit-max-requests` (its RECYCLE byte).
    WantsRecycle(WorkerId),
    /// The worker process ended.
    Exited(WorkerId, Exit),
    /// The worker's resident memory, in bytes ([`Action::SampleRss`]).
    Rss(WorkerId, u64),
    /// The accept queue of a draining worker's socket
    /// ([`Action::ProbeQueue`]); None when it cannot be read.
    QueueLen(WorkerId, Option<u32>),
    /// [`Action::Spawn`] failed.
    SpawnFailed(WorkerId, String),
    /// [`Action::OpenSlot`] has its socket.
    SlotOpened(usize),
    /// [`Action::OpenSlot`] could not get a socket.
    SlotFailed(usize, String),
    /// SIGTERM (`drain`: the workers wait `--drain-delay` first) or SIGINT
    /// (no delay).
    Stop { drain: bool },
    /// SIGHUP: replace every worker.
    Reload,
    /// `--reload`: a watched file changed; replace every worker (and start
    /// one where the app had failed to load).
    FileChanged,
    /// SIGTTIN: one more worker.
    Add,
    /// SIGTTOU: one worker less.
    Remove,
}

/// A signal for a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sig {
    /// SIGTERM: stop gracefully after the drain delay (the server's stop).
    Term,
    /// SIGINT: stop gracefully now (a worker replaced or removed, or a stop
    /// that skips the drain delay).
    Int,
    /// Close every connection now.
    Quit,
    /// Write the Python stack of every thread to the log (SIGUSR1, which a
    /// worker's `faulthandler` answers even while its loop is blocked).
    DumpStacks,
}

/// A log line's level (Python logging's names, lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

/// What the service manager should hear (systemd's `sd_notify`), for
/// [`Action::Notify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notify {
    /// Every slot's worker accepts connections: at the start, and when a
    /// rolling restart is over (`READY=1`).
    Ready { workers: usize },
    /// The number of workers changed while serving (a status line).
    Workers(usize),
    /// A rolling restart began (`RELOADING=1`).
    Reloading(Reason),
    /// The stop began (`STOPPING=1`); `draining` while the workers wait out
    /// `--drain-delay`.
    Stopping { draining: bool },
    /// The drain delay is over, or SIGINT ended it: the workers stop now.
    Drained,
}

/// What the service manager was last told about serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announced {
    /// Nothing yet: some first worker is not ready.
    Starting,
    /// Ready, with this many workers.
    Serving(usize),
    /// A rolling restart is under way.
    Reloading,
}

/// What the process layer must do, from [`Pool::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start worker `worker` on slot `slot`'s socket, numbered `slot + 1`,
    /// with this `--limit-max-requests` (the jitter applied).
    Spawn {
        worker: WorkerId,
        slot: usize,
        max_requests: Option<u64>,
    },
    /// Send the worker a signal.
    Signal(WorkerId, Sig),
    /// SIGKILL the worker and reap it.
    Kill(WorkerId),
    /// Get a socket for new slot `slot` (a new SO_REUSEPORT socket, or the
    /// shared listener); answer with [`Event::SlotOpened`] or
    /// [`Event::SlotFailed`].
    OpenSlot(usize),
    /// The last slot's socket now belongs to its draining worker (kept open
    /// until [`Action::CloseSocket`]).
    DetachSocket { slot: usize, worker: WorkerId },
    /// Close the socket of a drained worker that has exited.
    CloseSocket(WorkerId),
    /// Route new connections to the first `n` slots' sockets.
    Steer(usize),
    /// Measure the worker's resident memory ([`Event::Rss`]).
    SampleRss(WorkerId),
    /// Read the accept queue of a draining worker's socket
    /// ([`Event::QueueLen`]).
    ProbeQueue(WorkerId),
    /// Count a worker restart under `reason` (metrics).
    CountRestart(&'static str),
    /// Log a line.
    Log(Level, String),
    /// Tell the service manager.
    Notify(Notify),
    /// Every worker is gone: exit with this code.
    Exit(i32),
}

/// The settings the policies follow: `workers` at the start;
/// `respawn_failed` (`--respawn-failed-workers`: else a dead worker stops
/// the server); `max_requests` and `max_requests_jitter` (each worker gets
/// 0..=jitter more); `lifetime` (`--workers-lifetime`, each worker up to
/// 10% more); `max_rss` (`--workers-max-rss`, in bytes);
/// `graceful_timeout` (`--timeout-graceful-shutdown`, plus
/// [`LIFESPAN_MARGIN`] before SIGKILL; None waits); `drain_delay`
/// (`--drain-delay`: a SIGTERM stop waits that much longer before
/// SIGKILL); `hung_timeout` (`--timeout-worker-healthcheck`: a ready
/// worker silent that long is replaced); `reuse_port`: each slot
/// has its own SO_REUSEPORT socket, which a removed slot drains first (else
/// all share one listener); `reload` (`--reload`): a worker that exits or
/// cannot load the app is not replaced until a watched file changes, and a
/// replacement that cannot load it leaves the old worker serving.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policy {
    pub(crate) workers: usize,
    pub(crate) respawn_failed: bool,
    pub(crate) max_requests: Option<u64>,
    pub(crate) max_requests_jitter: u64,
    pub(crate) lifetime: Option<Duration>,
    pub(crate) max_rss: Option<u64>,
    pub(crate) graceful_timeout: Option<Duration>,
    pub(crate) drain_delay: Duration,
    pub(crate) hung_timeout: Option<Duration>,
    pub(crate) reuse_port: bool,
    pub(crate) reload: bool,
}

/// Exit code of a worker that could not boot.
const WORKER_BOOT_ERROR: i32 = crate::worker_protocol::WORKER_BOOT_ERROR;

#[derive(Debug, Clone)]
struct Worker {
    id: WorkerId,
    /// Its number in logs and process titles: its slot's, 1-based.
    number: usize,
    /// Its process id, once the process layer said ([`Pool::set_pid`]).
    pid: u32,
    started: Instant,
    ready: bool,
    /// When `--workers-lifetime` asks for its replacement.
    recycle_at: Option<Instant>,
    /// Its last sign of life: READY, then each ALIVE byte.
    last_alive: Instant,
    /// Found hung: when it is killed, once its stacks were asked for.
    kill_hung_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Slot {
    worker: Option<Worker>,
    /// The replacement being started, and why.
    next: Option<(Worker, Reason)>,
    /// A replacement is wanted, not yet started.
    want: Option<Reason>,
}

#[derive(Debug)]
struct Draining {
    worker: Worker,
    since: Instant,
    term_sent: bool,
}

#[derive(Debug)]
struct Stopping {
    first: Instant,
    /// When the workers' drain delay ends (a SIGTERM stop, no SIGINT
    /// since; the workers time it themselves): a SIGINT before then ends
    /// it, and the service manager's status changes then. None without
    /// one.
    drain_ends: Option<Instant>,
    escalated: bool,
    kill_at: Option<Instant>,
    code: i32,
    /// Workers not exited yet.
    alive: Vec<WorkerId>,
}

/// The worker pool. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Pool {
    policy: Policy,
    slots: Vec<Slot>,
    /// Old workers told to stop, waiting for them to exit.
    retiring: Vec<Worker>,
    draining: Vec<Draining>,
    /// SIGTTIN requests not served yet (they wait for draining to end).
    pending_add: usize,
    /// The slot whose socket is being opened.
    opening: Option<usize>,
    quick_crashes: u32,
    rng: u64,
    next_id: WorkerId,
    next_rss: Option<Instant>,
    stopping: Option<Stopping>,
    announced: Announced,
    actions: VecDeque<Action>,
}

impl Pool {
    /// A pool of `policy.workers` slots whose sockets are open, at `now`;
    /// `seed` spreads the jitter.
    pub(crate) fn new(policy: Policy, now: Instant, seed: u64) -> Self {
        let mut pool = Self {
            next_rss: policy.max_rss.map(|_| now + RSS_INTERVAL),
            slots: Vec::new(),
            retiring: Vec::new(),
            draining: Vec::new(),
            pending_add: 0,
            opening: None,
            quick_crashes: 0,
            rng: seed | 1,
            next_id: 1,
            stopping: None,
            announced: Announced::Starting,
            actions: VecDeque::new(),
            policy,
        };
        for i in 0..pool.policy.workers {
            pool.slots.push(Slot::default());
            let w = pool.spawn(i, now);
            pool.slots[i].worker = Some(w);
        }
        pool.actions.push_back(Action::Steer(pool.slots.len()));
        pool
    }

    /// Tells the pool the process id of a worker it spawned, for its log
    /// lines.
    pub(crate) fn set_pid(&mut self, id: WorkerId, pid: u32) {
        let workers = self
            .slots
            .iter_mut()
            .flat_map(|s| s.worker.iter_mut().chain(s.next.iter_mut().map(|(w, _)| w)));
        if let Some(w) = workers.into_iter().find(|w| w.id == id) {
            w.pid = pid;
        }
    }

    /// Workers the pool is meant to run now (its slots).
    pub(crate) fn workers(&self) -> usize {
        self.slots.len()
    }

    /// The next thing to do, in order.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn log(&mut self, level: Level, msg: String) {
        self.actions.push_back(Action::Log(level, msg));
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

    /// Queues the spawn of a worker for slot `slot`.
    fn spawn(&mut self, slot: usize, now: Instant) -> Worker {
        let id = self.next_id;
        self.next_id += 1;
        let jitter = self.policy.max_requests_jitter;
        let max_requests = self.policy.max_requests.map(|n| {
            n + if jitter > 0 {
                self.random() % (jitter + 1)
            } else {
                0
            }
        });
        let recycle_at = self.policy.lifetime.map(|l| {
            // Up to 10% later, so workers started together drift apart.
            let extra = l.mul_f64((self.random() % 1000) as f64 / 10_000.0);
            now + l + extra
        });
        self.actions.push_back(Action::Spawn {
            worker: id,
            slot,
            max_requests,
        });
        Worker {
            id,
            number: slot + 1,
            pid: 0,
            started: now,
            ready: false,
            recycle_at,
            last_alive: now,
            kill_hung_at: None,
        }
    }

    /// Feeds one event at `now`.
    pub(crate) fn handle(&mut self, event: Event, now: Instant) {
        if self.stopping.is_some() {
            self.handle_while_stopping(event, now);
            return;
        }
        match event {
            Event::Ready(id) => self.on_ready(id, now),
            Event::Alive(id) => {
                if let Some(w) = self
                    .slots
                    .iter_mut()
                    .find_map(|s| s.worker.as_mut().filter(|w| w.id == id))
                {
                    w.last_alive = now;
                }
            }
            Event::WantsRecycle(id) => {
                if let Some(slot) = self
                    .slots
                    .iter_mut()
                    .find(|s| s.worker.as_ref().is_some_and(|w| w.id == id))
                {
                    if slot.want.is_none() && slot.next.is_none() {
                        slot.want = Some(Reason::MaxRequests);
                    }
                }
            }
            Event::Exited(id, exit) => self.on_exit(id, &exit, now),
            Event::Rss(id, bytes) => self.on_rss(id, bytes),
            Event::QueueLen(id, len) => {
                if let Some(d) = self.draining.iter_mut().find(|d| d.worker.id == id) {
                    let waited = now.saturating_duration_since(d.since);
                    if !d.term_sent && (len == Some(0) || waited > DRAIN_MAX) {
                        d.term_sent = true;
                        self.actions.push_back(Action::Signal(id, Sig::Int));
                    }
                }
            }
            Event::SpawnFailed(id, error) => self.on_spawn_failed(id, &error, now),
            Event::SlotOpened(slot) => {
                self.opening = None;
                let w = self.spawn(slot, now);
                self.slots.push(Slot {
                    worker: Some(w),
                    ..Slot::default()
                });
                self.actions.push_back(Action::Steer(self.slots.len()));
                let n = self.slots.len();
                self.log(
                    Level::Info,
                    format!("SIGTTIN: adding worker {n} (now {n} workers)"),
                );
            }
            Event::SlotFailed(_, error) => {
                self.opening = None;
                self.log(
                    Level::Error,
                    format!("SIGTTIN: cannot add a worker: {error}"),
                );
            }
            Event::Stop { drain } => self.stop(0, drain, now),
            Event::Reload => {
                self.log(
                    Level::Info,
                    "SIGHUP: replacing every worker, one at a time".into(),
                );
                self.announce_reload(Reason::Sighup);
                for slot in &mut self.slots {
                    slot.want = Some(Reason::Sighup);
                }
            }
            Event::FileChanged => {
                self.announce_reload(Reason::FileChange);
                for i in 0..self.slots.len() {
                    let slot = &self.slots[i];
                    if slot.worker.is_none() && slot.next.is_none() {
                        // The app had failed to load: try the new code now.
                        let w = self.spawn(i, now);
                        self.slots[i].worker = Some(w);
                    } else {
                        self.slots[i].want = Some(Reason::FileChange);
                    }
                }
            }
            Event::Add => self.pending_add += 1,
            Event::Remove => self.remove_slot(now),
        }
        self.advance(now);
        self.announce();
    }

    /// A rolling restart begins: the service manager hears of it when it
    /// was told the service is ready (during startup, readiness simply
    /// waits for the new workers).
    fn announce_reload(&mut self, reason: Reason) {
        if matches!(self.announced, Announced::Serving(_)) {
            self.announced = Announced::Reloading;
            self.actions
                .push_back(Action::Notify(Notify::Reloading(reason)));
        }
    }

    /// Tells the service manager what changed: ready once every slot's
    /// worker is and no rolling restart is left to finish (a replacement
    /// that fails leaves the old worker, which counts as done); the number
    /// of workers while serving.
    fn announce(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let workers = self.slots.len();
        let ready = self
            .slots
            .iter()
            .all(|s| s.worker.as_ref().is_some_and(|w| w.ready));
        let reloading = self.slots.iter().any(|s| {
            s.want.is_some_and(Reason::is_reload)
                || s.next.as_ref().is_some_and(|(_, r)| r.is_reload())
        });
        let note = match self.announced {
            Announced::Starting | Announced::Reloading if ready && !reloading => {
                Notify::Ready { workers }
            }
            Announced::Serving(n) if n != workers && ready => Notify::Workers(workers),
            _ => return,
        };
        self.announced = Announced::Serving(workers);
        self.actions.push_back(Action::Notify(note));
    }

    /// The earliest time [`Self::handle_timeout`] has something to do.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if let Some(s) = &self.stopping {
            return s.kill_at.into_iter().chain(s.drain_ends).min();
        }
        let replacements = self
            .slots
            .iter()
            .filter_map(|s| s.next.as_ref().map(|(w, _)| w.started + READY_TIMEOUT));
        let recycling = self.slots.iter().filter_map(|s| {
            s.worker
                .as_ref()
                .filter(|w| w.ready && s.want.is_none() && s.next.is_none())
                .and_then(|w| w.recycle_at)
        });
        let draining = self
            .draining
            .iter()
            .filter(|d| !d.term_sent)
            .map(|d| d.since + DRAIN_SETTLE);
        let hung = self.slots.iter().filter_map(|s| {
            let w = s.worker.as_ref().filter(|w| w.ready)?;
            w.kill_hung_at
                .or_else(|| self.policy.hung_timeout.map(|t| w.last_alive + t))
        });
        replacements
            .chain(recycling)
            .chain(draining)
            .chain(hung)
            .chain(self.next_rss)
            .min()
    }

    /// Acts on every deadline at or before `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(s) = &mut self.stopping {
            let drained = s.drain_ends.take_if(|t| now >= *t).is_some();
            let kill = s.kill_at.take_if(|t| now >= *t).is_some();
            let alive = if kill {
                std::mem::take(&mut s.alive)
            } else {
                Vec::new()
            };
            let code = s.code;
            if drained {
                self.actions.push_back(Action::Notify(Notify::Drained));
            }
            if kill {
                self.log(
                    Level::Warning,
                    format!(
                        "killing {} worker(s) that did not stop in time",
                        alive.len()
                    ),
                );
                self.actions.extend(alive.into_iter().map(Action::Kill));
                self.actions.push_back(Action::Exit(code));
            }
            return;
        }
        for i in 0..self.slots.len() {
            let late = self.slots[i]
                .next
                .as_ref()
                .is_some_and(|(w, _)| now >= w.started + READY_TIMEOUT);
            if late {
                let (w, _) = self.slots[i].next.take().expect("checked above");
                self.actions.push_back(Action::Kill(w.id));
                self.log(
                    Level::Error,
                    format!(
                        "the replacement of worker {} was not ready after {} s; keeping the \
                         old worker",
                        w.number,
                        READY_TIMEOUT.as_secs()
                    ),
                );
                self.keep_old_worker(i, now);
            }
            let slot = &mut self.slots[i];
            if let Some(w) = &slot.worker {
                let due = w.recycle_at.is_some_and(|t| now >= t);
                if due && w.ready && slot.want.is_none() && slot.next.is_none() {
                    slot.want = Some(Reason::Lifetime);
                }
            }
            self.check_hung(i, now);
        }
        if self.next_rss.is_some_and(|t| now >= t) {
            self.next_rss = Some(now + RSS_INTERVAL);
            let sample: Vec<WorkerId> = self
                .slots
                .iter()
                .filter(|s| s.want.is_none() && s.next.is_none())
                .filter_map(|s| s.worker.as_ref().filter(|w| w.ready).map(|w| w.id))
                .collect();
            self.actions
                .extend(sample.into_iter().map(Action::SampleRss));
        }
        let probes: Vec<WorkerId> = self
            .draining
            .iter()
            .filter(|d| !d.term_sent && now >= d.since + DRAIN_SETTLE)
            .map(|d| d.worker.id)
            .collect();
        self.actions
            .extend(probes.into_iter().map(Action::ProbeQueue));
        self.advance(now);
        self.announce();
    }

    /// What follows any change: slots added once draining is over, and one
    /// rolling replacement at a time (starting Python and the app costs CPU
    /// the serving workers need).
    fn advance(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        // A new socket joins the SO_REUSEPORT group at the end: wait until
        // removed sockets are closed so indices stay in slot order.
        if self.pending_add > 0 && self.draining.is_empty() && self.opening.is_none() {
            self.pending_add -= 1;
            let slot = self.slots.len();
            self.opening = Some(slot);
            self.actions.push_back(Action::OpenSlot(slot));
        }
        if self.slots.iter().any(|s| s.next.is_some()) {
            return;
        }
        let Some(i) = self
            .slots
            .iter()
            .position(|s| s.want.is_some() && s.worker.as_ref().is_some_and(|w| w.ready))
        else {
            return;
        };
        let Some(reason) = self.slots[i].want.take() else {
            return;
        };
        let old = self.slots[i].worker.as_ref().map_or(0, |w| w.pid);
        self.log(
            reason.level(),
            format!(
                "{}: starting a replacement for worker {} (pid {old})",
                reason.as_str(),
                i + 1
            ),
        );
        let w = self.spawn(i, now);
        self.slots[i].next = Some((w, reason));
    }

    /// `--timeout-worker-healthcheck`: a ready worker whose loop has not
    /// turned for that long is asked for its stacks, then killed and
    /// replaced [`STACK_DUMP_GRACE`] later.
    fn check_hung(&mut self, i: usize, now: Instant) {
        let Some(timeout) = self.policy.hung_timeout else {
            return;
        };
        let Some(w) = self.slots[i].worker.as_mut().filter(|w| w.ready) else {
            return;
        };
        match w.kill_hung_at {
            None if now >= w.last_alive + timeout => {
                w.kill_hung_at = Some(now + STACK_DUMP_GRACE);
                let (id, number, pid) = (w.id, w.number, w.pid);
                let silent = now.saturating_duration_since(w.last_alive);
                self.actions.push_back(Action::Signal(id, Sig::DumpStacks));
                self.log(
                    Level::Error,
                    format!(
                        "worker {number} (pid {pid}) is hung: its event loop has not turned for                          {:.1} s (--timeout-worker-healthcheck); the stack of each of its threads                          follows, then it is replaced",
                        silent.as_secs_f64()
                    ),
                );
            }
            Some(at) if now >= at => {
                let w = self.slots[i].worker.take().expect("checked above");
                self.actions.push_back(Action::Kill(w.id));
                self.actions.push_back(Action::CountRestart("hung"));
                self.log(
                    Level::Warning,
                    format!(
                        "killed hung worker {} (pid {}); starting a new one",
                        w.number, w.pid
                    ),
                );
                // A replacement already starting (a rolling restart) takes
                // the slot at once when ready; else a new one.
                if self.slots[i].next.is_none() {
                    let w = self.spawn(i, now);
                    self.slots[i].worker = Some(w);
                }
            }
            _ => {}
        }
    }

    fn on_ready(&mut self, id: WorkerId, now: Instant) {
        let Some(i) = self.slots.iter().position(|s| {
            s.worker.as_ref().is_some_and(|w| w.id == id)
                || s.next.as_ref().is_some_and(|(w, _)| w.id == id)
        }) else {
            return;
        };
        let slot = &mut self.slots[i];
        if let Some(w) = slot.worker.as_mut().filter(|w| w.id == id) {
            w.ready = true;
            w.last_alive = now;
            return;
        }
        let Some((mut next, reason)) = slot.next.take() else {
            return;
        };
        next.ready = true;
        next.last_alive = now;
        let pid = next.pid;
        let old = slot.worker.replace(next);
        match old {
            Some(old) => {
                self.actions.push_back(Action::Signal(old.id, Sig::Int));
                self.log(
                    reason.level(),
                    format!(
                        "worker {} (pid {}) replaced by pid {pid} ({})",
                        old.number,
                        old.pid,
                        reason.as_str()
                    ),
                );
                self.retiring.push(old);
            }
            None => self.log(
                reason.level(),
                format!(
                    "worker {} (pid {pid}) is ready ({})",
                    i + 1,
                    reason.as_str()
                ),
            ),
        }
        self.actions.push_back(Action::CountRestart(reason.label()));
    }

    fn on_exit(&mut self, id: WorkerId, exit: &Exit, now: Instant) {
        if let Some(p) = self.retiring.iter().position(|w| w.id == id) {
            let w = self.retiring.remove(p);
            self.log(
                Level::Debug,
                format!(
                    "old worker {} (pid {}) exited ({})",
                    w.number, w.pid, exit.text
                ),
            );
            return;
        }
        if let Some(p) = self.draining.iter().position(|d| d.worker.id == id) {
            let w = self.draining.remove(p).worker;
            self.log(
                Level::Info,
                format!(
                    "worker {} (pid {}) stopped ({})",
                    w.number, w.pid, exit.text
                ),
            );
            self.actions.push_back(Action::CloseSocket(id));
            return;
        }
        let Some(i) = self.slots.iter().position(|s| {
            s.worker.as_ref().is_some_and(|w| w.id == id)
                || s.next.as_ref().is_some_and(|(w, _)| w.id == id)
        }) else {
            return;
        };
        if let Some((w, _)) = self.slots[i].next.take_if(|(w, _)| w.id == id) {
            if self.policy.reload {
                self.log(
                    Level::Error,
                    format!(
                        "the changed app did not load ({}); the old worker keeps serving, \
                         waiting for a change",
                        exit.text
                    ),
                );
                self.slots[i].want = None;
                return;
            }
            self.log(
                Level::Error,
                format!(
                    "the replacement of worker {} (pid {}) exited before it was ready ({}); \
                     keeping the old worker",
                    i + 1,
                    w.pid,
                    exit.text
                ),
            );
            self.keep_old_worker(i, now);
            return;
        }
        let Some(w) = self.slots[i].worker.take() else {
            return;
        };
        let n = i + 1;
        let id = w.pid;
        if self.policy.reload {
            // Until a file changes, a new worker would fail the same way.
            let msg = if exit.code == Some(WORKER_BOOT_ERROR) {
                "the app failed to load; waiting for a change to retry".to_owned()
            } else {
                format!("the worker exited ({}); waiting for a change", exit.text)
            };
            return self.log(Level::Warning, msg);
        }
        if exit.code == Some(WORKER_BOOT_ERROR) {
            // The worker said why on stderr; respawning cannot help.
            self.log(
                Level::Critical,
                format!("worker {n} (pid {id}) failed to boot; stopping the server"),
            );
            return self.stop(1, false, now);
        }
        if exit.success() {
            self.log(
                Level::Info,
                format!("worker {n} (pid {id}) exited; starting a new one"),
            );
            self.actions.push_back(Action::CountRestart("exited"));
            self.quick_crashes = 0;
        } else {
            self.actions.push_back(Action::CountRestart("crashed"));
            if !self.policy.respawn_failed {
                self.log(
                    Level::Critical,
                    format!(
                        "worker {n} (pid {id}) died ({}) and --respawn-failed-workers is off; \
                         stopping the server",
                        exit.text
                    ),
                );
                return self.stop(1, false, now);
            }
            let lived = now.saturating_duration_since(w.started);
            if lived < CRASH_WINDOW || !w.ready {
                self.quick_crashes += 1;
            } else {
                self.quick_crashes = 0;
            }
            if self.quick_crashes >= MAX_QUICK_CRASHES {
                let n = self.quick_crashes;
                self.log(
                    Level::Critical,
                    format!(
                        "workers keep dying right after they start ({n} in a row); stopping \
                         the server"
                    ),
                );
                return self.stop(1, false, now);
            }
            self.log(
                Level::Warning,
                format!(
                    "worker {n} (pid {id}) died ({}); starting a new one (crashed)",
                    exit.text
                ),
            );
        }
        // A replacement already starting takes over when ready.
        if self.slots[i].next.is_none() {
            let w = self.spawn(i, now);
            self.slots[i].worker = Some(w);
        }
    }

    fn on_spawn_failed(&mut self, id: WorkerId, error: &str, now: Instant) {
        for slot in &mut self.slots {
            if slot.next.as_ref().is_some_and(|(w, _)| w.id == id) {
                slot.next = None;
                self.log(
                    Level::Error,
                    format!("cannot start a replacement worker: {error}"),
                );
                return;
            }
            if slot.worker.as_ref().is_some_and(|w| w.id == id) {
                slot.worker = None;
                self.log(Level::Critical, format!("cannot start worker: {error}"));
                return self.stop(1, false, now);
            }
        }
    }

    fn on_rss(&mut self, id: WorkerId, bytes: u64) {
        let Some(max) = self.policy.max_rss else {
            return;
        };
        if bytes <= max {
            return;
        }
        let Some(i) = self
            .slots
            .iter()
            .position(|s| s.worker.as_ref().is_some_and(|w| w.id == id))
        else {
            return;
        };
        if self.slots[i].want.is_some() || self.slots[i].next.is_some() {
            return;
        }
        self.slots[i].want = Some(Reason::MaxRss);
        let pid = self.slots[i].worker.as_ref().map_or(0, |w| w.pid);
        self.log(
            Level::Warning,
            format!(
                "worker {} (pid {pid}) uses {} MiB, above --workers-max-rss {}",
                i + 1,
                bytes / (1024 * 1024),
                max / (1024 * 1024)
            ),
        );
    }

    /// A replacement failed: the old worker stays, and is not asked to be
    /// replaced again for the same reason right away.
    fn keep_old_worker(&mut self, i: usize, now: Instant) {
        let lifetime = self.policy.lifetime;
        let slot = &mut self.slots[i];
        slot.want = None;
        if let (Some(w), Some(l)) = (&mut slot.worker, lifetime) {
            w.recycle_at = Some(now + l);
        }
    }

    /// SIGTTOU: removes the last slot without losing a connection. Its
    /// socket stops getting new connections (steering), its worker keeps
    /// accepting until the queue is empty, then stops; the socket closes
    /// after it exited. A shared listener stays open: the worker can stop
    /// at once.
    fn remove_slot(&mut self, now: Instant) {
        if self.slots.len() <= 1 {
            self.log(Level::Warning, "SIGTTOU: already down to one worker".into());
            return;
        }
        let Some(slot) = self.slots.pop() else { return };
        let index = self.slots.len();
        self.actions.push_back(Action::Steer(self.slots.len()));
        if let Some((next, _)) = slot.next {
            // Still booting: see `stop`.
            self.actions.push_back(Action::Signal(next.id, Sig::Term));
            self.retiring.push(next);
        }
        self.log(
            Level::Info,
            format!(
                "SIGTTOU: removing worker {} (now {} workers)",
                index + 1,
                self.slots.len()
            ),
        );
        let Some(worker) = slot.worker else { return };
        self.actions.push_back(Action::DetachSocket {
            slot: index,
            worker: worker.id,
        });
        let term_sent = !self.policy.reuse_port;
        if term_sent {
            self.actions.push_back(Action::Signal(worker.id, Sig::Int));
        }
        self.draining.push(Draining {
            worker,
            since: now,
            term_sent,
        });
    }

    /// Every worker, alive or starting.
    fn all_workers(&self) -> Vec<&Worker> {
        let mut all = Vec::new();
        for s in &self.slots {
            all.extend(s.worker.as_ref());
            all.extend(s.next.as_ref().map(|(w, _)| w));
        }
        all.extend(&self.retiring);
        all.extend(self.draining.iter().map(|d| &d.worker));
        all
    }

    /// Begins the stop: SIGTERM (`drain`) or SIGINT to every worker, then
    /// exit with `code` once they are gone (SIGKILL after the drain delay
    /// and the graceful timeout).
    fn stop(&mut self, code: i32, drain: bool, now: Instant) {
        // A worker still booting gets SIGTERM either way: before its loop
        // handles signals, SIGINT would end it with a KeyboardInterrupt
        // traceback, SIGTERM quietly.
        let signals: Vec<(WorkerId, Sig)> = self
            .all_workers()
            .into_iter()
            .map(|w| {
                let sig = if drain || !w.ready {
                    Sig::Term
                } else {
                    Sig::Int
                };
                (w.id, sig)
            })
            .collect();
        let alive: Vec<WorkerId> = signals.iter().map(|&(id, _)| id).collect();
        let delay = if drain {
            self.policy.drain_delay
        } else {
            Duration::ZERO
        };
        let draining = !delay.is_zero();
        self.actions
            .push_back(Action::Notify(Notify::Stopping { draining }));
        self.actions
            .extend(signals.into_iter().map(|(id, sig)| Action::Signal(id, sig)));
        if alive.is_empty() {
            self.actions.push_back(Action::Exit(code));
        }
        self.stopping = Some(Stopping {
            first: now,
            drain_ends: draining.then(|| now + delay),
            escalated: false,
            kill_at: self
                .policy
                .graceful_timeout
                .map(|g| now + delay + g + LIFESPAN_MARGIN),
            code,
            alive,
        });
    }

    fn handle_while_stopping(&mut self, event: Event, now: Instant) {
        let Some(s) = &mut self.stopping else { return };
        match event {
            Event::Exited(id, _) | Event::SpawnFailed(id, _) => {
                let before = s.alive.len();
                s.alive.retain(|&w| w != id);
                if before > 0 && s.alive.is_empty() {
                    let code = s.code;
                    self.actions.push_back(Action::Exit(code));
                }
            }
            // SIGINT during the drain delay ends it: the workers stop now,
            // and the graceful timeout counts from here.
            Event::Stop { drain: false } if s.drain_ends.is_some_and(|end| now < end) => {
                s.drain_ends = None;
                s.first = now;
                s.kill_at = self
                    .policy
                    .graceful_timeout
                    .map(|g| now + g + LIFESPAN_MARGIN);
                let alive = s.alive.clone();
                self.actions.push_back(Action::Notify(Notify::Drained));
                self.log(Level::Info, "SIGINT: ending the drain delay".into());
                self.actions
                    .extend(alive.into_iter().map(|id| Action::Signal(id, Sig::Int)));
            }
            // Copies of the first stop request change nothing; a second one
            // at least STOP_SIGNAL_GAP later drops connections.
            Event::Stop { .. }
                if !s.escalated && now.saturating_duration_since(s.first) >= STOP_SIGNAL_GAP =>
            {
                s.escalated = true;
                let alive = s.alive.clone();
                self.log(
                    Level::Warning,
                    "second stop signal: workers close every connection now".into(),
                );
                self.actions
                    .extend(alive.into_iter().map(|id| Action::Signal(id, Sig::Quit)));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
