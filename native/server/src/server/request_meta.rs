//! What the server adds to a request before the app sees it: its ID
//! (`--request-id`) and when its head began to arrive
//! (`--request-start-header`), written once for HTTP/1.1 and HTTP/2.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cormorant_core::asgi::HttpScope;

use super::ServerCtx;

/// The request ID's header, lowercase as in a scope.
pub const REQUEST_ID: &[u8] = b"x-request-id";
/// The arrival time's header (New Relic's and Datadog's name for it).
const REQUEST_START: &[u8] = b"x-request-start";
/// Longest `X-Request-ID` kept from a proxy: IDs are 20 to 40 characters in
/// practice (UUIDs, nginx's `$request_id`, AWS trace IDs); a longer value
/// is replaced rather than copied into every log line.
const MAX_REQUEST_ID: usize = 128;

/// Makes the worker's request IDs: 32 hex digits, a random half fixed for
/// the worker and a half that is a counter put through a bijective mix, so
/// IDs never repeat within a worker, differ across workers and restarts,
/// and do not look sequential.
pub struct RequestIds {
    worker: u64,
    key: u64,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut seed = [0u8; 16];
        crate::sys::random_bytes(&mut seed);
        let [worker, key] =
            [&seed[..8], &seed[8..]].map(|h| u64::from_le_bytes(h.try_into().unwrap_or_default()));
        Self {
            worker,
            key,
            next: AtomicU64::new(0),
        }
    }
}

impl RequestIds {
    /// A new ID.
    pub fn make(&self) -> Bytes {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Bytes::from(format!("{:016x}{:016x}", self.worker, mix(n ^ self.key)))
    }
}

/// splitmix64's finalizer: a bijection on u64 that scatters nearby inputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether a proxy's `X-Request-ID` is kept: visible ASCII only (it goes
/// into log lines and response heads), and not too long.
fn acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

impl ServerCtx {
    /// Whether requests must note when their head began to arrive: for
    /// the queue-time histogram, `X-Request-Start` or `--max-queue-time`.
    #[inline]
    pub fn tracks_arrival(&self) -> bool {
        self.metrics.is_some() || self.request_start_header || self.max_queue_time.is_some()
    }

    /// Adds what `--request-id` and `--request-start-header` ask for to a
    /// request's headers, and returns its ID. `trusted`: the connection
    /// came from a trusted proxy, whose `X-Request-ID` is kept.
    #[inline]
    pub fn annotate(
        &self,
        scope: &mut HttpScope,
        trusted: bool,
        arrived: Option<Instant>,
    ) -> Option<Bytes> {
        if !self.request_start_header && self.request_ids.is_none() {
            return None;
        }
        self.add_fields(scope, trusted, arrived)
    }

    fn add_fields(
        &self,
        scope: &mut HttpScope,
        trusted: bool,
        arrived: Option<Instant>,
    ) -> Option<Bytes> {
        if let (true, Some(arrived)) = (self.request_start_header, arrived) {
            let at = SystemTime::now() - arrived.elapsed();
            let micros = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
            scope.headers.retain(|(n, _)| n.as_ref() != REQUEST_START);
            scope.headers.push((
                Bytes::from_static(REQUEST_START),
                Bytes::from(format!("t={micros}")),
            ));
        }
        let ids = self.request_ids.as_ref()?;
        let given = scope
            .headers
            .iter()
            .position(|(n, _)| n.as_ref() == REQUEST_ID);
        match given {
            Some(i) if trusted && acceptable(&scope.headers[i].1) => {
                Some(scope.headers[i].1.clone())
            }
            _ => {
                let id = ids.make();
                scope.headers.retain(|(n, _)| n.as_ref() != REQUEST_ID);
                scope
                    .headers
                    .push((Bytes::from_static(REQUEST_ID), id.clone()));
                Some(id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_do_not_repeat() {
        let ids = RequestIds::default();
        let other = RequestIds::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = ids.make();
            assert_eq!(id.len(), 32);
            assert!(id.iter().all(u8::is_ascii_hexdigit));
            assert!(seen.insert(id));
        }
        assert_ne!(ids.make()[..16], other.make()[..16]);
    }

    #[test]
    fn only_plain_short_ids_are_kept() {
        assert!(acceptable(b"3f2a-9c1e_req.7:x"));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"a b"));
        assert!(!acceptable(b"a\x7f"));
        assert!(!acceptable("é".as_bytes()));
        assert!(!acceptable(&[b'a'; MAX_REQUEST_ID + 1]));
    }
}
