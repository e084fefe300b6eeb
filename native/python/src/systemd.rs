//! systemd, for the process it started: the supervisor, or the server
//! process when there is none. Its variables (`NOTIFY_SOCKET`,
//! `WATCHDOG_USEC`, `LISTEN_FDS`...) are read once, when serving begins,
//! and removed from the environment through `os.environ`, which unsets
//! them in the C environment too: neither the application nor a program
//! it starts can report to systemd in the server's name, take its sockets,
//! or think the watchdog is theirs. Workers therefore never see them: the
//! supervisor alone notifies, and hands the passed sockets to its workers
//! itself (see [`crate::worker_protocol::ENV_LISTEN_FDS`]).
//!
//! What the process tells systemd, and when: `READY=1` once every worker
//! accepts connections, `RELOADING=1` during a rolling restart and
//! `READY=1` again once every replacement is ready, `STOPPING=1` when a
//! stop begins (before `--drain-delay`), `STATUS=` lines along the way,
//! and `WATCHDOG=1` at half the watchdog's period from its main loop (the
//! supervisor's, or the event loop of a single process).

use std::ffi::OsString;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use cormorant_server::systemd::{self as sd, ListenFd, Notifier};
use pyo3::prelude::*;

use crate::server::listener::Listener;

/// What systemd gave this process.
struct Service {
    notifier: Option<Notifier>,
    watchdog: Option<Duration>,
    /// The passed sockets not adopted yet (taken once), or why
    /// `LISTEN_FDS` is unusable.
    listen_fds: Mutex<Result<Option<Vec<ListenFd>>, String>>,
}

static SERVICE: OnceLock<Service> = OnceLock::new();

/// Reads systemd's variables and removes them from the environment. The
/// first call does it; later ones (a second `serve` in one process) find
/// the variables gone and keep what the first read.
pub(crate) fn take_environment(py: Python<'_>) -> PyResult<()> {
    if SERVICE.get().is_some() {
        return Ok(());
    }
    let environ = py.import("os")?.getattr("environ")?;
    let mut values: Vec<Option<OsString>> = Vec::with_capacity(sd::VARIABLES.len());
    for name in sd::VARIABLES {
        values.push(environ.call_method1("pop", (name, py.None()))?.extract()?);
    }
    let value = |name: &str| {
        let i = sd::VARIABLES.iter().position(|v| *v == name)?;
        values[i].as_deref()
    };
    let pid = std::process::id();
    let notifier = value(sd::NOTIFY_SOCKET).and_then(|v| {
        Notifier::new(v)
            .inspect_err(|e| {
                crate::console::err(format_args!(
                    "warning: cannot notify systemd at {}: {e}",
                    v.to_string_lossy()
                ));
            })
            .ok()
            .flatten()
    });
    let service = Service {
        notifier,
        watchdog: sd::watchdog(value(sd::WATCHDOG_USEC), value(sd::WATCHDOG_PID), pid),
        listen_fds: Mutex::new(sd::listen_fds(
            value(sd::LISTEN_PID),
            value(sd::LISTEN_FDS),
            value(sd::LISTEN_FDNAMES),
            pid,
        )),
    };
    let _ = SERVICE.set(service);
    Ok(())
}

/// The listening sockets systemd passed to this process, adopted (once:
/// later calls get None), or the line that says why one cannot be served.
pub(crate) fn take_listeners() -> Result<Option<Vec<Listener>>, String> {
    let Some(service) = SERVICE.get() else {
        return Ok(None);
    };
    let mut passed = service.listen_fds.lock().unwrap_or_else(|e| e.into_inner());
    let fds = match &mut *passed {
        Ok(fds) => fds.take(),
        Err(e) => return Err(e.clone()),
    };
    let Some(fds) = fds else { return Ok(None) };
    fds.iter()
        .map(|f| Listener::adopt(f.fd).map_err(|e| describe(f, &e)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// An adoption error, with where the socket came from.
fn describe(fd: &ListenFd, error: &str) -> String {
    match &fd.name {
        Some(name) => format!("LISTEN_FDS: {error} (named {name:?})"),
        None => format!("LISTEN_FDS: {error}"),
    }
}

/// Sends `state` (`READY=1\nSTATUS=...`) to systemd when it asked this
/// process for notifications. Returns whether it was sent; a failure
/// (systemd gone, its queue full) changes nothing for the server.
pub(crate) fn notify(state: &str) -> bool {
    SERVICE
        .get()
        .and_then(|s| s.notifier.as_ref())
        .is_some_and(|n| n.notify(state).is_ok())
}

/// The watchdog's period, when systemd set one for this process (it must
/// hear `WATCHDOG=1` at least that often).
pub(crate) fn watchdog() -> Option<Duration> {
    SERVICE.get().and_then(|s| s.watchdog)
}

/// Sends `state`, newline-separated assignments such as
/// `READY=1\nSTATUS=serving`, to systemd's notification socket, when
/// systemd started this process with one (`Type=notify`). Returns whether
/// it was sent. Never sends from a worker under a supervisor: only the
/// supervisor, the service's main process, speaks to systemd.
#[pyfunction]
pub(crate) fn sd_notify(state: &str) -> bool {
    notify(state)
}

/// The watchdog's period in seconds (`WatchdogSec=`), when systemd set one
/// for this process: it must hear `WATCHDOG=1` at least that often. None
/// otherwise, and always in a worker under a supervisor.
#[pyfunction]
pub(crate) fn watchdog_period() -> Option<f64> {
    watchdog().map(|d| d.as_secs_f64())
}
