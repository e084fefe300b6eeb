"""`--max-queue-time`: under overload, a request that would wait longer
than the limit for the app gets a fast 503 with Retry-After and the app
never runs, so the requests that are served stay near the limit. Shown
against the same overload without the limit. The health path is exempt."""

import socket
import threading
import time

import httpx

LIMIT = 0.2  # seconds (--max-queue-time 200)
CLIENTS = 40
SECONDS = 3.0
# Each request holds the loop for 20 ms: 40 clients ask for 0.8 s of work
# per round, four times what the limit allows.
PATH = "/?ms=20"


def overload(port):
    """Closed-loop clients, one request per connection: [(status, seconds,
    retry_after)]."""
    results = []
    lock = threading.Lock()

    def client():
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(f"GET {PATH} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                          .encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            elapsed = time.monotonic() - t0
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            status = int(head[0].split(" ")[1]) if data else 0
            retry = next((h.split(":", 1)[1].strip() for h in head[1:]
                          if h.lower().startswith("retry-after:")), None)
            with lock:
                results.append((status, elapsed, retry))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 60)
    return results


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def test_overload_is_shed_fast_and_served_requests_stay_near_the_limit(server_factory):
    unlimited = server_factory.start("apps.busy:app")
    baseline = overload(unlimited.port)
    unlimited.stop()
    assert {s for s, _, _ in baseline} == {200}
    baseline_p99 = quantile([t for _, t, _ in baseline], 0.99)
    assert baseline_p99 > 3 * LIMIT, baseline_p99  # the overload is real

    server = server_factory.start("apps.busy:app", "--max-queue-time", str(int(LIMIT * 1000)),
                                  "--health-path", "/healthz")
    health = []

    def probe():
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            t0 = time.monotonic()
            r = httpx.get(server.url("/healthz"), timeout=10)
            health.append((r.status_code, time.monotonic() - t0))
            time.sleep(0.2)

    prober = threading.Thread(target=probe)
    prober.start()
    results = overload(server.port)
    prober.join(30)

    served = [t for s, t, _ in results if s == 200]
    shed = [(t, retry) for s, t, retry in results if s == 503]
    assert len(served) + len(shed) == len(results), {s for s, _, _ in results}
    assert served and shed
    # About the loop's capacity is still served (50 a second)...
    assert len(served) >= 0.6 * SECONDS * 50, len(served)
    # ...near the limit, not at the overload's latency (measured here:
    # 0.35-0.37 s on 3.11, 0.26-0.27 s on 3.13 with eager tasks, against
    # 0.82-0.92 s without the limit; what is over the limit is time spent
    # unread in the socket buffer, which the server can only estimate)...
    served_p99 = quantile(served, 0.99)
    assert served_p99 < 2.25 * LIMIT, (served_p99, baseline_p99)
    assert served_p99 < baseline_p99 / 2
    # ...and the rest fail fast, told when to come back.
    shed_p50 = quantile([t for t, _ in shed], 0.5)
    # (A 503 still waits for the loop to read the request: the apps it
    # runs hold it for up to about the limit.)
    assert shed_p50 < LIMIT and shed_p50 < quantile(served, 0.5), shed_p50
    assert {retry for _, retry in shed} == {"1"}
    # Health checks are answered all along.
    assert health and all(status == 200 for status, _ in health)
    assert max(t for _, t in health) < 1.0


def test_max_queue_time_is_checked(server_factory):
    proc, log = server_factory.spawn(["-m", "cormorant", "apps.busy:app",
                                      "--max-queue-time", "0"])
    assert proc.wait(10) != 0
    assert "max-queue-time must be at least 1" in log.read_text()


def test_websocket_sessions_are_not_shed(server_factory):
    from websockets.sync.client import connect

    server = server_factory.start("apps.ws:app", "--max-queue-time", "1")
    with connect(f"ws://{server.host}:{server.port}/echo") as ws:
        ws.send("still here")
        assert ws.recv() == "still here"
