"""The extension's worker handle (``_cormorant.Worker``) driven directly
over a real socket: what the Python side of a worker may do with it."""

import asyncio
import json
import socket
import time

import pytest

from cormorant import _cormorant
from cormorant._worker import _make_spawn


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data


def _serve_one_while_joining(monkeypatch, io_thread: str, spawn_delay: float) -> bytes:
    """Serves one request on a worker whose join already waits in another
    thread. `spawn_delay` holds the GIL-free part of each spawn that long,
    as app code run eagerly inside `drain` may (a sleep, blocking I/O)."""
    monkeypatch.setenv("CORMORANT_IO_THREAD", io_thread)
    config = json.loads(_cormorant.resolve_config(json.dumps({"port": 0, "lifespan": "off"})))
    worker = _cormorant.Worker(json.dumps(config))
    port = int(worker.url.rsplit(":", 1)[1])
    loop = asyncio.new_event_loop()
    spawn, _pooled = _make_spawn(loop)

    def slow_spawn(coro):
        if spawn_delay:
            time.sleep(spawn_delay)  # releases the GIL while drain runs
        return spawn(coro)

    async def main() -> bytes:
        worker.start(loop, _app, slow_spawn, lambda: None)
        loop.add_reader(worker.fd, worker.drain)
        join = loop.run_in_executor(None, worker.join)
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, _get, port), 10)
        finally:
            worker.shutdown()
            await asyncio.wait_for(join, 10)
            loop.remove_reader(worker.fd)

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


@pytest.mark.parametrize("io_thread", ["0", "1"], ids=["driven", "io-thread"])
def test_join_waits_while_drain_runs_python_without_the_gil(monkeypatch, io_thread):
    """Python called from `drain` may let the GIL go (the joining thread then
    runs) while drain still holds the handle; join must wait its turn, not
    fail on the borrow."""
    response = _serve_one_while_joining(monkeypatch, io_thread, 0.1)
    assert response.startswith(b"HTTP/1.1 200"), response
    assert response.endswith(b"served")


@pytest.mark.parametrize("io_thread", ["0", "1"], ids=["driven", "io-thread"])
def test_requests_are_served_while_join_waits(monkeypatch, io_thread):
    """A stopping worker is joined off the event loop; a request that
    reaches Python meanwhile (one accepted just as the stop began) must
    still be served, or the join waits for it forever. The loop goes on
    calling drain, which is also what runs a driven server."""
    response = _serve_one_while_joining(monkeypatch, io_thread, 0)
    assert response.startswith(b"HTTP/1.1 200"), response
    assert response.endswith(b"served")
