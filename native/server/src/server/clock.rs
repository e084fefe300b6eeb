//! The worker's clock for core: core takes time as a number
//! ([`cormorant_core::time::Instant`], nanoseconds from an origin), and this
//! is the one place that reads the real clock and converts back to tokio's.
//!
//! Core is told the time at every event, several times a request, and its
//! deadlines are seconds long: the coarse monotonic clock (a few
//! milliseconds of resolution, no system call, a fraction of the cost of
//! the precise one) is plenty.

use std::sync::OnceLock;
use std::time::Duration;

use cormorant_core::time::Instant;

/// The origin on both clocks: core's zero, and tokio's time then.
fn origin() -> (u64, tokio::time::Instant) {
    static ORIGIN: OnceLock<(u64, tokio::time::Instant)> = OnceLock::new();
    *ORIGIN.get_or_init(|| {
        (
            crate::sys::monotonic_coarse_nanos(),
            tokio::time::Instant::now(),
        )
    })
}

/// Now, on core's clock.
pub(super) fn now() -> Instant {
    Instant::from_nanos(crate::sys::monotonic_coarse_nanos().saturating_sub(origin().0))
}

/// When core's `at` comes, on tokio's clock.
pub(super) fn deadline(at: Instant) -> tokio::time::Instant {
    origin().1 + Duration::from_nanos(at.as_nanos())
}

/// A deadline that does not come: a year from now, for a timer made before
/// anything is due. (It reads the precise clock, so it is for set-up, not
/// for every wait.)
pub(super) fn never() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(365 * 86400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_time_follows_tokio_time() {
        let before = now();
        std::thread::sleep(Duration::from_millis(30));
        let after = now();
        let elapsed = after.saturating_duration_since(before);
        assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
        let d = deadline(after) - deadline(before);
        assert_eq!(d, elapsed);
    }
}
