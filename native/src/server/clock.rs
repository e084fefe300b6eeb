//! The worker's clock for core: core takes time as a number
//! ([`cormorant_core::time::Instant`], nanoseconds from an origin), and this
//! is the one place that reads the real clock and converts back to tokio's.

use std::sync::OnceLock;
use std::time::Duration;

use cormorant_core::time::Instant;

/// The origin: the first time the clock was read in this process.
fn origin() -> tokio::time::Instant {
    static ORIGIN: OnceLock<tokio::time::Instant> = OnceLock::new();
    *ORIGIN.get_or_init(tokio::time::Instant::now)
}

/// Now, on core's clock.
pub(crate) fn now() -> Instant {
    let nanos = origin().elapsed().as_nanos();
    Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// When core's `at` comes, on tokio's clock (a year from now for "never").
pub(crate) fn deadline(at: Option<Instant>) -> tokio::time::Instant {
    match at {
        Some(at) => origin() + Duration::from_nanos(at.as_nanos()),
        None => tokio::time::Instant::now() + Duration::from_secs(365 * 86400),
    }
}
