//! The access log written by the I/O thread itself, when the
//! `cormorant.access` logger has only Cormorant's default handler: the same
//! lines, without a trip through Python's logging per request.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Lines buffered in memory and written to stdout in batches.
pub(crate) struct AccessLog {
    buf: Mutex<String>,
}

/// Buffered bytes past which a line triggers a write at once, so a burst
/// never holds much memory.
const FLUSH_AT: usize = 64 * 1024;

impl AccessLog {
    pub(crate) fn new() -> Self {
        Self {
            buf: Mutex::new(String::with_capacity(FLUSH_AT)),
        }
    }

    /// Records one completed request, formatted like the `cormorant.access`
    /// default handler: `INFO     client - "METHOD target HTTP/v" status bytes ms`.
    #[allow(clippy::too_many_arguments)] // one line's fields, all needed
    pub(crate) fn record(
        &self,
        client: &str,
        method: &[u8],
        target: &[u8],
        version: &str,
        status: u16,
        bytes: u64,
        elapsed: Duration,
    ) {
        let full = {
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                buf,
                "INFO     {client} - \"{} {} HTTP/{version}\" {status} {bytes} {:.3}ms",
                String::from_utf8_lossy(method),
                String::from_utf8_lossy(target),
                elapsed.as_secs_f64() * 1000.0,
            );
            buf.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    /// Writes out everything buffered.
    pub(crate) fn flush(&self) {
        let lines = {
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            if buf.is_empty() {
                return;
            }
            std::mem::replace(&mut *buf, String::with_capacity(FLUSH_AT))
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(lines.as_bytes());
        let _ = out.flush();
    }
}
