//! The hand-over between the I/O thread and the application side (the
//! Python thread of a worker, or the C callbacks of an embedding program):
//! mailboxes, and the per-stream state both sides share. Nothing here
//! touches Python.

pub mod http;
pub mod mailbox;
pub mod queue;
pub mod wakeup;
pub mod websocket;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mailbox::Mailbox;
use wakeup::Wakeup;

/// What a stream (an HTTP request, a WebSocket) shares between its
/// connection task and the application: its state behind a lock, and the
/// flags that wake the connection task at most once per batch.
pub struct Handoff<S> {
    state: Mutex<S>,
    /// Wakes the connection task.
    pub conn_wake: Wakeup,
    /// A wake-up is in the I/O thread's mailbox already.
    wake_pending: AtomicBool,
}

/// An entry of the I/O thread's mailbox that wakes a stream's connection
/// task (`ConnWake`, in [`queue`]).
pub trait ConnWaking<S>: Sized {
    /// The entry that wakes `shared`'s connection task.
    fn conn_wake(shared: Arc<Handoff<S>>) -> Self;
}

/// An entry of the application side's mailbox that wakes a stream's
/// waiting `receive()` or `send()` (`Job`, in [`queue`]).
pub trait AppWaking<S>: Sized {
    /// The entry that wakes `shared`'s waiting `receive()` or `send()`.
    fn app_wake(shared: Arc<Handoff<S>>) -> Self;
}

impl<S> Handoff<S> {
    pub fn with_state(state: S) -> Self {
        Self {
            state: Mutex::new(state),
            conn_wake: Wakeup::default(),
            wake_pending: AtomicBool::new(false),
        }
    }

    /// The state; a poisoned lock is taken anyway (the state stays
    /// consistent between statements).
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From the application side: asks the connection task to look again,
    /// through `wakes`, the I/O thread's mailbox, unless the caller is on
    /// the I/O thread.
    pub fn wake_conn<W: ConnWaking<S>>(self: &Arc<Self>, wakes: &Mailbox<W>) {
        if on_io_thread() {
            // An embedded handler answering inline, or an app on the
            // thread that steps its server: no mailbox round trip.
            self.conn_wake.notify_one();
        } else if !self.wake_pending.swap(true, Ordering::AcqRel) {
            wakes.push(W::conn_wake(self.clone()));
        }
    }

    /// On the I/O thread, for a wake-up taken from the mailbox.
    pub fn deliver_wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
        self.conn_wake.notify_one();
    }
}

/// The I/O side's changes to a stream's state, each followed by a wake of
/// the application side when a waiting `receive()`/`send()` can go on.
impl<S: SendSide> Handoff<S> {
    /// Changes the state with `f`, then queues a wake for the application
    /// side in `queue`, its mailbox, if a waiting `receive()`/`send()` can
    /// now go on. Returns what `f` returns.
    pub fn update<R, J: AppWaking<S>>(
        self: &Arc<Self>,
        queue: &Mailbox<J>,
        f: impl FnOnce(&mut S) -> R,
    ) -> R {
        let mut st = self.lock();
        let r = f(&mut st);
        let wake = st.needs_wake();
        drop(st);
        if wake {
            queue.push(J::app_wake(self.clone()));
        }
        r
    }
}

thread_local! {
    static IO_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as a server's I/O thread.
pub fn mark_io_thread() {
    IO_THREAD.with(|t| t.set(true));
}

/// Whether the calling thread is a server's I/O thread, where nothing may
/// block and a connection can be woken directly.
pub fn on_io_thread() -> bool {
    IO_THREAD.with(std::cell::Cell::get)
}

/// Who waits on the application side for a stream to be ready (a body
/// chunk to receive, room to send).
pub enum Waiter {
    /// A future of the application thread (the Python bridge's asyncio
    /// future), resolved there when a wake job arrives; its type is the
    /// application side's.
    Future(Box<dyn std::any::Any + Send>),
    /// A thread parked in a blocking call of the embedding API.
    Thread(std::thread::Thread),
}

/// Who waits on one stream on the application side, and whether a wake-up
/// for them is queued already.
#[derive(Default)]
pub struct Waiters {
    /// Waits in `receive()` for body, a message or a disconnect.
    pub recv: Option<Waiter>,
    /// Waits in `send()` for the connection to drain.
    pub send: Option<Waiter>,
    /// A wake job is already queued for the application thread.
    pub wake_queued: bool,
}

impl Waiters {
    /// `waiter` waits for something to receive.
    pub fn wait_recv(&mut self, waiter: Waiter) {
        self.recv = Some(waiter);
        self.wake_queued = false;
    }

    /// `waiter` waits for room to send.
    pub fn wait_send(&mut self, waiter: Waiter) {
        self.send = Some(waiter);
        self.wake_queued = false;
    }

    /// Given whether a receive and a send could go on now: wakes parked
    /// threads of the embedding API right here, and returns whether a
    /// future needs the application thread (marking that wake as queued).
    pub fn needs_wake(&mut self, can_receive: bool, can_send: bool) -> bool {
        if self.wake_queued {
            return false;
        }
        let recv_ready = self.recv.is_some() && can_receive;
        let send_ready = self.send.is_some() && can_send;
        let parked = (!recv_ready || unpark_thread(&mut self.recv))
            && (!send_ready || unpark_thread(&mut self.send));
        if (recv_ready || send_ready) && !parked {
            self.wake_queued = true;
            true
        } else {
            false
        }
    }
}

/// Stream state whose `send()` has backpressure.
pub trait SendSide {
    /// Whether a waiting `send()` may go on (drained, or the peer is gone).
    fn can_send(&self) -> bool;
    /// Whether a `receive()` would complete now.
    fn receive_ready(&self) -> bool;
    /// The stream's waiters.
    fn waiters(&mut self) -> &mut Waiters;

    /// Whether the application side must be woken: a waiter exists that
    /// can now make progress and no wake is queued yet. Marks the wake as
    /// queued.
    fn needs_wake(&mut self) -> bool {
        // The stream is asked only on behalf of a waiter: most calls have
        // none.
        let waiting = self.waiters();
        let (recv, send) = (waiting.recv.is_some(), waiting.send.is_some());
        let can_receive = recv && self.receive_ready();
        let can_send = send && self.can_send();
        self.waiters().needs_wake(can_receive, can_send)
    }
}

/// Takes and unparks the thread waiting in `slot`; false when a future
/// waits there instead (or nothing).
fn unpark_thread(slot: &mut Option<Waiter>) -> bool {
    match slot.take() {
        Some(Waiter::Thread(t)) => {
            t.unpark();
            true
        }
        other => {
            *slot = other;
            false
        }
    }
}

impl Waiter {
    /// The calling thread, which then unlocks the stream and parks (see
    /// [`std::thread::park`]), re-checking its condition when it wakes.
    pub fn this_thread() -> Self {
        Self::Thread(std::thread::current())
    }

    /// Wakes a parked thread at once; hands a future back for the
    /// application thread to resolve.
    pub fn into_future(self) -> Option<Box<dyn std::any::Any + Send>> {
        match self {
            Self::Future(f) => Some(f),
            Self::Thread(t) => {
                t.unpark();
                None
            }
        }
    }
}
