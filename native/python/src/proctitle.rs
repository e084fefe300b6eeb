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
        // SAFETY: PR_SET_NAME reads a NUL-terminated string we own.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c.as_ptr());
        }
    }
    let Some((start, end)) = argv_area() else {
        return;
    };
    let len = end - start;
    if len < 2 {
        return;
    }
    let bytes = title.as_bytes();
    let n = bytes.len().min(len - 1);
    // SAFETY: [arg_start, arg_end) is this process's original argv strings,
    // mapped and writable (the top of the main thread's stack). The
    // interpreter copied argv at startup and never reads this area again.
    // The last byte stays NUL, so the kernel reads no further.
    unsafe {
        let p = start as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, n);
        std::ptr::write_bytes(p.add(n), 0, len - n);
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
