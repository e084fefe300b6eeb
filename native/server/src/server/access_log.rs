//! The access log written by the I/O thread itself, when the
//! `cormorant.access` logger has only Cormorant's default handler: the same
//! lines, without a trip through Python's logging per request.

use std::io::Write as _;
use std::sync::Mutex;

use super::access_format::{AccessEntry, AccessFormat};

/// Lines buffered in memory and written to stdout in batches.
pub struct AccessLog {
    buf: Mutex<String>,
    format: AccessFormat,
    /// One JSON object a line (`--log-json`).
    json: bool,
}

/// Buffered bytes past which a line triggers a write at once, so a burst
/// never holds much memory.
const FLUSH_AT: usize = 64 * 1024;

impl AccessLog {
    pub fn new(format: AccessFormat, json: bool) -> Self {
        Self {
            buf: Mutex::new(String::with_capacity(FLUSH_AT)),
            format,
            json,
        }
    }

    /// The format, for capturing the request headers it shows.
    pub fn format(&self) -> &AccessFormat {
        &self.format
    }

    /// Records one completed request, as the `cormorant.access` default
    /// handler would print it (`INFO     ` and the formatted line).
    pub fn record(&self, entry: &AccessEntry<'_>) {
        let full = {
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            if self.json {
                self.format.render_json(entry, &mut buf);
            } else {
                buf.push_str("INFO     ");
                self.format.render(entry, &mut buf);
            }
            buf.push('\n');
            buf.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    /// Writes out everything buffered.
    pub fn flush(&self) {
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
