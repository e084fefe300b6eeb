//! Mailboxes between the I/O thread and the application side (the Python
//! thread, or an embedded server's dispatcher).
//!
//! Each side pushes work into the other's mailbox and, only when it was
//! empty, writes to the mailbox's eventfd, which the other side watches
//! (asyncio `add_reader` on the Python side, tokio `AsyncFd` on the I/O
//! side). The receiver drains everything in one wake-up, so under load one
//! crossing serves a whole batch of requests, in both directions. The I/O
//! thread never takes the GIL.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::http::{NewRequest, Shared, StreamState};
use super::websocket::{NewWebSocket, WsShared, WsState};
use super::{Handoff, SendSide, Woken};

/// Work for the application side.
pub enum Job {
    /// A request to hand to the application.
    Request(Box<NewRequest>),
    /// Something changed for a request whose app is waiting on a future.
    Wake(Arc<Shared>),
    /// A WebSocket connection to hand to the application.
    WebSocket(Box<NewWebSocket>),
    /// Something changed for a WebSocket whose app is waiting on a future.
    WsWake(Arc<WsShared>),
    /// The worker should stop (for example after `--limit-max-requests`).
    Stop,
    /// A line for the `cormorant.error` logger from the I/O thread, at a
    /// Python logging level (10 debug ... 40 error).
    Log(crate::config::Level, String),
    /// A line for the `cormorant.access` logger (when Python logging, not
    /// the I/O thread, writes the access log).
    Access(String),
}

/// The application side's mailbox.
pub type JobQueue = Mailbox<Job>;

/// The I/O thread's mailbox: streams whose connection task must look at
/// their shared state again.
pub type ConnWakes = Mailbox<ConnWake>;

/// A stream whose connection task must be woken.
pub enum ConnWake {
    /// An HTTP request.
    Http(Arc<Shared>),
    /// A WebSocket connection.
    WebSocket(Arc<WsShared>),
}

impl ConnWake {
    /// Wakes the connection task (on the I/O thread).
    pub fn deliver(self) {
        match self {
            Self::Http(s) => s.deliver_wake(),
            Self::WebSocket(s) => s.deliver_wake(),
        }
    }
}

impl Woken for StreamState {
    fn conn_wake(shared: Arc<Shared>) -> ConnWake {
        ConnWake::Http(shared)
    }

    fn app_wake(shared: Arc<Shared>) -> Job {
        Job::Wake(shared)
    }
}

impl Woken for WsState {
    fn conn_wake(shared: Arc<WsShared>) -> ConnWake {
        ConnWake::WebSocket(shared)
    }

    fn app_wake(shared: Arc<WsShared>) -> Job {
        Job::WsWake(shared)
    }
}

/// The I/O side's changes to a stream's state, each followed by a wake of
/// the application side when a waiting `receive()`/`send()` can go on.
impl<S: Woken + SendSide> Handoff<S> {
    /// Changes the state with `f`, then queues a wake for the application
    /// side if a waiting `receive()`/`send()` can now go on. Returns what
    /// `f` returns.
    pub fn update<R>(self: &Arc<Self>, queue: &JobQueue, f: impl FnOnce(&mut S) -> R) -> R {
        let mut st = self.lock();
        let r = f(&mut st);
        let wake = st.needs_wake();
        drop(st);
        if wake {
            queue.push(S::app_wake(self.clone()));
        }
        r
    }
}

impl Shared {
    /// The client is gone: the app's `receive()` yields `http.disconnect`
    /// and its next `send()` raises.
    pub fn disconnect(self: &Arc<Self>, queue: &JobQueue) {
        self.update(queue, |st| st.stream.handle_disconnect());
    }

    /// `n` body bytes of the app's output were handed to the transport:
    /// a `send()` waiting for room may resume.
    pub fn written(self: &Arc<Self>, queue: &JobQueue, n: usize) {
        self.update(queue, |st| st.out_bytes = st.out_bytes.saturating_sub(n));
    }
}

/// A multi-producer queue with an eventfd that is readable while it holds
/// items.
pub struct Mailbox<T> {
    jobs: Mutex<Vec<T>>,
    eventfd: std::fs::File,
    /// Takes each item at once on the pushing thread instead (an embedded
    /// server whose handler runs on the I/O thread).
    direct: Option<Box<dyn Fn(T) + Send + Sync>>,
    /// The eventfd is written and read; not when the owner takes the
    /// items right after the code that pushes them runs (see
    /// [`stop_signalling`](Self::stop_signalling)).
    signalled: AtomicBool,
}

impl<T> Mailbox<T> {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            jobs: Mutex::new(Vec::with_capacity(64)),
            direct: None,
            eventfd: crate::sys::eventfd()?.into(),
            signalled: AtomicBool::new(true),
        })
    }

    /// No more eventfd writes and reads: every item is pushed by code that
    /// the owner runs and then takes the items, on one thread (a server the
    /// event loop steps, whose jobs are taken after each step).
    pub fn stop_signalling(&self) {
        self.signalled.store(false, Ordering::Relaxed);
    }

    /// A duplicate of the eventfd, for an owner that watches it.
    pub fn clone_fd(&self) -> std::io::Result<OwnedFd> {
        self.eventfd.try_clone().map(OwnedFd::from)
    }

    /// The descriptor the event loop watches.
    pub fn fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// A mailbox that hands every item to `take` on the pushing thread.
    pub fn direct(take: impl Fn(T) + Send + Sync + 'static) -> std::io::Result<Self> {
        let mut m = Self::new()?;
        m.direct = Some(Box::new(take));
        Ok(m)
    }

    pub fn push(&self, job: T) {
        if let Some(take) = &self.direct {
            return take(job);
        }
        let was_empty = {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = jobs.is_empty();
            jobs.push(job);
            was_empty
        };
        if was_empty && self.signalled.load(Ordering::Relaxed) {
            self.signal();
        }
    }

    fn signal(&self) {
        // A full counter (EAGAIN) still leaves the fd readable, which is
        // all a signal needs.
        let _ = (&self.eventfd).write(&1u64.to_ne_bytes());
    }

    /// Takes every pending job, clearing the wake-up signal first so that a
    /// job pushed during the drain signals again.
    pub fn take(&self, into: &mut Vec<T>) {
        if self.signalled.load(Ordering::Relaxed) {
            // Nonblocking: EAGAIN (nothing pending) is harmless.
            let _ = (&self.eventfd).read(&mut [0; 8]);
        }
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *jobs, into);
    }
}
