"""Where a worker's I/O runs. By default on the Python thread: the event
loop watches the server's poller and drives it, so a worker is one thread.
With CORMORANT_IO_THREAD=1 it runs on a thread of its own, the fallback for
an app that blocks its event loop."""

import os
import signal
import time

import httpx
from test_shutdown import Background


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


def test_io_thread_fallback_serves_and_drains(server_factory):
    server = server_factory.start("apps.streaming:app", env={"CORMORANT_IO_THREAD": "1"})
    assert "cormorant-io" in _thread_names(server.pid)
    assert httpx.get(server.url("/single")).status_code == 200
    req = Background(server.url("/slow?s=1.0"))
    time.sleep(0.3)
    server.signal(signal.SIGTERM)
    req.join()
    assert req.error is None, req.error
    assert req.response.status_code == 200
    assert server.wait_exit() == 0
