//! Every `unsafe` operation of this crate, each behind a safe function or
//! type with the argument for why it is sound. The rest of the crate is
//! `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Every block mimalloc's plain `mi_malloc` returns is aligned to this.
const MI_MALLOC_ALIGN: usize = 16;

/// mimalloc as the Rust allocator. Blocks whose alignment `mi_malloc` gives
/// anyway (nearly all) go through its plain entry points: its aligned ones
/// take a slower path for blocks over 1 KiB, such as a request's boxed
/// future (measured: about 390 instructions instead of about 40).
pub(crate) struct MiMalloc;

// SAFETY: each method forwards to the mimalloc function with the same
// contract, and asks for `layout.align()` explicitly whenever it is above
// what `mi_malloc`/`mi_zalloc`/`mi_realloc` guarantee. `mi_free` frees
// blocks from either family.
unsafe impl std::alloc::GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= MI_MALLOC_ALIGN {
                libmimalloc_sys::mi_malloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= MI_MALLOC_ALIGN {
                libmimalloc_sys::mi_zalloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: see the impl.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= MI_MALLOC_ALIGN {
                libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

/// Sends `sig` to our child `pid`.
///
/// The caller holds the child's `std::process::Child` and has not reaped
/// it (only `try_wait` reaps, and then the caller stops signalling), so
/// the pid is still that child's.
pub(crate) fn signal_child(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
    // unreaped child's (see above), so no other process is hit.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// The size of a memory page, in bytes.
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).unwrap_or(4096)
}

/// Counts each delivery of `sig` in `counter`.
pub(crate) fn count_signal(sig: libc::c_int, counter: Arc<AtomicUsize>) -> io::Result<()> {
    // SAFETY: the handler only increments an atomic, which is
    // async-signal-safe.
    unsafe {
        signal_hook::low_level::register(sig, move || _ = counter.fetch_add(1, Ordering::Relaxed))
    }
    .map(drop)
}

/// Makes the child of `cmd` inherit `fds` (their close-on-exec flag is
/// cleared in the child only) and get SIGTERM when its parent dies.
pub(crate) fn inherit_fds_and_parent_death(cmd: &mut Command, fds: Vec<RawFd>) {
    // SAFETY: runs in the child between fork and exec; fcntl and prctl
    // are async-signal-safe, allocate nothing, and touch only the child.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// A close-on-exec pipe whose read end is non-blocking (the write end
/// blocks as usual).
pub(crate) fn pipe() -> io::Result<(File, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours alone.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own, with plain integer arguments.
    unsafe {
        let flags = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(r.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((r, w))
}

/// Attaches a classic BPF program to the SO_REUSEPORT group of `fd`
/// (`SO_ATTACH_REUSEPORT_CBPF`, Linux 4.5).
pub(crate) fn attach_reuseport_cbpf(fd: RawFd, prog: &mut [libc::sock_filter]) -> io::Result<()> {
    // Not in every libc version's constants: asm/socket.h.
    const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies
    // the program.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&raw const fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// TCP_INFO of a TCP socket.
pub(crate) fn tcp_info(fd: RawFd) -> Option<libc::tcp_info> {
    // SAFETY: tcp_info is plain data (all zeroes is a valid value), and
    // getsockopt writes at most `len` bytes into it.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        );
        (r == 0).then_some(info)
    }
}

/// Sets this thread's name as `comm` shows it (15 bytes are kept).
pub(crate) fn set_comm(comm: &CString) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string we own.
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr()) };
}

/// Overwrites the process's original argv strings, `[start, end)` as
/// `/proc/self/stat` gives them (`arg_start`, `arg_end`), with `title`,
/// cut to fit and NUL-padded.
pub(crate) fn overwrite_argv_area(start: usize, end: usize, title: &[u8]) {
    let len = end.saturating_sub(start);
    if start == 0 || len < 2 {
        return;
    }
    let n = title.len().min(len - 1);
    // SAFETY: [arg_start, arg_end) is this process's original argv strings,
    // mapped and writable (the top of the main thread's stack). The
    // interpreter copied argv at startup and never reads this area again.
    // The last byte stays NUL, so the kernel reads no further.
    unsafe {
        let p = start as *mut u8;
        std::ptr::copy_nonoverlapping(title.as_ptr(), p, n);
        std::ptr::write_bytes(p.add(n), 0, len - n);
    }
}

/// Sets an environment variable while the command line is read.
pub(crate) fn set_env_before_threads(name: impl AsRef<std::ffi::OsStr>, value: &str) {
    // SAFETY: called only at the start of the command line, before
    // Cormorant starts any thread, and nothing else in the process reads
    // or writes the environment concurrently.
    unsafe { std::env::set_var(name, value) };
}

/// A Python `bytes` object's buffer, kept alive while it is written out
/// from the I/O thread.
pub(crate) struct SharedPyBytes {
    _owner: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `bytes` object is immutable, and `_owner` keeps it alive, so
// its buffer may be read from any thread without the GIL. Dropping the `Py`
// without the GIL is handled by pyo3, which defers the decref.
unsafe impl Send for SharedPyBytes {}
// SAFETY: as above: the buffer is never written.
unsafe impl Sync for SharedPyBytes {}

impl SharedPyBytes {
    /// Shares `b`'s buffer.
    pub(crate) fn new(b: &Bound<'_, PyBytes>) -> Self {
        let data = b.as_bytes();
        Self {
            ptr: data.as_ptr(),
            len: data.len(),
            _owner: b.clone().unbind(),
        }
    }
}

impl AsRef<[u8]> for SharedPyBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: ptr/len describe the immutable buffer of `_owner`, which
        // lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Lets glibc's malloc keep up to `bytes` of free memory at the top of
/// its heap instead of returning it at every free (`M_TRIM_THRESHOLD`,
/// 128 KiB by default). Request and response bodies are Python `bytes`,
/// allocated with malloc: under load the heap top otherwise shrinks and
/// grows again on every batch, and each regrowth faults its pages back in.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn keep_heap_top(bytes: usize) {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes a tuning parameter of the allocator; it
    // is thread-safe and has no memory-safety preconditions.
    unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, bytes) };
}

/// Other C libraries tune their allocators themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn keep_heap_top(_bytes: usize) {}

#[cfg(test)]
mod tests {
    /// A block that asks for more alignment than `mi_malloc` gives.
    #[repr(align(128))]
    struct Wide([u8; 3000]);

    #[test]
    fn users_and_groups_resolve_by_name_or_number() {
        use super::{Identity, identity};
        assert_eq!(identity(None, None), Ok(None));
        let root = Some(Identity {
            uid: Some(0),
            gid: Some(0),
        });
        assert_eq!(identity(Some("root"), None), Ok(root));
        assert_eq!(identity(Some("0"), None), Ok(root));
        assert_eq!(
            identity(None, Some("root")),
            Ok(Some(Identity {
                uid: None,
                gid: Some(0)
            }))
        );
        // A uid without a passwd entry keeps its number as its group.
        assert_eq!(
            identity(Some("4000000"), Some("4000001")),
            Ok(Some(Identity {
                uid: Some(4_000_000),
                gid: Some(4_000_001)
            }))
        );
        assert!(
            identity(Some("no-such-user-xq"), None)
                .unwrap_err()
                .contains("no-such-user-xq")
        );
        assert!(
            identity(None, Some("no-such-group-xq"))
                .unwrap_err()
                .contains("no-such-group-xq")
        );
    }

    #[test]
    fn allocations_keep_their_alignment_and_contents() {
        for _ in 0..64 {
            let wide = Box::new(Wide([7; 3000]));
            assert_eq!(std::ptr::from_ref(wide.as_ref()).addr() % 128, 0);
            assert!(wide.0.iter().all(|&b| b == 7));
        }
        let zeroed = vec![0u64; 4096];
        assert!(zeroed.iter().all(|&x| x == 0));
        // Growth reallocates: the bytes written so far move with the block.
        let mut grown: Vec<u32> = Vec::with_capacity(1);
        for i in 0..100_000 {
            grown.push(i);
        }
        assert!(grown.iter().enumerate().all(|(i, &x)| x as usize == i));
        let mut wide_vec: Vec<Wide> = Vec::with_capacity(1);
        for _ in 0..8 {
            wide_vec.push(Wide([1; 3000]));
            assert_eq!(wide_vec.as_ptr().addr() % 128, 0);
        }
    }
}

/// Sets the file mode creation mask (umask(2)).
pub(crate) fn set_umask(mask: u32) {
    // SAFETY: umask(2) only swaps the process's mask; it cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Who the server serves as after binding: `--user` and `--group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
}

/// Reads `--user` and `--group` (names or numbers) as ids; a user without
/// `--group` serves in the user's own group. None when neither is given.
pub(crate) fn identity(
    user: Option<&str>,
    group: Option<&str>,
) -> Result<Option<Identity>, String> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let (uid, user_gid) = match user {
        Some(u) => {
            let (uid, gid) = lookup_user(u).ok_or_else(|| format!("--user {u}: no such user"))?;
            (Some(uid), Some(gid))
        }
        None => (None, None),
    };
    let gid = match group {
        Some(g) => Some(lookup_group(g).ok_or_else(|| format!("--group {g}: no such group"))?),
        None => user_gid,
    };
    Ok(Some(Identity { uid, gid }))
}

/// A user's uid and primary gid, by name or number.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let cname = CString::new(name).ok()?;
    let by_name = passwd_entry(|pwd, buf, len, found| {
        // SAFETY: the name is NUL-terminated; the entry and buffer are
        // `passwd_entry`'s, valid for the call.
        unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf, len, found) }
    });
    by_name.or_else(|| {
        let uid: u32 = name.parse().ok()?;
        let entry = passwd_entry(|pwd, buf, len, found| {
            // SAFETY: as above.
            unsafe { libc::getpwuid_r(uid, pwd, buf, len, found) }
        });
        // A uid with no passwd entry keeps its number as its group.
        Some(entry.unwrap_or((uid, uid)))
    })
}

/// Reads one passwd entry with `get` (getpwnam_r or getpwuid_r, given the
/// entry, a buffer and its length, and where to say it was found): its uid
/// and gid.
fn passwd_entry(
    get: impl FnOnce(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int,
) -> Option<(u32, u32)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid value (null pointers, zero ids);
    // `get` fills it with pointers into `buf`, which outlives the read.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    get(&mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
    (!found.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// A group's gid, by name or number.
fn lookup_group(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `grp` and `buf` outlive the call, whose results point into
    // `buf` only; `found` is null or `&mut grp`.
    let by_name = unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut found: *mut libc::group = std::ptr::null_mut();
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        (!found.is_null()).then_some(grp.gr_gid)
    };
    by_name.or_else(|| name.parse().ok())
}

/// Becomes `id` for good: supplementary groups dropped (to the one group),
/// then the group, then the user, so no step can be undone.
pub(crate) fn become_identity(id: Identity) -> Result<(), String> {
    let err = |what: &str| format!("{what}: {}", io::Error::last_os_error());
    // SAFETY: setgroups/setgid/setuid take plain ids and a pointer to one
    // gid that outlives the call.
    unsafe {
        if let Some(gid) = id.gid {
            if libc::setgroups(1, &gid) != 0 {
                return Err(err("--group: cannot drop the other groups"));
            }
            if libc::setgid(gid) != 0 {
                return Err(err(&format!("--group: cannot become gid {gid}")));
            }
        }
        if let Some(uid) = id.uid
            && libc::setuid(uid) != 0
        {
            return Err(err(&format!("--user: cannot become uid {uid}")));
        }
    }
    Ok(())
}

/// A copy of the current `contextvars` context, as
/// `contextvars.copy_context()` makes.
pub(crate) fn copy_context(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the GIL is held (`py`); PyContext_CopyCurrent returns a new
    // reference, or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyContext_CopyCurrent()) }
}

/// Runs `f` with `context` entered, as `context.run(f)` does. The context
/// is left again even if `f` panics.
pub(crate) fn in_context<R>(context: &Bound<'_, PyAny>, f: impl FnOnce() -> R) -> PyResult<R> {
    struct Entered<'a, 'py>(&'a Bound<'py, PyAny>);
    impl Drop for Entered<'_, '_> {
        fn drop(&mut self) {
            // SAFETY: entered below with the GIL held (the borrow is
            // bound); leaving fails only for a context not entered.
            if unsafe { pyo3::ffi::PyContext_Exit(self.0.as_ptr()) } != 0 {
                drop(PyErr::fetch(self.0.py()));
            }
        }
    }
    // SAFETY: a live object and the GIL held (bound); PyContext_Enter
    // type-checks it and sets an exception on failure.
    if unsafe { pyo3::ffi::PyContext_Enter(context.as_ptr()) } != 0 {
        return Err(PyErr::fetch(context.py()));
    }
    let _entered = Entered(context);
    Ok(f())
}

/// What resuming an awaitable's iterator gave.
pub(crate) enum Sent<'py> {
    /// It yielded this (a future it waits on).
    Yielded(Bound<'py, PyAny>),
    /// It returned: the awaitable is done.
    Returned,
}

/// Whether `obj` is a native coroutine (`async def`), which
/// [`iter_send`] resumes directly, without its `__await__` wrapper.
#[cfg(Py_3_10)]
pub(crate) fn is_coroutine(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a type check of a live object, with the GIL held (bound).
    unsafe { pyo3::ffi::PyCoro_CheckExact(obj.as_ptr()) != 0 }
}

/// Resumes `iter` (a coroutine, or the iterator an `__await__` returned)
/// with `arg`, as `await` does: through the `am_send` slot where it has
/// one, with no StopIteration made and caught when it returns.
#[cfg(Py_3_10)]
pub(crate) fn iter_send<'py>(
    iter: &Bound<'py, PyAny>,
    arg: &Bound<'py, PyAny>,
) -> PyResult<Sent<'py>> {
    use pyo3::ffi::{PyIter_Send, PySendResult};
    let py = iter.py();
    let mut result = std::ptr::null_mut();
    // SAFETY: both objects are live and the GIL is held (bound). On
    // PYGEN_NEXT and PYGEN_RETURN, PyIter_Send stores a new reference in
    // `result`, owned below; on PYGEN_ERROR it sets an exception and
    // stores nothing to own.
    unsafe {
        match PyIter_Send(iter.as_ptr(), arg.as_ptr(), &raw mut result) {
            PySendResult::PYGEN_NEXT => Ok(Sent::Yielded(Bound::from_owned_ptr(py, result))),
            PySendResult::PYGEN_RETURN => {
                drop(Bound::from_owned_ptr(py, result));
                Ok(Sent::Returned)
            }
            PySendResult::PYGEN_ERROR => Err(PyErr::fetch(py)),
        }
    }
}

/// Before 3.10: no native coroutine is resumed directly (only its
/// `__await__` iterator).
#[cfg(not(Py_3_10))]
pub(crate) fn is_coroutine(_obj: &Bound<'_, PyAny>) -> bool {
    false
}

/// Before 3.10: `next()` for None, else `send()`, StopIteration meaning
/// the iterator returned.
#[cfg(not(Py_3_10))]
pub(crate) fn iter_send<'py>(
    iter: &Bound<'py, PyAny>,
    arg: &Bound<'py, PyAny>,
) -> PyResult<Sent<'py>> {
    let py = iter.py();
    let r = if arg.is_none() {
        match iter.cast::<pyo3::types::PyIterator>()?.clone().next() {
            Some(r) => r,
            None => return Ok(Sent::Returned),
        }
    } else {
        iter.call_method1(pyo3::intern!(py, "send"), (arg,))
    };
    sent(py, r)
}

/// What a `send()`, `throw()` or `next()` called as a method gave:
/// StopIteration is the iterator returning.
pub(crate) fn sent<'py>(py: Python<'py>, r: PyResult<Bound<'py, PyAny>>) -> PyResult<Sent<'py>> {
    match r {
        Ok(v) => Ok(Sent::Yielded(v)),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => Ok(Sent::Returned),
        Err(e) => Err(e),
    }
}

/// The ISO-8859-1 bytes of `s` (PEP 3333's native strings), or None when a
/// character is beyond U+00FF. A string of such characters is stored one
/// byte a character, so they are borrowed from it: no UTF-8 round trip for
/// every response header.
#[cfg(not(Py_3_14))]
pub(crate) fn latin1_bytes<'a>(
    s: &'a Bound<'_, pyo3::types::PyString>,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    use pyo3::ffi;
    let p = s.as_ptr();
    // SAFETY: `s` is a live `str` (bound, so the GIL is held); a 1-byte
    // kind string's data is `len` bytes that live as long as it does.
    unsafe {
        #[cfg(not(Py_3_12))]
        if ffi::PyUnicode_READY(p) != 0 {
            ffi::PyErr_Clear();
            return None;
        }
        if ffi::PyUnicode_KIND(p) != ffi::PyUnicode_1BYTE_KIND {
            return None;
        }
        let len = usize::try_from(ffi::PyUnicode_GET_LENGTH(p)).ok()?;
        Some(std::borrow::Cow::Borrowed(std::slice::from_raw_parts(
            ffi::PyUnicode_1BYTE_DATA(p),
            len,
        )))
    }
}

/// The ISO-8859-1 bytes of `s`, or None when a character is beyond U+00FF.
#[cfg(Py_3_14)]
pub(crate) fn latin1_bytes<'a>(
    s: &'a Bound<'_, pyo3::types::PyString>,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    s.to_str()
        .ok()?
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(std::borrow::Cow::Owned)
}

/// A `str` of ISO-8859-1 bytes (PEP 3333's "bytes as native strings"),
/// decoded by CPython in one pass: no UTF-8 check of a `&str` first.
pub(crate) fn latin1_str<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, pyo3::types::PyString> {
    let len = pyo3::ffi::Py_ssize_t::try_from(b.len()).unwrap_or(pyo3::ffi::Py_ssize_t::MAX);
    // SAFETY: `b` is valid for `len` bytes; ISO-8859-1 decoding cannot
    // fail except on memory exhaustion, which raises (then the fallback).
    let made = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyUnicode_DecodeLatin1(b.as_ptr().cast(), len, std::ptr::null()),
        )
    };
    made.and_then(|s| Ok(s.cast_into::<pyo3::types::PyString>()?))
        .unwrap_or_else(|_| pyo3::types::PyString::new(py, ""))
}
