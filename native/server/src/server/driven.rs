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
//! spawned through [`spawn`], which counts its tasks while they are woken
//! and not yet run: a step ends after the pass that leaves none.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::ServerCtx;
use super::listener::Listener;
use crate::handoff::mailbox::Mailbox;

thread_local! {
    /// Tasks spawned from this thread that are in their runtime's run
    /// queue, or spawned and not yet run: a step ends once there are none
    /// (tokio does not say whether its run queue is empty). A task counts
    /// once however often it is woken before it runs; wake-ups may come
    /// from any thread, hence an atomic.
    static QUEUED: Arc<AtomicUsize> = Arc::new(AtomicUsize::new(0));
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
    /// While the host runs what a step handed it (see
    /// [`Driven::hold_wakes`]): the tasks it wakes, for the step that
    /// follows to wake with no signal through the poller.
    static HELD: RefCell<Option<Vec<Arc<NotingWaker>>>> = const { RefCell::new(None) };
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

/// Spawns a task on the current runtime, tracked so that a [`Driven::step`]
/// sees it run and wake. Every task of the server is spawned this way.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let queued = QUEUED.with(Arc::clone);
    queued.fetch_add(1, Ordering::AcqRel);
    tokio::spawn(Tracked {
        inner: future,
        waker: None,
        queued,
        fresh: true,
    })
}

pin_project_lite::pin_project! {
    /// A task that counts itself in [`QUEUED`] while it is woken and not
    /// yet run.
    struct Tracked<F> {
        #[pin]
        inner: F,
        // The wrapper of the runtime's waker for this task, and the same
        // as a waker, handed to the task's futures in the runtime's place.
        waker: Option<(Arc<NotingWaker>, Waker)>,
        // The count of the thread that spawned it.
        queued: Arc<AtomicUsize>,
        // Spawned and not yet run: counted by `spawn`.
        fresh: bool,
    }

    impl<F> PinnedDrop for Tracked<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if std::mem::take(this.fresh) {
                this.queued.fetch_sub(1, Ordering::AcqRel);
            }
            if let Some((noting, _)) = this.waker {
                noting.retire();
            }
        }
    }
}

/// Wakes a tracked task, counting it.
struct NotingWaker {
    runtime: Waker,
    /// Its task's count (see [`QUEUED`]).
    count: Arc<AtomicUsize>,
    /// Counted in [`QUEUED`]: woken and not yet run. Set for good once
    /// the task is gone, so that a late wake-up counts nothing.
    queued: AtomicBool,
}

impl NotingWaker {
    /// Wakes the task, unless the host's thread wakes it between two
    /// steps: then the wake-up waits for the next step, and the first of
    /// a batch asks for that step. tokio would otherwise ask for it (a
    /// write to its eventfd) at each task woken from outside it, and an
    /// app that answers many HTTP/2 streams wakes many tasks.
    fn wake_task(self: Arc<Self>) {
        if read_turn().is_some() {
            return self.wake_now();
        }
        // Held for the step the host runs next, or kept for the next step,
        // which the first of a batch asks for.
        let task = HELD.with_borrow_mut(|held| kept_in(self, held.as_mut().map(|h| |t| h.push(t))));
        let task = task.and_then(|task| {
            BETWEEN.with_borrow(|between| kept_in(task, between.as_ref().map(|b| |t| b.push(t))))
        });
        if let Some(task) = task {
            task.wake_now();
        }
    }

    /// Wakes the task in the runtime, counting it.
    fn wake_now(&self) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        self.runtime.wake_by_ref();
    }

    /// The task is about to run: no longer counted.
    fn running(&self) {
        if self.queued.swap(false, Ordering::AcqRel) {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The task is gone: not counted, now or after any later wake-up.
    fn retire(&self) {
        if self.queued.swap(true, Ordering::AcqRel) {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Gives `task` to `keep`, if there is one; else gives it back.
fn kept_in<T>(task: T, keep: Option<impl FnOnce(T)>) -> Option<T> {
    match keep {
        Some(keep) => {
            keep(task);
            None
        }
        None => Some(task),
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
        let this = self.project();
        if std::mem::take(this.fresh) {
            this.queued.fetch_sub(1, Ordering::AcqRel);
        }
        let (noting, waker) = match this.waker {
            Some((noting, waker)) if noting.runtime.will_wake(cx.waker()) => (&*noting, &*waker),
            slot => {
                if let Some((old, _)) = slot.take() {
                    old.retire();
                }
                let noting = Arc::new(NotingWaker {
                    runtime: cx.waker().clone(),
                    count: this.queued.clone(),
                    queued: AtomicBool::new(false),
                });
                let (noting, waker) = slot.insert((noting.clone(), Waker::from(noting)));
                (&*noting, &*waker)
            }
        };
        noting.running();
        this.inner.poll(&mut Context::from_waker(waker))
    }
}

/// Wake-ups held while the host runs what a step handed it (see
/// [`Driven::hold_wakes`]). Dropped without [`Driven::run_held`] (an
/// unwinding host), it signals them as any other wake-up between steps.
#[must_use]
pub struct HeldWakes(());

impl Drop for HeldWakes {
    fn drop(&mut self) {
        if let Some(held) = HELD.take() {
            held.into_iter().for_each(NotingWaker::wake_task);
        }
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
                    .deliver_to(|task: Arc<NotingWaker>| task.wake_now()),
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

    /// Holds the wake-ups that this thread makes between steps while the
    /// guard lives: the host takes it before it runs what a step handed it
    /// (the apps' first steps), and the next step, in the same read turn
    /// (see [`run_held`](Self::run_held)), wakes them with no signal
    /// through the poller and no turn of the host's loop in between.
    pub fn hold_wakes(&self) -> HeldWakes {
        HELD.set(Some(Vec::new()));
        HeldWakes(())
    }

    /// Runs a step in the last read turn if wake-ups are held (see
    /// [`hold_wakes`](Self::hold_wakes)); whether it ran one. Wake-ups
    /// after the guard is dropped are signalled as before.
    pub fn run_held(&mut self, held: HeldWakes) -> bool {
        let any = HELD.with_borrow(|h| h.as_ref().is_some_and(|h| !h.is_empty()));
        if any {
            self.step_in_turn();
        }
        drop(held);
        any
    }

    /// A step; it first wakes the tasks held so far (see
    /// [`hold_wakes`](Self::hold_wakes)), inside the runtime, so that they
    /// join its run queue with no signal.
    fn run_step(&mut self, turn: u64) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        let woken = HELD.with_borrow_mut(|h| h.as_mut().map(std::mem::take).unwrap_or_default());
        TURN.with(|t| t.set(Some(turn)));
        runtime.block_on(async {
            woken.into_iter().for_each(NotingWaker::wake_task);
            // Deferred: the runtime runs every ready task and polls the
            // poller without waiting before this future resumes.
            tokio::task::yield_now().await;
            let queued = QUEUED.with(Arc::clone);
            while queued.load(Ordering::Acquire) > 0 {
                tokio::task::yield_now().await;
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

    /// A task that records when it runs and parks once, leaving its waker.
    fn parked_once(
        d: &Driven,
        tx: mpsc::Sender<&'static str>,
    ) -> Arc<std::sync::Mutex<Option<Waker>>> {
        let waker = Arc::new(std::sync::Mutex::new(None));
        let slot = waker.clone();
        let mut waited = false;
        spawn_on(
            d,
            std::future::poll_fn(move |cx| {
                if std::mem::replace(&mut waited, true) {
                    tx.send("ran").unwrap();
                    return Poll::Ready(());
                }
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }),
        );
        waker
    }

    fn queued_here() -> usize {
        QUEUED.with(|q| q.load(Ordering::Acquire))
    }

    /// A stepped server whose parked task the host woke while holding
    /// wake-ups.
    fn woken_while_held() -> (
        Driven,
        std::sync::MutexGuard<'static, ()>,
        mpsc::Receiver<&'static str>,
        HeldWakes,
    ) {
        let (mut d, one) = driven();
        d.batch_wakes_between_steps();
        let (tx, rx) = mpsc::channel();
        let waker = parked_once(&d, tx);
        d.step();
        let held = d.hold_wakes();
        waker.lock().unwrap().take().unwrap().wake();
        (d, one, rx, held)
    }

    #[test]
    fn wake_ups_held_by_the_host_run_in_the_step_after_with_no_signal() {
        let (mut d, _one, rx, held) = woken_while_held();
        assert!(
            !crate::sys::wait_readable(d.fd(), 50),
            "held: no signal through the poller"
        );
        assert_eq!(kept_between(), 0);
        assert!(d.run_held(held));
        assert_eq!(rx.try_recv(), Ok("ran"));
        assert_eq!(queued_here(), 0, "nothing left counted");
        assert!(!d.run_held(d.hold_wakes()), "no step for nothing");
        BETWEEN.take();
    }

    #[test]
    fn held_wake_ups_are_signalled_when_the_guard_is_dropped() {
        let (mut d, _one, rx, held) = woken_while_held();
        drop(held);
        assert_eq!(kept_between(), 1);
        assert!(crate::sys::wait_readable(d.fd(), 2000));
        d.step();
        assert_eq!(rx.try_recv(), Ok("ran"));
        BETWEEN.take();
    }

    #[test]
    fn a_task_gone_while_woken_is_no_longer_counted() {
        let (mut d, _one) = driven();
        let (tx, _rx) = mpsc::channel();
        let waker = parked_once(&d, tx);
        d.step();
        let waker = waker.lock().unwrap().take().unwrap();
        // Counted once however often it is woken.
        waker.wake_by_ref();
        waker.wake_by_ref();
        assert_eq!(queued_here(), 1);
        d.runtime.take();
        assert_eq!(queued_here(), 0, "dropped with its runtime");
        waker.wake();
        assert_eq!(queued_here(), 0, "a late wake-up counts nothing");
    }
}
