//! Terminal output that never panics.
//!
//! `print!` and `eprintln!` panic when the reader has gone, as in
//! `cormorant --help | head -1`: Python ignores SIGPIPE, so the write fails
//! with EPIPE instead of ending the process, and the panic would surface as
//! a Rust backtrace. Output nobody reads is dropped instead, as `ls | head`
//! drops it, and the exit code still says what happened.

use std::fmt::Display;
use std::io::Write;

/// Writes `text` to standard output as it is; a closed stdout is ignored.
pub fn out(text: impl Display) {
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{text}").and_then(|()| stdout.flush());
}

/// Writes `line` and a newline to standard error; a closed stderr is
/// ignored.
pub fn err(line: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
