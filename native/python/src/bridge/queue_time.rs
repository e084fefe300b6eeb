//! How long requests wait for the app, on the Python thread: the
//! queue-time histogram (`--metrics`) and shedding (`--max-queue-time`).
//!
//! A request's wait runs from the first byte of its head to its task's
//! first step, when the app is called: tasks queue in the event loop as
//! well as in the server. That wait is known only once it is over, and a
//! request shed then gets its 503 only after the loop gets to it. So a
//! request is also judged as it is handed to the loop, by what it will
//! likely wait: the time it waited so far, plus one loop turn per request
//! already handed over and not started, at the pace apps have been
//! starting lately. Shed then, its 503 goes out at once. And since a
//! request can wait in the kernel's socket buffer while the loop runs
//! apps, unseen, the apps run since the server last read its sockets count
//! towards the wait of what it reads next.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::metrics::Slot;

/// Weight of a new gap in the moving average: 1/8, so a handful of
/// requests moves it, and one slow request does not.
const GAP_WEIGHT_SHIFT: u32 = 3;

/// The worker's account of requests waiting for the app.
pub(crate) struct QueueTime {
    metrics: Option<Slot>,
    max: Option<Duration>,
    /// Requests handed to the loop whose app has not started yet (counted
    /// only with `--max-queue-time`).
    pending: AtomicUsize,
    /// When the last app started, in nanoseconds since `epoch`; 0 when the
    /// last request to start was shed.
    last_start: AtomicU64,
    /// Moving average of the time between app starts while others waited:
    /// what the loop takes per request.
    gap_ns: AtomicU64,
    /// Apps served since the server last read its sockets (see
    /// [`Self::turn`]).
    served_this_turn: AtomicUsize,
    /// What [`Self::turn`] estimated for the requests read in this turn.
    unseen_ns: AtomicU64,
    /// Requests shed so far.
    shed: AtomicU64,
    epoch: Instant,
}

impl QueueTime {
    pub(crate) fn new(metrics: Option<Slot>, max: Option<Duration>) -> Self {
        Self {
            metrics,
            max,
            pending: AtomicUsize::new(0),
            last_start: AtomicU64::new(0),
            gap_ns: AtomicU64::new(0),
            served_this_turn: AtomicUsize::new(0),
            unseen_ns: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// The server read its sockets again: requests read now may have
    /// waited in the kernel's buffers while the loop ran the apps served
    /// since the last read, unseen. That time (apps served times the
    /// recent pace) is added to the wait of each request read in this
    /// turn ([`Self::arrival`]).
    pub(crate) fn turn(&self) {
        if !self.is_active() {
            return;
        }
        let served = self.served_this_turn.swap(0, Ordering::Relaxed) as u64;
        let gap = self.gap_ns.load(Ordering::Relaxed);
        self.unseen_ns
            .store(served.saturating_mul(gap), Ordering::Relaxed);
    }

    /// When a request read in this turn began to arrive, at the earliest:
    /// when its head's first byte was read, less what it may have waited
    /// unseen.
    pub(crate) fn arrival(&self, read_at: Instant) -> Instant {
        let unseen = Duration::from_nanos(self.unseen_ns.load(Ordering::Relaxed));
        read_at.checked_sub(unseen).unwrap_or(read_at)
    }

    /// Requests shed so far: a change tells the worker to write their
    /// 503s out now.
    pub(crate) fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Notes a request shed.
    pub(crate) fn note_shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether waits are measured at all (`--metrics` or
    /// `--max-queue-time`).
    pub(crate) fn is_active(&self) -> bool {
        self.max.is_some() || self.metrics.is_some()
    }

    /// Whether `--max-queue-time` is set.
    pub(crate) fn has_limit(&self) -> bool {
        self.max.is_some()
    }

    /// As a request that arrived at `arrived` is handed to the loop: false
    /// when it will likely wait too long, and is to be shed now. True
    /// counts it as pending until [`Self::start`] or [`Self::abandon`].
    pub(crate) fn admit(&self, arrived: Instant) -> bool {
        let Some(max) = self.max else {
            return true;
        };
        let ahead = self.pending.load(Ordering::Relaxed) as u64;
        let gap = self.gap_ns.load(Ordering::Relaxed);
        let expected = arrived.elapsed() + Duration::from_nanos(ahead.saturating_mul(gap));
        if expected > max {
            return false;
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// As the app of an admitted request (or any request, without
    /// `--max-queue-time`) is about to be called: counts the wait, and
    /// false when it was longer than `--max-queue-time`.
    pub(crate) fn start(&self, arrived: Instant, counted: bool) -> bool {
        let waited = arrived.elapsed();
        if let Some(slot) = &self.metrics {
            slot.record_queue(waited);
        }
        let Some(max) = self.max else {
            return true;
        };
        let served = waited <= max;
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // 0: the last one started was shed (it took no time), or none was.
        let last = self
            .last_start
            .swap(if served { now.max(1) } else { 0 }, Ordering::Relaxed);
        let others = self.pending.load(Ordering::Relaxed);
        if counted {
            self.abandon();
        }
        // Others were waiting when this one started, and the last one
        // started was served: the gap since was the loop's time for one
        // request.
        if served {
            self.served_this_turn.fetch_add(1, Ordering::Relaxed);
        }
        if others > 1 && last > 0 {
            let gap = now.saturating_sub(last);
            let avg = self.gap_ns.load(Ordering::Relaxed);
            let avg = avg - (avg >> GAP_WEIGHT_SHIFT) + (gap >> GAP_WEIGHT_SHIFT);
            self.gap_ns.store(avg, Ordering::Relaxed);
        }
        served
    }

    /// An admitted request leaves the count without its app starting.
    pub(crate) fn abandon(&self) {
        let _ = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_limit_everything_is_admitted_and_nothing_counted() {
        let q = QueueTime::new(None, None);
        let long_ago = Instant::now() - Duration::from_secs(10);
        assert!(q.admit(long_ago));
        assert!(q.start(long_ago, false));
        assert_eq!(q.pending.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_request_that_waited_too_long_is_shed_at_either_point() {
        let q = QueueTime::new(None, Some(Duration::from_millis(100)));
        let late = Instant::now() - Duration::from_millis(150);
        assert!(!q.admit(late));
        assert!(!q.start(late, false));
        let fresh = Instant::now();
        assert!(q.admit(fresh));
        assert!(q.start(fresh, true));
        assert_eq!(q.pending.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_expected_wait_counts_the_requests_ahead_at_the_recent_pace() {
        let q = QueueTime::new(None, Some(Duration::from_millis(100)));
        q.gap_ns.store(20_000_000, Ordering::Relaxed); // 20 ms per request
        let now = Instant::now();
        // Four ahead: 80 ms expected, admitted; the sixth would wait 100+.
        for _ in 0..5 {
            assert!(q.admit(now));
        }
        assert!(!q.admit(now));
        // As they start, room comes back.
        assert!(q.start(now, true));
        assert!(q.start(now, true));
        assert!(q.admit(now));
        q.abandon();
        q.abandon();
        q.abandon();
        q.abandon();
        q.abandon();
        assert_eq!(q.pending.load(Ordering::Relaxed), 0);
    }
}
