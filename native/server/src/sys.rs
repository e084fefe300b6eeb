//! Every `unsafe` operation of this crate, each behind a safe function
//! with the argument for why it is sound. The rest of the crate is
//! `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU64;

/// Takes ownership of `fd`, a descriptor handed to this process to serve
/// on (`--fd`, or by the supervisor), after checking that it is open.
pub(crate) fn adopt_socket(fd: RawFd) -> Result<socket2::Socket, String> {
    // SAFETY: fstat only writes into `st`, a valid, zeroed stat buffer.
    let open = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0
    };
    if !open {
        return Err(format!("file descriptor {fd} is not open"));
    }
    // SAFETY: the descriptor is open (checked above) and was passed to us
    // to own: nothing else in this process uses or closes it.
    Ok(unsafe { socket2::Socket::from_raw_fd(fd) })
}

/// Takes ownership of an inherited descriptor (`CORMORANT_METRICS_FD`).
pub(crate) fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_GETFD) reads the descriptor's flags and changes nothing.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open (checked above) and handed to this process to own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new descriptor from a syscall's result, or its error.
fn owned(raw: RawFd) -> io::Result<OwnedFd> {
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` was just returned by the kernel as a new descriptor;
    // nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The coarse monotonic clock (CLOCK_MONOTONIC_COARSE), in nanoseconds.
pub(crate) fn monotonic_coarse_nanos() -> u64 {
    clock_nanos(libc::CLOCK_MONOTONIC_COARSE)
}

/// The coarse wall clock (CLOCK_REALTIME_COARSE), in whole seconds since
/// the Unix epoch: a tick behind at most, which a `Date` header (whole
/// seconds) does not show.
pub(crate) fn realtime_coarse_secs() -> u64 {
    clock_nanos(libc::CLOCK_REALTIME_COARSE) / 1_000_000_000
}

/// The monotonic clock (CLOCK_MONOTONIC), in microseconds: the clock
/// systemd reads `MONOTONIC_USEC=` on.
pub(crate) fn monotonic_micros() -> u64 {
    clock_nanos(libc::CLOCK_MONOTONIC) / 1_000
}

#[inline]
fn clock_nanos(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks the callers
    // pass exist on every Linux this builds for.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Puts the calling thread in SCHED_BATCH; a failure leaves the default.
pub(crate) fn set_batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain syscall on the calling thread with a valid param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// A nonblocking, close-on-exec eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd has no memory-safety preconditions.
    owned(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })
}

/// Registers `fd` with the current tokio reactor for readability.
pub(crate) fn async_readable(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns `fd`, so it stays open and the same for the
    // AsyncFd's whole life: nothing else can close or replace it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// An epoll instance of the readiness-driven HTTP/1.1 driver: its sockets,
/// edge-triggered for reading and writing, each under a token.
pub(crate) struct Epoll(OwnedFd);

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 has no memory-safety preconditions.
        owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).map(Self)
    }

    /// The instance's descriptor, for the reactor that watches it.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.0
    }

    /// Watches `fd` for input, output, the peer's close and errors, as
    /// `token`, edge-triggered.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: a valid event struct; the kernel only reads it.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Stops watching `fd` (before another poller takes it).
    pub(crate) fn delete(&self, fd: RawFd) {
        // SAFETY: EPOLL_CTL_DEL ignores the event argument (null is allowed
        // since Linux 2.6.9).
        unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// The events ready now, without waiting: (token, events) into `out`,
    /// at most its capacity. Returns how many.
    pub(crate) fn ready_now(&self, out: &mut Vec<libc::epoll_event>) -> usize {
        out.clear();
        let cap = out.capacity().min(i32::MAX as usize);
        // SAFETY: the kernel writes at most `cap` events into the vector's
        // spare capacity; `set_len` then covers only what it wrote.
        unsafe {
            let n = libc::epoll_wait(self.0.as_raw_fd(), out.as_mut_ptr(), cap as i32, 0);
            let n = n.max(0) as usize;
            out.set_len(n);
            n
        }
    }
}

/// Waits until `fd` is readable, or `timeout_ms` passes (-1: no limit), or
/// a signal interrupts the wait. Whether it is readable.
pub(crate) fn wait_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid, writable pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) > 0 }
}

/// One read(2) from `fd` into the spare capacity of `buf`, which grows by
/// the bytes read: no need to zero the room first.
pub(crate) fn read_to_spare(fd: RawFd, buf: &mut bytes::BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: `spare` is writable for its length; read(2) writes at most
    // that many bytes.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: read(2) initialized the first `n` bytes of the spare room.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One sendfile(2) call: up to `len` bytes of `file` from `*offset` to
/// `socket`, advancing `offset`.
pub(crate) fn sendfile(
    socket: RawFd,
    file: RawFd,
    offset: &mut i64,
    len: usize,
) -> io::Result<usize> {
    // SAFETY: `offset` is a valid, writable i64; the descriptors are plain
    // integers to the kernel (a closed one is EBADF, not unsoundness).
    let n = unsafe { libc::sendfile(socket, file, offset, len) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A shared, read-write memory mapping of a file, seen as `AtomicU64`s:
/// memory that several processes update at once.
pub(crate) struct SharedWords {
    fd: OwnedFd,
    ptr: std::ptr::NonNull<AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is only ever accessed through `AtomicU64`s, which may
// be shared between threads; the pointer stays valid until Drop.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// A new zeroed memfd of `len` words, mapped.
    pub(crate) fn create(name: &CStr, len: usize) -> io::Result<Self> {
        // SAFETY: a plain syscall with a NUL-terminated name.
        let fd = owned(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
        let bytes = Self::bytes(len)?;
        // SAFETY: ftruncate on our own descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), bytes as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd, len)
    }

    /// Maps `len` words of the file `fd` (which must be that long).
    pub(crate) fn map(fd: OwnedFd, len: usize) -> io::Result<Self> {
        let bytes = Self::bytes(len)?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat writes a stat into `st` on success (checked).
        if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstat succeeded, so `st` is initialized.
        let size = unsafe { st.assume_init() }.st_size;
        if (size as u64) < bytes as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the region is too short",
            ));
        }
        // SAFETY: maps `bytes` of a file at least that long (checked above),
        // shared and read-write, at an address the kernel chooses.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?;
        Ok(Self { fd, ptr, len })
    }

    fn bytes(len: usize) -> io::Result<usize> {
        len.checked_mul(size_of::<AtomicU64>())
            .filter(|&b| b > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad region size"))
    }

    /// The words.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` maps `len` page-aligned AtomicU64s (zero-filled or
        // written only as AtomicU64s), valid until Drop, which needs `&mut`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapped file's descriptor.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference from
        // `words` outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len * size_of::<AtomicU64>()) };
    }
}

/// This process's open epoll descriptors, from `/proc/self/fd`, each with
/// what it watches (the `tfd:` lines of its fdinfo): how the poller of a
/// runtime that does not expose it is found (see
/// [`crate::server::driven`]).
pub(crate) fn eventpoll_fds() -> io::Result<Vec<(RawFd, String)>> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // A descriptor closed since the listing has no link: skip it.
        if !std::fs::read_link(entry.path())
            .is_ok_and(|l| l.as_os_str() == "anon_inode:[eventpoll]")
        {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let watched: Vec<&str> = info.lines().filter(|l| l.starts_with("tfd:")).collect();
        fds.push((fd, watched.join("\n")));
    }
    Ok(fds)
}

/// A new descriptor for what `fd` refers to (`F_DUPFD_CLOEXEC`).
pub(crate) fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only reads `fd` and returns a new
    // descriptor (or -1), which `owned` takes.
    owned(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })
}

/// How many CPUs the calling thread's affinity mask allows
/// (sched_getaffinity(2)); None if it cannot be read.
pub(crate) fn affinity_cpus() -> Option<usize> {
    // SAFETY: `set` is a plain bitmask the kernel fills; its size is the
    // one passed, and CPU_COUNT only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        usize::try_from(libc::CPU_COUNT(&set)).ok()
    }
}

/// Fills `buf` from the kernel's random source (getrandom(2)); on failure
/// (a kernel without it), from the clock and the pid, which still differ
/// between workers and restarts.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            let fallback = monotonic_coarse_nanos() ^ (u64::from(std::process::id()) << 32);
            for (i, b) in rest.iter_mut().enumerate() {
                *b = fallback.rotate_left(8 * (i as u32 % 8)) as u8;
            }
            return;
        }
        filled += n as usize;
    }
}
