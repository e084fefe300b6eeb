"""--metrics: one Prometheus endpoint for all workers."""

import os
import re
import signal
import time

import httpx

from conftest import free_port


def scrape(port):
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text


def value(text, series):
    m = re.search(r"^" + re.escape(series) + r" ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_value(port, series, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = scrape(port)
        v = value(text, series)
        if v is not None and predicate(v):
            return text
        time.sleep(0.2)
    raise AssertionError(f"{series} never matched:\n{text}")


def test_metrics_sum_every_worker(server_factory):
    mport = free_port()
    server = server_factory.start("apps.pid:app", "--workers", "2", "--metrics",
                                  "--metrics-port", str(mport))
    pids = set()
    for _ in range(40):
        with httpx.Client() as c:  # new connections: both workers get some
            pids.add(c.get(server.url("/")).text)
    httpx.post(server.url("/"), content=b"x" * 1000)
    text = wait_value(mport, 'cormorant_requests_total{method="GET",status="200"}',
                      lambda v: v == 40)
    assert value(text, 'cormorant_requests_total{method="POST",status="200"}') == 1
    assert value(text, 'cormorant_request_duration_seconds_count') == 41
    assert value(text, 'cormorant_request_duration_seconds_bucket{le="+Inf"}') == 41
    assert value(text, "cormorant_request_body_bytes_total") == 1000
    assert value(text, "cormorant_response_body_bytes_total") > 0
    assert value(text, "cormorant_workers") == 2
    assert "# TYPE cormorant_request_duration_seconds histogram" in text
    # Each worker reports its event-loop lag.
    wait_value(mport, 'cormorant_event_loop_lag_seconds{worker="1"}', lambda v: v >= 0)
    assert value(text, 'cormorant_event_loop_lag_seconds{worker="0"}') is not None
    assert httpx.get(f"http://127.0.0.1:{mport}/nope").status_code == 404


def test_gauges_and_restarts(server_factory):
    mport = free_port()
    server = server_factory.start("apps.pid:app", "--workers", "2", "--metrics",
                                  "--metrics-port", str(mport))
    with httpx.Client() as c:
        victim = int(c.get(server.url("/")).text)
        # A connection held open shows in the gauge.
        wait_value(mport, "cormorant_connections_open", lambda v: v >= 1)
    os.kill(victim, signal.SIGKILL)
    text = wait_value(mport, 'cormorant_worker_restarts_total{reason="crashed"}', lambda v: v == 1)
    # The counters of the dead worker are kept by its successor's slot.
    assert value(text, 'cormorant_requests_total{method="GET",status="200"}') == 1


def test_metrics_with_one_worker(server_factory):
    mport = free_port()
    server = server_factory.start("apps.pid:app", "--metrics", "--metrics-port", str(mport))
    with httpx.Client(http1=False, http2=True) as c:
        for _ in range(3):
            c.get(server.url("/"))
    wait_value(mport, 'cormorant_requests_total{method="GET",status="200"}', lambda v: v == 3)


def test_static_files_are_counted(server_factory, tmp_path):
    (tmp_path / "a.txt").write_text("static body")
    mport = free_port()
    server = server_factory.start("apps.pid:app", "--metrics", "--metrics-port", str(mport),
                                  "--static-path-route", "/static", "--static-path-mount",
                                  str(tmp_path))
    assert httpx.get(server.url("/static/a.txt")).text == "static body"
    assert httpx.get(server.url("/static/missing.txt")).status_code == 404
    text = wait_value(mport, 'cormorant_requests_total{method="GET",status="200"}',
                      lambda v: v == 1)
    assert value(text, 'cormorant_requests_total{method="GET",status="404"}') == 1
    assert value(text, "cormorant_response_body_bytes_total") >= len("static body")


def test_websocket_sessions_are_counted(server_factory):
    from websockets.sync.client import connect

    mport = free_port()
    server = server_factory.start("apps.ws:app", "--metrics", "--metrics-port", str(mport))
    with connect(f"ws://{server.host}:{server.port}/echo") as ws:
        ws.send(b"x" * 100)
        assert ws.recv() == b"x" * 100
    text = wait_value(mport, 'cormorant_requests_total{method="GET",status="101"}',
                      lambda v: v == 1)
    assert value(text, "cormorant_request_duration_seconds_count") == 1
    assert value(text, "cormorant_response_body_bytes_total") == 100
