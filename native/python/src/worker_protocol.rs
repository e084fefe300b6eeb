//! How a supervisor (or the reloader) and its worker processes talk: the
//! environment a worker is started with, the bytes it writes on its
//! control pipe, and its exit codes. Defined once, here; the worker's
//! Python side reads them from the extension (`_cormorant.MSG_READY`...).

/// The worker's configuration, as JSON.
pub(crate) const ENV_CONFIG: &str = "CORMORANT_WORKER_CONFIG";
/// The write end of the worker's control pipe (a file descriptor number).
pub(crate) const ENV_READY_FD: &str = "CORMORANT_READY_FD";
/// The worker's number (1-based), for logs and process titles.
pub(crate) const ENV_WORKER_ID: &str = "CORMORANT_WORKER_ID";
/// The shared metrics region (a file descriptor number), with `--metrics`.
pub(crate) const ENV_METRICS_FD: &str = "CORMORANT_METRICS_FD";
/// The worker's slot in the metrics region (0-based).
pub(crate) const ENV_METRICS_SLOT: &str = "CORMORANT_METRICS_SLOT";
/// The listening sockets systemd passed to the supervisor, which every
/// worker serves (descriptor numbers, comma-separated). Without it, the
/// worker serves the one socket its configuration's `fd` names.
pub(crate) const ENV_LISTEN_FDS: &str = "CORMORANT_LISTEN_FDS";

/// Control byte: the worker accepts connections.
pub(crate) const MSG_READY: u8 = b'R';
/// Control byte: the worker reached `--limit-max-requests` and wants to
/// be replaced (it keeps serving until its replacement is ready).
pub(crate) const MSG_RECYCLE: u8 = b'M';
/// Control byte: the worker's event loop turned (sent periodically with
/// `--timeout-worker-healthcheck`).
pub(crate) const MSG_ALIVE: u8 = b'A';

/// Exit code of a worker that could not boot (app import, bind, lifespan
/// startup): respawning cannot help, so the server stops.
pub(crate) const WORKER_BOOT_ERROR: i32 = 3;

/// The metrics slot the supervisor gave this worker ([`ENV_METRICS_FD`]
/// and [`ENV_METRICS_SLOT`]), if any.
pub(crate) fn metrics_slot() -> Option<crate::metrics::Slot> {
    let fd = std::env::var(ENV_METRICS_FD).ok()?.parse().ok()?;
    let index = std::env::var(ENV_METRICS_SLOT).ok()?.parse().ok()?;
    crate::metrics::Slot::attach(fd, index)
}
