"""The drain sequence for load balancers: `--health-path` answered by the
server itself, and `--drain-delay` on SIGTERM (SIGINT skips it), alone and
under a supervisor, over real sockets and real signals."""

import os
import signal
import socket
import threading
import time

import httpx
from test_workers import _wait_workers

from h2client import H2Client
from rawhttp import RawConnection, request_bytes


def health(server, path="/healthz"):
    return httpx.get(server.url(path), timeout=5)


def test_health_path_is_answered_without_the_app(server_factory):
    server = server_factory.start("apps.scope_echo:app", "--health-path", "/healthz",
                                  "--access-log")
    r = health(server)
    assert (r.status_code, r.text) == (200, "OK")
    assert r.headers["content-type"].startswith("text/plain")
    # A query does not change the path; another path reaches the app.
    assert health(server, "/healthz?probe=lb").text == "OK"
    assert health(server, "/healthz/x").headers["content-type"] == "application/json"
    # Several checks on one keep-alive connection.
    with RawConnection(server.host, server.port) as c:
        for _ in range(3):
            c.send(request_bytes("GET", "/healthz"))
            resp = c.read_response()
            assert resp.status == 200 and resp.body == b"OK"
        c.send(request_bytes("HEAD", "/healthz"))
        resp = c.read_response(head_request=True)
        assert resp.status == 200 and resp.body == b""
    # HTTP/2 too.
    with H2Client(server.host, server.port) as c:
        res = c.request("GET", "/healthz")
        assert (res.status, res.body) == (200, b"OK")
    # Not in the access log at info level; the app's request is.
    out = server.wait_for_output('"GET /healthz/x HTTP/1.1" 200')
    assert '"GET /healthz HTTP' not in out
    assert '"GET /healthz?probe=lb' not in out


def test_health_path_is_never_shed(server_factory):
    server = server_factory.start("apps.streaming:app", "--health-path", "/healthz",
                                  "--limit-concurrency", "1")
    slow = threading.Thread(target=httpx.get, args=(server.url("/slow?s=1.5"),),
                            kwargs={"timeout": 10}, daemon=True)
    slow.start()
    time.sleep(0.4)  # the one allowed request is in the app
    assert httpx.get(server.url("/single"), timeout=5).status_code == 503
    assert health(server).status_code == 200
    slow.join(10)


def test_health_path_is_checked(server_factory):
    proc, log = server_factory.spawn(["-m", "cormorant", "apps.scope_echo:app",
                                      "--health-path", "healthz"])
    assert proc.wait(10) != 0
    out = log.read_text()
    assert "health-path must be a path" in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1, out


def test_sigterm_drains_for_the_delay_then_stops(server_factory):
    server = server_factory.start("apps.streaming:app", "--health-path", "/healthz",
                                  "--drain-delay", "1.5")
    # A keep-alive connection a load balancer holds open.
    held = RawConnection(server.host, server.port)
    held.send(request_bytes("GET", "/single"))
    assert held.read_response().status == 200
    assert health(server).status_code == 200
    t0 = time.monotonic()
    server.signal(signal.SIGTERM)
    server.wait_for_output("Draining")
    # During the delay: the health path says 503, everything else is served,
    # on new connections and on held ones.
    r = health(server)
    assert (r.status_code, r.text) == (503, "Draining")
    assert httpx.get(server.url("/single"), timeout=5).status_code == 200
    held.send(request_bytes("GET", "/single"))
    resp = held.read_response()
    assert resp.status == 200
    assert server.proc.poll() is None
    # Then the stop: no new connections, and the process ends.
    code = server.wait_exit(10)
    elapsed = time.monotonic() - t0
    assert code == 0
    assert elapsed >= 1.4, elapsed
    assert held.wait_closed(2)
    held.close()
    try:
        socket.create_connection((server.host, server.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused


def test_sigint_skips_the_delay_and_ends_one_under_way(server_factory):
    server = server_factory.start("apps.streaming:app", "--health-path", "/healthz",
                                  "--drain-delay", "30")
    t0 = time.monotonic()
    server.signal(signal.SIGINT)
    assert server.wait_exit(10) == 0
    assert time.monotonic() - t0 < 5
    assert "Draining" not in server.output()

    server = server_factory.start("apps.streaming:app", "--health-path", "/healthz",
                                  "--drain-delay", "30")
    server.signal(signal.SIGTERM)
    server.wait_for_output("Draining")
    assert health(server).status_code == 503
    t0 = time.monotonic()
    server.signal(signal.SIGINT)
    assert server.wait_exit(10) == 0
    assert time.monotonic() - t0 < 5
    assert "ending the drain delay" in server.output()


def test_a_request_in_flight_at_the_end_of_the_delay_finishes(server_factory):
    server = server_factory.start("apps.streaming:app", "--drain-delay", "0.5")
    result = {}

    def slow():
        result["r"] = httpx.get(server.url("/slow?s=1.5"), timeout=10)

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    time.sleep(0.3)
    server.signal(signal.SIGTERM)
    t.join(10)
    assert result["r"].status_code == 200 and result["r"].text == "done"
    assert server.wait_exit(10) == 0


def test_group_sigterm_under_a_supervisor_drains_once(server_factory):
    """systemd's KillMode=control-group: the supervisor and every worker get
    SIGTERM at once; the workers drain once for the delay, serving, then
    stop; the health path says 503 meanwhile."""
    server = server_factory.start("apps.pid:app", "--workers", "2", "--health-path",
                                  "/healthz", "--drain-delay", "1.5", new_session=True)
    _wait_workers(server, 2)
    assert health(server).status_code == 200
    t0 = time.monotonic()
    os.killpg(server.pid, signal.SIGTERM)
    time.sleep(0.5)
    for _ in range(4):  # new connections spread over both workers
        assert health(server).status_code == 503
        assert httpx.get(server.url("/"), timeout=5).status_code == 200
    assert server.wait_exit(15) == 0
    assert time.monotonic() - t0 >= 1.4
    out = server.output()
    assert out.count("Draining") == 2, out
    assert "second stop signal" not in out


def test_rolling_restart_does_not_wait_for_the_drain_delay(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "1", "--workers-lifetime",
                                  "3600", "--drain-delay", "30")
    _wait_workers(server, 1)
    old = httpx.get(server.url("/"), timeout=5).text
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if httpx.get(server.url("/"), timeout=5).text != old:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("no replacement")
    # The replaced worker stops promptly, not after 30 s.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        try:
            os.kill(int(old), 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the replaced worker is still running")
    assert "Draining" not in server.output()


def test_a_server_stops_promptly_once_its_connections_close(server_factory):
    """Once the last connection closes, the stop ends at once, not at the
    worker's next idle tick (a second away)."""
    times = []
    for _ in range(3):
        server = server_factory.start("apps.streaming:app")
        held = RawConnection(server.host, server.port)
        held.send(request_bytes("GET", "/single"))
        assert held.read_response().status == 200
        t0 = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait_exit(10) == 0
        times.append(time.monotonic() - t0)
        held.close()
    assert max(times) < 0.7, times
