"""Where a worker's I/O runs. By default on the Python thread: the event
loop watches the server's poller and drives it, so a worker is one thread.
With CORMORANT_IO_THREAD=1 it runs on a thread of its own, the fallback for
an app that blocks its event loop."""

import os
import signal
import time

import httpx
from test_shutdown import Background

from rawhttp import RawConnection, request_bytes


def _thread_names(pid: int) -> list:
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/comm") as f:
            names.append(f.read().strip())
    return names


def test_a_worker_serves_on_one_thread(server_factory):
    server = server_factory.start("apps.streaming:app")
    with httpx.Client() as client:
        for _ in range(3):
            assert client.get(server.url("/single")).status_code == 200
    # Only the main thread: no I/O thread, and no executor thread either.
    # (The keep-alive timer, which needs the loop's tick, is tested with
    # --timeout-keep-alive in test_options.py.)
    assert len(_thread_names(server.pid)) == 1, _thread_names(server.pid)


def _wait_for_thread(pid: int, name: str, timeout: float = 5.0) -> None:
    # A new thread names itself once it runs: until then it shows its
    # parent's name, even after the server answers.
    deadline = time.monotonic() + timeout
    while name not in _thread_names(pid):
        assert time.monotonic() < deadline, _thread_names(pid)
        time.sleep(0.01)


def test_io_thread_fallback_serves_and_drains(server_factory):
    server = server_factory.start("apps.streaming:app", env={"CORMORANT_IO_THREAD": "1"})
    _wait_for_thread(server.pid, "cormorant-io")
    assert httpx.get(server.url("/single")).status_code == 200
    req = Background(server.url("/slow?s=1.0"))
    time.sleep(0.3)
    server.signal(signal.SIGTERM)
    req.join()
    assert req.error is None, req.error
    assert req.response.status_code == 200
    assert server.wait_exit() == 0


def _voluntary_switches(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches line")


def test_an_idle_worker_sleeps(server_factory):
    # With no connection open, the loop steps the server about once a
    # second (not 50 times), so an idle worker barely wakes up.
    server = server_factory.start("apps.streaming:app")
    assert httpx.get(server.url("/single")).status_code == 200
    time.sleep(0.5)
    before = _voluntary_switches(server.pid)
    time.sleep(2)
    woke = _voluntary_switches(server.pid) - before
    assert woke < 15, woke


def test_timers_are_prompt_on_a_connection_opened_while_idle(server_factory):
    # The first connection after an idle spell brings back the fast tick:
    # its keep-alive timeout fires on time, not at the next idle tick (up
    # to a second later). Three spells, so that a late timer cannot pass
    # by the luck of an idle tick that happened to be near.
    server = server_factory.start("apps.streaming:app", "--timeout-keep-alive", "0.3")
    for _ in range(3):
        time.sleep(1.3)
        with RawConnection(server.host, server.port) as c:
            c.send(request_bytes("GET", "/single"))
            assert c.read_response().status == 200
            elapsed = c.seconds_until_closed()
        assert 0.25 < elapsed < 0.5, elapsed
