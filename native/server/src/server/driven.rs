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

use std::cell::{Cell, RefCell};
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
use crate::handoff::mailbox::Mailbox;

thread_local! {
    /// A tracked task ran, woke, or was spawned on this thread.
    static ACTIVITY: Cell<bool> = const { Cell::new(false) };
    /// The read turn this thread is in, if it is stepping a driven server
    /// (see [`read_turn`]).
    static TURN: Cell<Option<u64>> = const { Cell::new(None) };
    /// Read turns begun on this thread.
    static TURNS: Cell<u64> = const { Cell::new(0) };
    /// Tasks to wake once the step ends.
    static DEFERRED: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
    /// On the thread of a driven server: tasks woken between two steps, for
    /// the next step to wake. The first of a batch makes the mailbox's
    /// eventfd readable, which asks the host for that step.
    static BETWEEN: RefCell<Option<Arc<Mailbox<Arc<NotingWaker>>>>> = const { RefCell::new(None) };
}

/// The read turn of the step this thread is running, or None outside a
/// step of a driven server (a server with a thread of its own).
///
/// A driven server's loop turn reads its sockets once, as one
/// `epoll_wait` a turn would: a [`Driven::step`] begins a new read turn,
/// and a step for the timers continues the last one. A connection whose
/// response was written in a turn has its next request served in a later
/// one, after the app has run what this turn took. A closed-loop load then
/// keeps its groups of requests whole; serving a client's next request in
/// the turn that answered it would split them, and the requests split off
/// wait a whole turn more.
pub fn read_turn() -> Option<u64> {
    TURN.with(Cell::get)
}

/// Runs the task of `waker` again in the next step, not this one: it is
/// woken once this step ends, which makes the poller readable, so that the
/// host steps again after it has run what this step gave it.
pub fn defer_to_next_step(waker: &Waker) {
    DEFERRED.with_borrow_mut(|d| {
        if !d.iter().any(|w| w.will_wake(waker)) {
            d.push(waker.clone());
        }
    });
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

impl NotingWaker {
    /// Wakes the task, unless the host's thread wakes it between two
    /// steps: then the wake-up waits for the next step, and the first of
    /// a batch asks for that step. tokio would otherwise ask for it (a
    /// write to its eventfd) at each task woken from outside it, and an
    /// app that answers many HTTP/2 streams wakes many tasks.
    fn wake_task(self: Arc<Self>) {
        note_activity();
        let task = if read_turn().is_none() {
            BETWEEN.with_borrow(|between| match between {
                Some(between) => {
                    between.push(self);
                    None
                }
                None => Some(self),
            })
        } else {
            Some(self)
        };
        if let Some(task) = task {
            task.0.wake_by_ref();
        }
    }
}

impl Wake for NotingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_task();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.clone().wake_task();
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

/// A server whose runtime the host's event loop drives, on the host's
/// thread.
pub struct Driven {
    /// None once the server has ended: dropping it closed what was left
    /// open.
    runtime: Option<Runtime>,
    /// A duplicate of the runtime's poller: it stays valid for the host to
    /// stop watching after the runtime is gone.
    poller: OwnedFd,
    served: Option<JoinHandle<io::Result<()>>>,
    ended: Option<io::Result<()>>,
}

impl Driven {
    /// A runtime for the host to drive, and its poller. tokio does not
    /// expose the poller, so it is the epoll instance that building the
    /// runtime added (tokio holds it under two descriptors). Fails, so that
    /// the caller can give the server a thread instead, if another thread
    /// made an epoll instance at the same moment.
    pub fn new() -> io::Result<Self> {
        let before = crate::sys::eventpoll_fds()?;
        let runtime = super::runtime()?;
        let poller = the_one_added(&before, crate::sys::eventpoll_fds()?)?;
        Ok(Self {
            runtime: Some(runtime),
            poller: crate::sys::duplicate(poller)?,
            served: None,
            ended: None,
        })
    }

    /// Starts serving `listeners`. Nothing runs until the first
    /// [`step`](Self::step).
    pub fn serve(&mut self, listeners: Vec<Listener>, ctx: Arc<ServerCtx>) {
        // The host's thread is the server's I/O thread: the app's output
        // wakes its connection directly, with no mailbox between them.
        crate::handoff::mark_io_thread();
        self.batch_wakes_between_steps();
        if let Some(runtime) = &self.runtime {
            let _in = runtime.enter();
            self.served = Some(spawn(super::serve(listeners, ctx)));
        }
    }

    /// Tasks that this thread wakes between two steps wait for the next
    /// step, which the first of them asks for (see
    /// [`NotingWaker::wake_task`]). Without it, each asks for a step.
    fn batch_wakes_between_steps(&self) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        let _in = runtime.enter();
        if let Ok(between) = Mailbox::new().map(Arc::new) {
            spawn(
                between
                    .clone()
                    .deliver_to(|task: Arc<NotingWaker>| task.0.wake_by_ref()),
            );
            BETWEEN.set(Some(between));
        }
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
    /// Called when the poller is readable: a new read turn (see
    /// [`read_turn`]).
    pub fn step(&mut self) {
        let turn = TURNS.with(|t| {
            t.set(t.get() + 1);
            t.get()
        });
        self.run_step(turn);
    }

    /// A step in the last read turn: for the timers (every
    /// [`TICK`](Self::TICK)), or to write out what the host queued.
    pub fn step_in_turn(&mut self) {
        self.run_step(TURNS.with(Cell::get));
    }

    fn run_step(&mut self, turn: u64) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        TURN.with(|t| t.set(Some(turn)));
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
        TURN.with(|t| t.set(None));
        // Woken outside the runtime: the wake-up goes through its poller.
        for waker in DEFERRED.take() {
            waker.wake();
        }
        if let Some(served) = self.served.take_if(|s| s.is_finished()) {
            let ended = runtime.block_on(served);
            self.ended = Some(
                ended.unwrap_or_else(|e| Err(io::Error::other(format!("server task failed: {e}")))),
            );
            self.runtime = None;
            BETWEEN.take();
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

/// The epoll instance that `after` has and `before` had not: its lowest
/// descriptor. Descriptors that watch the same targets are one instance;
/// two instances cannot be told apart.
fn the_one_added(before: &[(RawFd, String)], after: Vec<(RawFd, String)>) -> io::Result<RawFd> {
    let mut added: Vec<(RawFd, String)> = after
        .into_iter()
        .filter(|(fd, _)| !before.iter().any(|(b, _)| b == fd))
        .collect();
    added.sort();
    match &added[..] {
        [(fd, watched), rest @ ..] if rest.iter().all(|(_, w)| w == watched) => Ok(*fd),
        _ => Err(io::Error::other(format!(
            "cannot tell the runtime's poller among {} new epoll descriptors",
            added.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Tests run on parallel threads, and a runtime built on another
    /// thread at the same moment makes the poller ambiguous (which
    /// [`Driven::new`] refuses): one at a time, and again if need be.
    fn driven() -> (Driven, std::sync::MutexGuard<'static, ()>) {
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let guard = ONE.lock().unwrap_or_else(|e| e.into_inner());
        // Other tests of the crate build runtimes too.
        for _ in 0..100 {
            if let Ok(d) = Driven::new() {
                return (d, guard);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no runtime whose poller could be told apart");
    }

    fn spawn_on(d: &Driven, f: impl Future<Output = ()> + Send + 'static) {
        let _in = d.runtime.as_ref().unwrap().enter();
        spawn(f);
    }

    #[test]
    fn a_step_runs_every_task_made_ready_during_it() {
        let (mut d, _one) = driven();
        let (tx, rx) = mpsc::channel();
        spawn_on(&d, async move {
            tokio::task::yield_now().await;
            spawn(async move {
                tokio::task::yield_now().await;
                tx.send("ran").unwrap();
            });
        });
        d.step();
        assert_eq!(rx.try_recv(), Ok("ran"));
    }

    #[test]
    fn the_poller_is_readable_when_a_socket_is() {
        let (mut d, _one) = driven();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (tx, rx) = mpsc::channel();
        spawn_on(&d, async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = l.accept().await;
            tx.send("accepted").unwrap();
        });
        d.step();
        assert!(!crate::sys::wait_readable(d.fd(), 50), "nothing to do yet");
        let _client = std::net::TcpStream::connect(addr).unwrap();
        assert!(crate::sys::wait_readable(d.fd(), 2000));
        d.step();
        assert_eq!(rx.try_recv(), Ok("accepted"));
    }

    #[test]
    fn a_timer_fires_on_the_first_step_after_its_deadline() {
        let (mut d, _one) = driven();
        let (tx, rx) = mpsc::channel();
        spawn_on(&d, async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send("fired").unwrap();
        });
        d.step();
        assert!(rx.try_recv().is_err());
        std::thread::sleep(Duration::from_millis(60));
        d.step();
        assert_eq!(rx.try_recv(), Ok("fired"));
    }

    #[test]
    fn a_step_begins_a_read_turn_and_a_step_for_timers_continues_it() {
        let (mut d, _one) = driven();
        let (tx, rx) = mpsc::channel();
        let step = move |d: &mut Driven, begins: bool| {
            let tx = tx.clone();
            spawn_on(d, async move { tx.send(read_turn()).unwrap() });
            if begins {
                d.step();
            } else {
                d.step_in_turn();
            }
        };
        step(&mut d, true);
        step(&mut d, true);
        step(&mut d, false);
        let turns: Vec<Option<u64>> = rx.try_iter().collect();
        let [Some(a), Some(b), Some(c)] = turns[..] else {
            panic!("turns {turns:?}");
        };
        assert_ne!(a, b);
        assert_eq!(b, c);
        assert_eq!(read_turn(), None, "outside a step");
    }

    #[test]
    fn a_deferred_task_runs_in_the_next_step_which_the_poller_asks_for() {
        let (mut d, _one) = driven();
        let (tx, rx) = mpsc::channel();
        let mut deferred = false;
        spawn_on(
            &d,
            std::future::poll_fn(move |cx| {
                tx.send(read_turn()).unwrap();
                if std::mem::replace(&mut deferred, true) {
                    return Poll::Ready(());
                }
                defer_to_next_step(cx.waker());
                Poll::Pending
            }),
        );
        d.step();
        assert_eq!(rx.try_iter().count(), 1, "ran once in the first step");
        assert!(crate::sys::wait_readable(d.fd(), 2000));
        d.step();
        assert!(matches!(rx.try_recv(), Ok(Some(_))));
    }

    fn kept_between() -> usize {
        BETWEEN.with_borrow(|b| b.as_ref().map_or(0, |b| b.queued()))
    }

    #[test]
    fn tasks_woken_between_steps_wait_for_one_step_that_the_first_asks_for() {
        let (mut d, _one) = driven();
        d.batch_wakes_between_steps();
        let (tx, rx) = mpsc::channel();
        let wakers = Arc::new(std::sync::Mutex::new(Vec::new()));
        for i in 0..3 {
            let (tx, wakers) = (tx.clone(), wakers.clone());
            let mut waited = false;
            spawn_on(
                &d,
                std::future::poll_fn(move |cx| {
                    if std::mem::replace(&mut waited, true) {
                        tx.send(i).unwrap();
                        return Poll::Ready(());
                    }
                    wakers.lock().unwrap().push(cx.waker().clone());
                    Poll::Pending
                }),
            );
        }
        d.step();
        assert!(!crate::sys::wait_readable(d.fd(), 50), "all three wait");
        for waker in wakers.lock().unwrap().drain(..) {
            waker.wake();
        }
        assert_eq!(kept_between(), 3, "kept for the next step");
        assert!(
            crate::sys::wait_readable(d.fd(), 2000),
            "which is asked for"
        );
        d.step();
        let mut ran: Vec<i32> = rx.try_iter().collect();
        ran.sort();
        assert_eq!(ran, [0, 1, 2]);
        assert_eq!(kept_between(), 0);
        BETWEEN.take();
    }

    #[test]
    fn the_poller_is_the_one_new_epoll_instance() {
        let e = |fd: RawFd, w: &str| (fd, w.to_string());
        let before = [e(3, "tfd: 4")];
        // tokio holds its poller under two descriptors.
        let after = vec![e(3, "tfd: 4"), e(9, "tfd: 8"), e(11, "tfd: 8")];
        assert_eq!(the_one_added(&before, after).unwrap(), 9);
        // Another thread's epoll made meanwhile: two instances.
        let after = vec![e(3, "tfd: 4"), e(9, "tfd: 8"), e(11, "tfd: 10")];
        assert!(the_one_added(&before, after).is_err());
        assert!(the_one_added(&before, vec![e(3, "tfd: 4")]).is_err());
    }
}
