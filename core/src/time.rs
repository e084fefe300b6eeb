//! Time, as the driver tells it: core has no clock.
//!
//! An [`Instant`] is a count of nanoseconds from an origin the driver picks
//! (process start, a test's zero). Only differences matter, so the same
//! number crosses the C ABI and the wasm boundary unchanged, and a test can
//! drive every timer on a virtual clock.
//!
//! [`TimerTable`] is the fixed set of deadlines one connection keeps, in
//! the style of quinn-proto: the machine arms and stops its timers as its
//! state changes, the driver sleeps until [`TimerTable::next_timeout`], and
//! a timer fires only once its deadline has passed, so an early or repeated
//! `handle_timeout(now)` does nothing.

use std::ops::Add;
use std::time::Duration;

/// A point in time: nanoseconds since the driver's origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The driver's origin.
    pub const ZERO: Self = Self(0);
    /// Never: a deadline that does not come.
    pub const NEVER: Self = Self(u64::MAX);

    /// The instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// The instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    /// Saturates at [`Instant::NEVER`]: a very long timeout is "never".
    fn add(self, d: Duration) -> Self {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(nanos))
    }
}

/// The timers of one server connection. Each is off or armed with a
/// deadline; which ones can run depends on the connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Idle between requests: the connection closes without a response.
    KeepAlive,
    /// A request head has started to arrive and must be complete in time:
    /// else `408`.
    RequestHead,
    /// The server waits for request body bytes that do not come: `408` if
    /// no response has started, else the connection closes.
    RequestBodyIdle,
    /// Time to ping the WebSocket peer.
    WsPing,
    /// The peer must answer our ping by now: else close `1011`.
    WsPong,
    /// We sent a close frame; the peer must answer by now: else the
    /// connection is dropped (`1006`).
    WsClose,
    /// Shutdown began before the connection's first request: it may still
    /// arrive until now.
    ShutdownGrace,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Self; 7] = [
        Self::KeepAlive,
        Self::RequestHead,
        Self::RequestBodyIdle,
        Self::WsPing,
        Self::WsPong,
        Self::WsClose,
        Self::ShutdownGrace,
    ];

    /// The name used in logs and transcripts.
    pub fn name(self) -> &'static str {
        match self {
            Self::KeepAlive => "keep-alive",
            Self::RequestHead => "request-head",
            Self::RequestBodyIdle => "request-body-idle",
            Self::WsPing => "ws-ping",
            Self::WsPong => "ws-pong",
            Self::WsClose => "ws-close",
            Self::ShutdownGrace => "shutdown-grace",
        }
    }
}

/// A deadline per [`Timer`].
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 7],
}

impl TimerTable {
    /// Arms `timer` to fire at `at` (replacing its deadline).
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    /// Arms `timer` `after` from `now`, or stops it when `after` is `None`
    /// (the timeout is disabled).
    pub fn arm(&mut self, timer: Timer, now: Instant, after: Option<Duration>) {
        self.deadlines[timer as usize] = after.map(|d| now + d);
    }

    /// Stops `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    /// The deadline of `timer`, if it is armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// Whether `timer` is armed.
    pub fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// The earliest deadline of all armed timers.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Stops and returns the armed timer with the earliest deadline at or
    /// before `now`, if any.
    pub fn expire(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .filter(|&t| self.get(t).is_some_and(|at| at <= now))
            .min_by_key(|&t| self.get(t))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_add_and_saturate() {
        let t = Instant::from_millis(5) + Duration::from_millis(3);
        assert_eq!(t, Instant::from_nanos(8_000_000));
        assert_eq!(Instant::NEVER + Duration::from_secs(1), Instant::NEVER);
        assert_eq!(Instant::ZERO + Duration::MAX, Instant::NEVER);
        assert_eq!(
            t.saturating_duration_since(Instant::from_millis(10)),
            Duration::ZERO
        );
    }

    #[test]
    fn the_earliest_deadline_fires_first_and_only_when_due() {
        let mut table = TimerTable::default();
        assert_eq!(table.next_timeout(), None);
        table.set(Timer::WsPing, Instant::from_millis(20));
        table.set(Timer::KeepAlive, Instant::from_millis(10));
        assert_eq!(table.next_timeout(), Some(Instant::from_millis(10)));
        assert_eq!(table.expire(Instant::from_millis(9)), None);
        assert_eq!(
            table.expire(Instant::from_millis(30)),
            Some(Timer::KeepAlive)
        );
        assert_eq!(table.expire(Instant::from_millis(30)), Some(Timer::WsPing));
        assert_eq!(table.expire(Instant::from_millis(30)), None);
    }

    #[test]
    fn a_disabled_timeout_stops_the_timer() {
        let mut table = TimerTable::default();
        table.arm(
            Timer::RequestHead,
            Instant::ZERO,
            Some(Duration::from_secs(1)),
        );
        assert!(table.is_armed(Timer::RequestHead));
        table.arm(Timer::RequestHead, Instant::ZERO, None);
        assert!(!table.is_armed(Timer::RequestHead));
    }
}
