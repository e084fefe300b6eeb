//! Readable process titles: `comm` (`ps -o comm`, `top`) and the command
//! line (`ps -o args`).

use std::ffi::CString;

/// Sets the process title: `comm` (15 bytes at most) with
/// `prctl(PR_SET_NAME)`, and the command line by overwriting the original
/// argv area, which `/proc/<pid>/cmdline` shows (the way `setproctitle`
/// does, without moving `environ`: the title is cut to the area's length).
/// Best effort: failures are ignored.
pub(crate) fn set(title: &str, comm: &str) {
    let comm: String = comm.chars().filter(|&c| c != '\0').take(15).collect();
    if let Ok(c) = CString::new(comm) {
        crate::sys::set_comm(&c);
    }
    if let Some((start, end)) = argv_area() {
        crate::sys::overwrite_argv_area(start, end, title.as_bytes());
    }
}

/// `arg_start` and `arg_end` from `/proc/self/stat` (fields 48 and 49,
/// Linux 3.5).
fn argv_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at 3.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(48 - 3);
    let start: usize = fields.next()?.parse().ok()?;
    let end: usize = fields.next()?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}
