//! The shared memory region: one fixed-layout slot of atomic counters per
//! worker, in a memfd the workers inherit.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Methods counted by name; the rest are "OTHER".
pub const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER",
];
/// Status codes 100..=599 are counted one by one.
const STATUSES: usize = 500;
/// Upper bounds of the latency histogram's buckets, in seconds (+Inf last).
pub const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Where each value lives in a slot, in `u64` words.
pub mod layout {
    use super::{BUCKETS, METHODS, STATUSES};

    pub const REQUESTS: usize = 0;
    pub const DURATION_BUCKETS: usize = REQUESTS + METHODS.len() * STATUSES;
    /// One more than BUCKETS: the +Inf bucket.
    pub const DURATION_SUM_US: usize = DURATION_BUCKETS + BUCKETS.len() + 1;
    pub const DURATION_COUNT: usize = DURATION_SUM_US + 1;
    pub const BYTES_SENT: usize = DURATION_COUNT + 1;
    pub const BYTES_RECEIVED: usize = BYTES_SENT + 1;
    pub const IN_FLIGHT: usize = BYTES_RECEIVED + 1;
    pub const CONNECTIONS: usize = IN_FLIGHT + 1;
    pub const LOOP_LAG_US: usize = CONNECTIONS + 1;
    pub const PID: usize = LOOP_LAG_US + 1;
    /// The queue-time histogram: buckets (+Inf last), sum, count.
    pub const QUEUE_BUCKETS: usize = PID + 1;
    pub const QUEUE_SUM_US: usize = QUEUE_BUCKETS + BUCKETS.len() + 1;
    pub const QUEUE_COUNT: usize = QUEUE_SUM_US + 1;
    pub const WORDS: usize = QUEUE_COUNT + 1;
}

/// Most worker slots (`--workers` plus those added with SIGTTIN).
pub const MAX_SLOTS: usize = 256;

/// A mapped region of `slots` slots.
pub struct Region {
    words: crate::sys::SharedWords,
    slots: usize,
}

impl Region {
    /// A new zeroed region (memfd) for `slots` workers.
    pub fn create(slots: usize) -> std::io::Result<Self> {
        let words = crate::sys::SharedWords::create(c"cormorant-metrics", slots * layout::WORDS)?;
        Ok(Self { words, slots })
    }

    /// Maps a region inherited as descriptor `fd`.
    pub fn open(fd: RawFd, slots: usize) -> std::io::Result<Self> {
        let fd = crate::sys::adopt_fd(fd)?;
        let words = crate::sys::SharedWords::map(fd, slots * layout::WORDS)?;
        Ok(Self { words, slots })
    }

    /// The descriptor, for worker processes to inherit (the spawner
    /// clears its close-on-exec flag in the child).
    pub fn raw_fd(&self) -> RawFd {
        self.words.fd().as_raw_fd()
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Word `word` of slot `slot`.
    pub fn word(&self, slot: usize, word: usize) -> &AtomicU64 {
        assert!(slot < self.slots && word < layout::WORDS);
        &self.words.words()[slot * layout::WORDS + word]
    }
}

/// One worker's slot: what it counts into.
#[derive(Clone)]
pub struct Slot {
    region: Arc<Region>,
    index: usize,
}

impl Slot {
    /// Takes slot `index` for this process. Counters keep what an earlier
    /// worker of the slot counted (so sums never go down); gauges restart.
    pub fn take(region: Arc<Region>, index: usize) -> Self {
        let s = Self { region, index };
        for w in [layout::IN_FLIGHT, layout::CONNECTIONS, layout::LOOP_LAG_US] {
            s.word(w).store(0, Ordering::Relaxed);
        }
        s.word(layout::PID)
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        s
    }

    /// Takes slot `index` of the region inherited as descriptor `fd`, if
    /// it is a region and has that slot.
    pub fn attach(fd: RawFd, index: usize) -> Option<Self> {
        let region = Region::open(fd, MAX_SLOTS).ok()?;
        (index < region.slots()).then(|| Self::take(Arc::new(region), index))
    }

    fn word(&self, w: usize) -> &AtomicU64 {
        self.region.word(self.index, w)
    }

    /// Counts one finished request.
    pub fn record(&self, method: &[u8], status: u16, elapsed: Duration, sent: u64) {
        let m = METHODS[..7]
            .iter()
            .position(|n| n.as_bytes() == method)
            .unwrap_or(7);
        let s = usize::from(status.clamp(100, 599) - 100);
        self.word(layout::REQUESTS + m * STATUSES + s)
            .fetch_add(1, Ordering::Relaxed);
        self.observe(layout::DURATION_BUCKETS, elapsed);
        self.word(layout::BYTES_SENT)
            .fetch_add(sent, Ordering::Relaxed);
    }

    /// Counts how long a request waited, from its head's first byte to
    /// the app being called (or to being shed).
    pub fn record_queue(&self, waited: Duration) {
        self.observe(layout::QUEUE_BUCKETS, waited);
    }

    /// Adds `d` to the histogram at `buckets`, whose sum and count follow
    /// its buckets (as both histograms' layouts do).
    fn observe(&self, buckets: usize, d: Duration) {
        let secs = d.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        self.word(buckets + b).fetch_add(1, Ordering::Relaxed);
        self.word(buckets + BUCKETS.len() + 1)
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.word(buckets + BUCKETS.len() + 2)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts request body bytes received.
    pub fn received(&self, n: u64) {
        self.word(layout::BYTES_RECEIVED)
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the gauges.
    pub fn set_gauges(&self, in_flight: usize, connections: usize) {
        self.word(layout::IN_FLIGHT)
            .store(in_flight as u64, Ordering::Relaxed);
        self.word(layout::CONNECTIONS)
            .store(connections as u64, Ordering::Relaxed);
    }

    /// The event loop's lag: how late a timer callback ran.
    pub fn set_loop_lag(&self, lag: Duration) {
        self.word(layout::LOOP_LAG_US)
            .store(lag.as_micros() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_counts_and_a_successor_keeps_counters_not_gauges() {
        let region = Arc::new(Region::create(2).unwrap());
        let s = Slot::take(region.clone(), 1);
        s.record(b"GET", 200, Duration::from_millis(3), 10);
        s.record(b"BREW", 418, Duration::from_secs(60), 5);
        s.set_gauges(4, 2);
        let get_200 = layout::REQUESTS + 100;
        let other_418 = layout::REQUESTS + 7 * STATUSES + 318;
        assert_eq!(region.word(1, get_200).load(Ordering::Relaxed), 1);
        assert_eq!(region.word(1, other_418).load(Ordering::Relaxed), 1);
        assert_eq!(region.word(0, get_200).load(Ordering::Relaxed), 0);
        // 3 ms falls in the 5 ms bucket; 60 s in +Inf.
        assert_eq!(
            region
                .word(1, layout::DURATION_BUCKETS + 2)
                .load(Ordering::Relaxed),
            1
        );
        assert_eq!(
            region
                .word(1, layout::DURATION_BUCKETS + BUCKETS.len())
                .load(Ordering::Relaxed),
            1
        );
        assert_eq!(
            region.word(1, layout::BYTES_SENT).load(Ordering::Relaxed),
            15
        );
        let next = Slot::take(region.clone(), 1);
        assert_eq!(region.word(1, get_200).load(Ordering::Relaxed), 1);
        assert_eq!(region.word(1, layout::IN_FLIGHT).load(Ordering::Relaxed), 0);
        next.received(7);
        assert_eq!(
            region
                .word(1, layout::BYTES_RECEIVED)
                .load(Ordering::Relaxed),
            7
        );
    }

    #[test]
    fn an_inherited_descriptor_maps_the_same_memory() {
        let region = Region::create(MAX_SLOTS).unwrap();
        let dup = region.words.fd().try_clone().unwrap();
        let other = Region::open(std::os::fd::IntoRawFd::into_raw_fd(dup), MAX_SLOTS).unwrap();
        region.word(3, layout::PID).store(42, Ordering::Relaxed);
        assert_eq!(other.word(3, layout::PID).load(Ordering::Relaxed), 42);
    }
}
