//! The Prometheus text exposition of a region: the sum over every slot, plus
//! what only the supervisor knows (worker restarts and their reasons).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::region::{BUCKETS, METHODS, Region, layout};

/// Counts kept by the process that serves the endpoint.
#[derive(Debug, Default, Clone)]
pub struct ServerCounts {
    /// Worker restarts by reason (`crashed`, `max_requests`, `sighup`...).
    pub restarts: Vec<(String, u64)>,
    /// Workers running now.
    pub workers: usize,
}

fn sum(region: &Region, word: usize) -> u64 {
    (0..region.slots())
        .map(|s| region.word(s, word).load(Ordering::Relaxed))
        .sum()
}

/// A histogram whose buckets start at word `buckets`, followed by its +Inf
/// bucket, its sum in microseconds and its count.
fn histogram(out: &mut String, region: &Region, name: &str, help: &str, buckets: usize) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, le) in BUCKETS.iter().enumerate() {
        cumulative += sum(region, buckets + i);
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    cumulative += sum(region, buckets + BUCKETS.len());
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let sum_us = sum(region, buckets + BUCKETS.len() + 1);
    let _ = writeln!(out, "{name}_sum {}", sum_us as f64 / 1e6);
    let _ = writeln!(
        out,
        "{name}_count {}",
        sum(region, buckets + BUCKETS.len() + 2)
    );
}

/// The whole `/metrics` body.
pub fn render(region: &Region, counts: &ServerCounts) -> String {
    let mut out = String::with_capacity(4096);
    let statuses = layout::DURATION_BUCKETS / METHODS.len();
    out.push_str(
        "# HELP cormorant_requests_total HTTP requests completed, by method and status.\n",
    );
    out.push_str("# TYPE cormorant_requests_total counter\n");
    for (m, method) in METHODS.iter().enumerate() {
        for s in 0..statuses {
            let n = sum(region, layout::REQUESTS + m * statuses + s);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "cormorant_requests_total{{method=\"{method}\",status=\"{}\"}} {n}",
                    s + 100
                );
            }
        }
    }
    histogram(
        &mut out,
        region,
        "cormorant_request_duration_seconds",
        "Time from request head to complete response.",
        layout::DURATION_BUCKETS,
    );
    histogram(
        &mut out,
        region,
        "cormorant_request_queue_seconds",
        "Time from the first byte of a request's head to the app being called (or the request shed).",
        layout::QUEUE_BUCKETS,
    );
    for (name, help, kind, word) in [
        (
            "cormorant_response_body_bytes_total",
            "Response body bytes sent.",
            "counter",
            layout::BYTES_SENT,
        ),
        (
            "cormorant_request_body_bytes_total",
            "Request body bytes received.",
            "counter",
            layout::BYTES_RECEIVED,
        ),
        (
            "cormorant_requests_in_flight",
            "Requests whose response is not complete.",
            "gauge",
            layout::IN_FLIGHT,
        ),
        (
            "cormorant_connections_open",
            "Open client connections.",
            "gauge",
            layout::CONNECTIONS,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {}", sum(region, word));
    }
    out.push_str("# HELP cormorant_event_loop_lag_seconds How late the worker's event loop ran a timer, last measured.\n");
    out.push_str("# TYPE cormorant_event_loop_lag_seconds gauge\n");
    for s in 0..region.slots() {
        let pid = region.word(s, layout::PID).load(Ordering::Relaxed);
        if pid == 0 {
            continue;
        }
        let lag = region.word(s, layout::LOOP_LAG_US).load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "cormorant_event_loop_lag_seconds{{worker=\"{s}\"}} {}",
            lag as f64 / 1e6
        );
    }
    out.push_str(
        "# HELP cormorant_workers Worker processes running.\n# TYPE cormorant_workers gauge\n",
    );
    let _ = writeln!(out, "cormorant_workers {}", counts.workers);
    out.push_str("# HELP cormorant_worker_restarts_total Workers replaced, by reason.\n");
    out.push_str("# TYPE cormorant_worker_restarts_total counter\n");
    for (reason, n) in &counts.restarts {
        let _ = writeln!(
            out,
            "cormorant_worker_restarts_total{{reason=\"{reason}\"}} {n}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::metrics::Slot;

    #[test]
    fn sums_every_worker() {
        let region = Arc::new(Region::create(3).unwrap());
        let a = Slot::take(region.clone(), 0);
        let b = Slot::take(region.clone(), 2);
        a.record(b"GET", 200, Duration::from_millis(1), 100);
        b.record(b"GET", 200, Duration::from_millis(20), 50);
        b.record(b"POST", 500, Duration::from_secs(2), 0);
        a.set_gauges(3, 5);
        b.set_gauges(1, 2);
        b.set_loop_lag(Duration::from_millis(7));
        let counts = ServerCounts {
            restarts: vec![("crashed".into(), 2)],
            workers: 2,
        };
        let text = render(&region, &counts);
        assert!(
            text.contains("cormorant_requests_total{method=\"GET\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("cormorant_requests_total{method=\"POST\",status=\"500\"} 1\n"));
        assert!(text.contains("cormorant_request_duration_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("cormorant_request_duration_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(text.contains("cormorant_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("cormorant_request_duration_seconds_count 3\n"));
        assert!(text.contains("cormorant_response_body_bytes_total 150\n"));
        assert!(text.contains("cormorant_requests_in_flight 4\n"));
        assert!(text.contains("cormorant_connections_open 7\n"));
        assert!(text.contains("cormorant_event_loop_lag_seconds{worker=\"2\"} 0.007\n"));
        assert!(
            !text.contains("worker=\"1\""),
            "an unused slot has no series"
        );
        assert!(text.contains("cormorant_worker_restarts_total{reason=\"crashed\"} 2\n"));
        assert!(text.contains("cormorant_workers 2\n"));
    }
}
