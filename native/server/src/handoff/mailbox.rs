//! A multi-producer queue with an eventfd, the one kind of mailbox between
//! the I/O thread and the application side (see [`super::queue`] for what
//! goes through them).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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

    /// The owner's side as a task of the current tokio runtime: at each
    /// signal, hands every item taken to `deliver`, on the runtime's thread.
    pub async fn deliver_to(self: std::sync::Arc<Self>, mut deliver: impl FnMut(T)) {
        let Ok(fd) = self.clone_fd().and_then(crate::sys::async_readable) else {
            return;
        };
        let mut batch = Vec::new();
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return;
            };
            ready.clear_ready();
            self.take(&mut batch);
            batch.drain(..).for_each(&mut deliver);
        }
    }

    /// Items pushed and not yet taken.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).len()
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
