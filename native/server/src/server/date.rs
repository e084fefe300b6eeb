//! The `Date` header value, formatted at most once a second per thread.

use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;

thread_local! {
    static CACHE: RefCell<(u64, Bytes)> = const { RefCell::new((0, Bytes::new())) };
}

/// The current time as an IMF-fixdate (RFC 9110 §5.6.7).
pub fn http_date() -> Bytes {
    http_date_at(now_secs())
}

/// The wall clock in whole seconds: the coarse clock, a fraction of the
/// precise one's cost, since it is read for every response.
pub fn now_secs() -> u64 {
    crate::sys::realtime_coarse_secs()
}

/// `secs` (seconds since the Unix epoch) as an IMF-fixdate.
pub fn http_date_at(secs: u64) -> Bytes {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs || c.1.is_empty() {
            let now = UNIX_EPOCH + Duration::from_secs(secs);
            *c = (secs, Bytes::from(httpdate::fmt_http_date(now)));
        }
        c.1.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_now_to_the_second() {
        let before = std::time::SystemTime::now();
        let date = http_date();
        let after = std::time::SystemTime::now();
        let parsed = httpdate::parse_http_date(std::str::from_utf8(&date).unwrap()).unwrap();
        // Whole seconds, and the coarse clock may lag a tick: just after
        // a second begins it can still read the one before, so the date
        // may be up to a second and a tick behind `before`.
        let tick = Duration::from_millis(100);
        assert!(
            parsed + Duration::from_secs(1) + tick >= before,
            "{date:?} {before:?}"
        );
        assert!(parsed <= after, "{date:?}");
    }
}
