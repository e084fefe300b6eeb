//! The application threads of a WSGI worker (`--blocking-threads`): each
//! waits for work with the GIL let go, and runs one request at a time.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use pyo3::prelude::*;

use super::{App, Work, environ};

/// A bounded set of threads running WSGI calls; work beyond them waits in
/// order and is never dropped.
pub(crate) struct Pool {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

struct Inner {
    queue: Mutex<Queue>,
    ready: Condvar,
}

struct Queue {
    work: VecDeque<Work>,
    closing: bool,
}

impl Pool {
    /// Starts `n` threads running `app`.
    pub(crate) fn start(n: usize, app: &Arc<App>) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue {
                work: VecDeque::new(),
                closing: false,
            }),
            ready: Condvar::new(),
        });
        let threads = (0..n)
            .map(|i| {
                let (inner, app) = (inner.clone(), app.clone());
                std::thread::Builder::new()
                    .name(format!("cormorant-wsgi-{i}"))
                    .spawn(move || serve(&inner, &app))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Self { inner, threads })
    }

    /// Queues `work` for the next free thread.
    pub(crate) fn push(&self, work: Work) {
        self.inner.push(work);
    }

    /// A handle that queues work, for another thread.
    pub(crate) fn handle(&self) -> Handle {
        Handle(self.inner.clone())
    }

    /// Lets the threads finish what is queued, then joins them (with the
    /// GIL let go, which they need).
    pub(crate) fn close(&mut self, py: Python<'_>) {
        self.inner.lock().closing = true;
        self.inner.ready.notify_all();
        let threads = std::mem::take(&mut self.threads);
        py.detach(|| {
            for t in threads {
                let _ = t.join();
            }
        });
    }
}

/// Queues work for a pool from any thread.
pub(crate) struct Handle(Arc<Inner>);

impl Handle {
    pub(crate) fn push(&self, work: Work) {
        self.0.push(work);
    }
}

impl Inner {
    fn push(&self, work: Work) {
        self.lock().work.push_back(work);
        self.ready.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next work, waiting for it; None once closing and drained.
    fn next(&self) -> Option<Work> {
        let mut q = self.lock();
        loop {
            if let Some(w) = q.work.pop_front() {
                return Some(w);
            }
            if q.closing {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A thread's life: attached to the interpreter once (its thread state is
/// kept), detached while it waits.
fn serve(inner: &Inner, app: &App) {
    Python::attach(|py| {
        let mut kept = environ::Kept::default();
        while let Some(work) = py.detach(|| inner.next()) {
            super::run(py, app, &mut kept, work);
        }
    });
}
