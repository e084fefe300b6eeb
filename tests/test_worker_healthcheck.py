"""`--timeout-worker-healthcheck`: a worker whose event loop stops turning
is replaced, after the stack of each of its threads is written to the log
(so the blocking line shows), and counted as a `hung` restart; every other
request is served throughout."""

import os
import re
import threading
import time

import httpx
from test_workers import _wait_workers

from conftest import free_port


def test_a_hung_worker_shows_its_stack_and_is_replaced(server_factory):
    mport = free_port()
    server = server_factory.start("apps.hang:app", "--workers", "2",
                                  "--timeout-worker-healthcheck", "1",
                                  "--metrics", "--metrics-port", str(mport))
    _wait_workers(server, 2)
    # A keep-alive connection sticks to its worker: hang the worker that
    # served this one's first request, through it.
    conn = httpx.Client(timeout=15)
    victim = int(conn.get(server.url("/")).text)
    threading.Thread(target=_hang_on, args=(conn, server.url("/hang")), daemon=True).start()
    t0 = time.monotonic()
    # Every other request is answered meanwhile (those that land on the
    # hung worker's socket once its replacement is up).
    answers = []

    def ask():
        with httpx.Client(timeout=15) as c:
            answers.append(c.get(server.url("/")).status_code)

    askers = [threading.Thread(target=ask) for _ in range(8)]
    for a in askers:
        a.start()
    out = server.wait_for_output("is hung", timeout=10)
    out = server.wait_for_output("killed hung worker", timeout=5)
    hung_for = time.monotonic() - t0
    for a in askers:
        a.join(20)
    assert answers == [200] * 8, answers
    assert 0.8 < hung_for < 6, hung_for
    # The stack of the blocked thread: the app's own frames, by name.
    assert re.search(r'File ".*apps/hang\.py", line \d+ in block_the_loop_forever', out), out
    assert f"pid {victim}" in out
    deadline = time.monotonic() + 5
    while True:
        try:
            os.kill(victim, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the hung worker is still alive"
        time.sleep(0.05)
    # A new worker took the slot; both serve.
    _wait_workers(server, 3)
    pids = set()
    for _ in range(40):
        with httpx.Client(timeout=5) as c:
            pids.add(int(c.get(server.url("/")).text))
    assert victim not in pids
    metrics = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=5).text
    assert 'cormorant_worker_restarts_total{reason="hung"} 1' in metrics, metrics


def _hang_on(conn, url):
    try:
        conn.get(url)
    except httpx.HTTPError:
        pass  # the worker is killed under it


def test_healthy_busy_workers_are_left_alone(server_factory):
    server = server_factory.start("apps.busy:app", "--workers", "2",
                                  "--timeout-worker-healthcheck", "0.5")
    _wait_workers(server, 2)
    # Requests that hold the loop for 0.2 s at a time: under the limit.
    for _ in range(10):
        assert httpx.get(server.url("/?ms=200"), timeout=10).status_code == 200
    assert "is hung" not in server.output()


def test_the_healthcheck_is_checked(server_factory):
    proc, log = server_factory.spawn(["-m", "cormorant", "apps.busy:app",
                                      "--timeout-worker-healthcheck", "0.01"])
    assert proc.wait(10) != 0
    assert "timeout-worker-healthcheck must be at least 0.1" in log.read_text()
