//! The server driven by its host's event loop, on the host's own thread.
//!
//! A worker's tokio runtime can be given no thread of its own: the host
//! loop (Python's asyncio) watches the runtime's poller descriptor and
//! calls [`Driven::step`] when it is readable, and on a short tick for the
//! runtime's timers. The app and the I/O then share one thread: no hand-over
//! between threads, no thread switches, and each request's data stays in one
//! core's cache.
//!
//! A step must run every task that is ready and return without blocking.
//! tokio does not say whether its run queue is empty, so every task is
//! spawned through [`spawn`], which notes each poll and each wake-up of its
//! tasks: a step ends after a pass in which nothing ran and nothing woke.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::ServerCtx;
use super::listener::Listener;

thread_local! {
    /// A tracked task ran, woke, or was spawned on this thread.
    static ACTIVITY: Cell<bool> = const { Cell::new(false) };
}

fn note_activity() {
    ACTIVITY.with(|a| a.set(true));
}

/// Spawns a task on the current runtime, tracked so that a [`Driven::step`]
/// sees it run and wake. Every task of the server is spawned this way.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    note_activity();
    tokio::spawn(Tracked {
        inner: future,
        waker: None,
    })
}

pin_project_lite::pin_project! {
    /// A task that notes its polls and wake-ups.
    struct Tracked<F> {
        #[pin]
        inner: F,
        // The runtime's waker for this task, and the wrapper handed to the
        // task's futures in its place.
        waker: Option<(Waker, Waker)>,
    }
}

/// Wakes a tracked task, noting it.
struct NotingWaker(Waker);

impl Wake for NotingWaker {
    fn wake(self: Arc<Self>) {
        note_activity();
        self.0.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        note_activity();
        self.0.wake_by_ref();
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        note_activity();
        let this = self.project();
        let noting = match this.waker {
            Some((runtime, noting)) if runtime.will_wake(cx.waker()) => noting,
            slot => {
                let runtime = cx.waker().clone();
                let noting = Waker::from(Arc::new(NotingWaker(runtime.clone())));
                &slot.insert((runtime, noting)).1
            }
        };
        this.inner.poll(&mut Context::from_waker(noting))
    }
}

/// A server whose runtime the host's event loop drives, on its own thread.
pub struct Driven {
    /// None once joined: dropping it closed what was left open.
    runtime: Option<Runtime>,
    /// A duplicate of the runtime's poller: it stays valid for the host to
    /// stop watching after the runtime is gone.
    poller: OwnedFd,
    served: Option<JoinHandle<io::Result<()>>>,
    ended: Option<io::Result<()>>,
}

impl Driven {
    /// Starts serving `listener` without a thread: nothing runs until the
    /// first [`step`](Self::step).
    pub fn start(listener: Listener, ctx: Arc<ServerCtx>) -> io::Result<Self> {
        let before = crate::sys::eventpoll_fds()?;
        let runtime = super::runtime()?;
        let poller = crate::sys::eventpoll_fds()?
            .into_iter()
            .find(|fd| !before.contains(fd))
            .ok_or_else(|| io::Error::other("cannot find the runtime's poller descriptor"))?;
        let poller = crate::sys::duplicate(poller)?;
        let served = {
            let _in = runtime.enter();
            spawn(super::serve(listener, ctx))
        };
        Ok(Self {
            runtime: Some(runtime),
            poller,
            served: Some(served),
            ended: None,
        })
    }

    /// The descriptor that is readable when a step has work to do. The
    /// host must also step every [`TICK`](Self::TICK) (or
    /// [`IDLE_TICK`](Self::IDLE_TICK)), for timers.
    pub fn fd(&self) -> RawFd {
        self.poller.as_raw_fd()
    }

    /// How often the host must step even when `fd` is not readable, while
    /// connections are open: the resolution of the server's timers.
    pub const TICK: std::time::Duration = std::time::Duration::from_millis(20);

    /// How often the host must step while no connection is open. Only the
    /// server's housekeeping is timed then (metrics gauges, the access log
    /// flush, a backoff after `EMFILE`), and an idle worker stays asleep.
    pub const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

    /// Runs every task that is ready, then returns. Never blocks. Once the
    /// server has ended, drops the runtime, and with it every connection
    /// still open (after an abort), as the end of an I/O thread would.
    pub fn step(&mut self) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        runtime.block_on(async {
            loop {
                ACTIVITY.with(|a| a.set(false));
                // Deferred: the runtime runs every ready task and polls the
                // poller without waiting before this future resumes.
                tokio::task::yield_now().await;
                if !ACTIVITY.with(Cell::get) {
                    break;
                }
            }
        });
        if let Some(served) = self.served.take_if(|s| s.is_finished()) {
            let ended = runtime.block_on(served);
            self.ended = Some(
                ended.unwrap_or_else(|e| Err(io::Error::other(format!("server task failed: {e}")))),
            );
            self.runtime = None;
        }
    }

    /// The server has ended (after a shutdown, every connection closed)
    /// and a step has seen it.
    pub fn finished(&self) -> bool {
        self.runtime.is_none()
    }

    /// How serving ended, once [`finished`](Self::finished); an error only
    /// the first time.
    pub fn join(&mut self) -> io::Result<()> {
        self.ended.take().unwrap_or(Ok(()))
    }
}
