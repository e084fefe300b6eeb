//! The access log. The I/O thread renders every line; when the
//! `cormorant.access` logger has only Cormorant's default handler, it also
//! writes them (no trip through Python's logging per request), else it
//! hands each line to the application side's logger.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use crate::access_format::{AccessEntry, AccessFormat};
use crate::handoff::queue::{Job, JobQueue};

/// Where the lines go.
enum Sink {
    /// Buffered in memory and written to stdout in batches, as the
    /// default handler would print them.
    Stdout(Mutex<String>),
    /// One [`Job::Access`] a line, for the configured logger.
    App(Arc<JobQueue>),
}

/// The access log of one worker.
pub struct AccessLog {
    sink: Sink,
    format: AccessFormat,
    /// One JSON object a line (`--log-json`).
    json: bool,
}

/// Buffered bytes past which a line triggers a write at once, so a burst
/// never holds much memory.
const FLUSH_AT: usize = 64 * 1024;

impl AccessLog {
    /// Lines written to stdout by this thread.
    pub fn new(format: AccessFormat, json: bool) -> Self {
        Self {
            sink: Sink::Stdout(Mutex::new(String::with_capacity(FLUSH_AT))),
            format,
            json,
        }
    }

    /// Lines handed to the application side's logger through `queue`.
    pub fn to_app(format: AccessFormat, queue: Arc<JobQueue>) -> Self {
        Self {
            sink: Sink::App(queue),
            format,
            json: false,
        }
    }

    /// The format, for capturing the request headers it shows.
    pub fn format(&self) -> &AccessFormat {
        &self.format
    }

    /// Records one completed request: to stdout as the `cormorant.access`
    /// default handler would print it (`INFO     ` and the formatted line),
    /// or as the message of one record for the application's logger.
    pub fn record(&self, entry: &AccessEntry<'_>) {
        let buf = match &self.sink {
            Sink::Stdout(buf) => buf,
            Sink::App(queue) => {
                let mut line = String::new();
                self.format.render(entry, &mut line);
                queue.push(Job::Access(line));
                return;
            }
        };
        let full = {
            let mut buf = buf.lock().unwrap_or_else(|e| e.into_inner());
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
        let Sink::Stdout(buf) = &self.sink else {
            return;
        };
        let lines = {
            let mut buf = buf.lock().unwrap_or_else(|e| e.into_inner());
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
