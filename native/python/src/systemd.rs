//! systemd, for the process it started: the supervisor, or the server
//! process when there is none. Its variables (`LISTEN_FDS`...) are read
//! once, when serving begins, and removed from the environment through
//! `os.environ`, which unsets them in the C environment too: neither the
//! application nor a program it starts can take the server's sockets for
//! theirs. Workers therefore never see them; the supervisor hands the
//! passed sockets to its workers itself (see
//! [`crate::worker_protocol::ENV_LISTEN_FDS`]).

use std::ffi::OsString;
use std::sync::{Mutex, OnceLock};

use cormorant_server::systemd::{self as sd, ListenFd};
use pyo3::prelude::*;

use crate::server::listener::Listener;

/// What systemd gave this process.
struct Service {
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
    let service = Service {
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
