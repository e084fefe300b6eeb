//! The wake-up of the one task that serves a stream.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;

/// Wakes the one task that waits on it. Like `tokio::sync::Notify`'s
/// `notify_one`, a wake-up given while the task is not waiting is kept for
/// its next wait; unlike `Notify`, which keeps a list of waiters behind a
/// lock, it is a flag and one waker, which is all a stream needs.
#[derive(Default)]
pub struct Wakeup {
    woken: AtomicBool,
    waker: AtomicWaker,
}

impl Wakeup {
    /// Wakes the waiting task, or the next one to wait.
    pub fn notify_one(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Completes at the next wake-up (at once for one already given). Only
    /// one task may wait at a time.
    pub fn notified(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.take() {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A wake-up between the check and the registration.
            if self.take() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Registers `waker` for the next notification without taking one
    /// that is already pending (it stays for the next wait).
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Forgets a wake-up given: the task is about to look at everything
    /// the waker could have told it of, so that wake-up is spent. Without
    /// this, the task's next wait would end at once and it would look
    /// again at nothing.
    pub fn clear(&self) {
        self.take();
    }

    /// Takes a wake-up given; a plain load first, as most checks find none
    /// and a load costs no locked instruction.
    fn take(&self) -> bool {
        self.woken.load(Ordering::Acquire) && self.woken.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};

    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(w: &Wakeup, waker: &Waker) -> Poll<()> {
        let fut = std::pin::pin!(w.notified());
        fut.poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_wake_up_before_the_wait_is_kept_once() {
        let w = Wakeup::default();
        let count = Arc::new(Count(0.into()));
        let waker = Waker::from(count.clone());
        w.notify_one();
        assert!(poll(&w, &waker).is_ready());
        assert!(poll(&w, &waker).is_pending(), "one wake-up, one completion");
    }

    #[test]
    fn a_waiting_task_is_woken() {
        let w = Wakeup::default();
        let count = Arc::new(Count(0.into()));
        let waker = Waker::from(count.clone());
        let mut fut = std::pin::pin!(w.notified());
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        w.notify_one();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        );
    }

    #[test]
    fn a_cleared_wake_up_does_not_end_the_next_wait() {
        let w = Wakeup::default();
        let count = Arc::new(Count(0.into()));
        let waker = Waker::from(count.clone());
        w.notify_one();
        w.clear();
        assert!(poll(&w, &waker).is_pending());
        w.notify_one();
        assert!(poll(&w, &waker).is_ready(), "a later wake-up still counts");
    }
}
