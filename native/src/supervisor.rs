//! Several worker processes sharing one listener. The supervisor never
//! imports the application: it binds, starts the workers, forwards stop
//! signals and reports (and replaces) workers that die.

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::bridge::StartupError;
use crate::config::ServerConfig;
use crate::server::listener::Listener;

/// A worker that dies within this long of starting counts as a crash at
/// startup; this many in a row stop the server instead of looping forever.
const CRASH_WINDOW: Duration = Duration::from_secs(2);
const MAX_QUICK_CRASHES: u32 = 5;
/// Exit code of a worker that could not boot (`cormorant._worker`).
const WORKER_BOOT_ERROR: i32 = 3;

fn log(level: &str, msg: &str) {
    Python::with_gil(|py| {
        let r = py
            .import("logging")
            .and_then(|l| l.call_method1("getLogger", ("cormorant.error",)))
            .and_then(|l| l.call_method1(level, (msg,)));
        if r.is_err() {
            eprintln!("{msg}");
        }
    });
}

struct Slot {
    child: Child,
    started: Instant,
}

/// Runs the supervisor until SIGTERM/SIGINT. Returns the exit code.
pub(crate) fn supervise(py: Python<'_>, config: &ServerConfig) -> PyResult<i32> {
    let listeners = bind_all(config).map_err(StartupError::new_err)?;
    let mut child_jsons = Vec::with_capacity(listeners.len());
    for listener in &listeners {
        let fd = listener.raw_fd();
        // SAFETY: fd is our open listening socket; clearing FD_CLOEXEC only
        // lets the worker processes inherit it.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
        }
        let mut child_config = config.clone();
        child_config.workers = 1;
        child_config.fd = Some(fd);
        child_config.uds = None;
        child_jsons.push(
            serde_json::to_string(&child_config)
                .map_err(|e| StartupError::new_err(e.to_string()))?,
        );
    }
    let exe: String = py.import("sys")?.getattr("executable")?.extract()?;
    let metrics = start_metrics(config).map_err(StartupError::new_err)?;
    let metrics_fd = metrics.as_ref().map(|(region, _)| region.inheritable_fd());
    // Worker i serves listener i (or the one shared listener).
    let spawn = |i: usize| -> std::io::Result<Slot> {
        let mut command = Command::new(&exe);
        command
            .args([
                "-c",
                "from cormorant._worker import worker_main; worker_main()",
            ])
            .env(
                "CORMORANT_WORKER_CONFIG",
                &child_jsons[i % child_jsons.len()],
            );
        if let Some(fd) = metrics_fd {
            command
                .env("CORMORANT_METRICS_FD", fd.to_string())
                .env("CORMORANT_METRICS_SLOT", i.to_string());
        }
        let child = command.spawn()?;
        Ok(Slot {
            child,
            started: Instant::now(),
        })
    };

    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| StartupError::new_err(format!("cannot install signal handler: {e}")))?;
    }
    log(
        "info",
        &format!(
            "Cormorant supervisor (pid {}) serving on {} with {} workers",
            std::process::id(),
            listeners[0].url(),
            config.workers
        ),
    );
    let mut slots = Vec::with_capacity(config.workers);
    for i in 0..config.workers {
        slots.push(
            spawn(i).map_err(|e| StartupError::new_err(format!("cannot start worker: {e}")))?,
        );
    }
    let graceful = config.timeout_graceful_shutdown;
    let code = py.allow_threads(|| {
        let mut quick_crashes = 0;
        let mut boot_failed = false;
        loop {
            if term.load(Ordering::Relaxed) {
                stop_all(&mut slots, graceful);
                return if boot_failed { 1 } else { 0 };
            }
            for (i, slot) in slots.iter_mut().enumerate() {
                let Ok(Some(status)) = slot.child.try_wait() else {
                    continue;
                };
                let pid = slot.child.id();
                let lived = slot.started.elapsed();
                if status.code() == Some(WORKER_BOOT_ERROR) {
                    // The worker said why on stderr; respawning cannot help.
                    log(
                        "critical",
                        &format!("worker {pid} failed to boot; stopping the server"),
                    );
                    boot_failed = true;
                    term.store(true, Ordering::Relaxed);
                    break;
                }
                if status.success() {
                    log("info", &format!("worker {pid} exited; starting a new one"));
                    count_restart(&metrics, "exited");
                    quick_crashes = 0;
                } else {
                    count_restart(&metrics, "crashed");
                    log(
                        "error",
                        &format!("worker {pid} died ({status}); starting a new one"),
                    );
                    if lived < CRASH_WINDOW {
                        quick_crashes += 1;
                    } else {
                        quick_crashes = 0;
                    }
                }
                if quick_crashes >= MAX_QUICK_CRASHES {
                    log(
                        "critical",
                        "workers keep dying right after they start; stopping the server",
                    );
                    term.store(true, Ordering::Relaxed);
                    break;
                }
                match spawn(i) {
                    Ok(s) => *slot = s,
                    Err(e) => {
                        log("critical", &format!("cannot start worker: {e}"));
                        boot_failed = true;
                        term.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
            if term.load(Ordering::Relaxed) && quick_crashes >= MAX_QUICK_CRASHES {
                stop_all(&mut slots, graceful);
                return 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    drop(listeners);
    crate::bridge::worker::remove_socket_file(config);
    Ok(code)
}

/// With `--metrics`: the region every worker counts into, and the endpoint
/// serving their sum (with the supervisor's own counts).
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

/// The listeners of the workers. For TCP, one SO_REUSEPORT socket per
/// worker, so the kernel spreads connections evenly over them (a shared
/// socket lets the busiest worker take almost everything at low load). The
/// supervisor keeps every socket open, so connections queued on a worker's
/// socket wait for its replacement instead of being reset. Unix sockets and
/// inherited fds are shared.
fn bind_all(config: &ServerConfig) -> Result<Vec<Listener>, String> {
    if config.fd.is_some() || config.uds.is_some() || config.workers < 2 {
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

/// SIGTERM to every worker, then SIGKILL to those still alive after the
/// graceful timeout (plus a margin for their lifespan shutdown).
fn stop_all(slots: &mut [Slot], graceful: Option<f64>) {
    for s in slots.iter() {
        // SAFETY: sending a signal to our own child by pid.
        unsafe {
            libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    let deadline = graceful.map(|g| Instant::now() + Duration::from_secs_f64(g + 5.0));
    loop {
        let mut alive = 0;
        for s in slots.iter_mut() {
            if matches!(s.child.try_wait(), Ok(None)) {
                alive += 1;
            }
        }
        if alive == 0 {
            return;
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            for s in slots.iter_mut() {
                let _ = s.child.kill();
                let _ = s.child.wait();
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
