"""Graceful shutdown: in-flight requests finish, the process exits 0."""

import signal
import socket
import threading
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from rawhttp import RawConnection, request_bytes


class Background:
    """Runs one HTTP request in a thread."""

    def __init__(self, url, timeout=30):
        self.response = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(url, timeout), daemon=True)
        self.thread.start()

    def _run(self, url, timeout):
        try:
            self.response = httpx.get(url, timeout=timeout)
        except Exception as exc:
            self.error = exc

    def join(self, timeout=15):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "request did not finish"


def test_sigterm_lets_in_flight_request_finish(server_factory):
    server = server_factory.start("apps.streaming:app")
    req = Background(server.url("/slow?s=1.0"))
    time.sleep(0.3)  # the request is running in the app
    server.signal(signal.SIGTERM)
    req.join()
    assert req.error is None, req.error
    assert req.response.status_code == 200
    assert req.response.text == "done"
    assert server.wait_exit(10) == 0
    assert "Shutting down" in server.output()


def test_no_new_connections_after_sigterm(server_factory):
    server = server_factory.start("apps.streaming:app")
    req = Background(server.url("/slow?s=1.0"))
    time.sleep(0.3)
    server.signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(OSError):
        s = socket.create_connection((server.host, server.port), timeout=1)
        try:
            s.sendall(request_bytes("GET", "/single"))
            if not s.recv(100):
                raise ConnectionResetError("closed without a response")
        finally:
            s.close()
    req.join()
    assert req.response.status_code == 200
    assert server.wait_exit(10) == 0


def test_idle_keep_alive_connection_closed_on_shutdown(server_factory):
    server = server_factory.start("apps.streaming:app")
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/single"))
        assert c.read_response().status == 200
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert c.wait_closed(5)
    assert server.wait_exit(5) == 0
    assert time.monotonic() - started < 3


def test_in_flight_keep_alive_response_says_close(server_factory):
    server = server_factory.start("apps.streaming:app")
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/slow?s=0.8"))
        time.sleep(0.3)
        server.signal(signal.SIGTERM)
        resp = c.read_response()
        assert resp.status == 200
        assert resp.body == b"done"
        assert c.wait_closed(5)
    assert server.wait_exit(10) == 0


def test_timeout_graceful_shutdown_cuts_slow_request(server_factory):
    server = server_factory.start("apps.streaming:app", "--timeout-graceful-shutdown", "0.5")
    req = Background(server.url("/slow?s=30"))
    time.sleep(0.3)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    code = server.wait_exit(10)
    elapsed = time.monotonic() - started
    req.join()
    assert elapsed < 5, elapsed
    assert code == 0
    assert req.response is None
    assert isinstance(req.error, httpx.HTTPError)
    assert "graceful shutdown timed out" in server.output()


def test_sigint_also_stops(server_factory):
    server = server_factory.start("apps.streaming:app")
    assert httpx.get(server.url("/single")).status_code == 200
    server.signal(signal.SIGINT)
    assert server.wait_exit(10) == 0


def test_an_http2_client_that_stopped_reading_does_not_hold_the_stop(server_factory):
    """hyper ends an HTTP/2 connection after GOAWAY once the client answers
    its PING; an idle client that no longer reads never does. With no
    stream open and nothing moving, the server closes it after a grace."""
    from h2client import H2Client

    server = server_factory.start("apps.streaming:app")
    client = H2Client(server.host, server.port)
    assert client.request("GET", "/single").status == 200
    t0 = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait_exit(15) == 0
    assert time.monotonic() - t0 < 9
    client.close()


def test_an_http2_stream_in_flight_outlasts_that_grace(server_factory):
    """A stream whose app takes longer than the grace still gets its whole
    response, though nothing moves on the connection meanwhile. (Raw frames:
    the `h2` client refuses the PING that follows hyper's first GOAWAY.)"""
    import h2client

    server = server_factory.start("apps.streaming:app")
    with h2client.RawH2(server.host, server.port, timeout=15) as c:
        c.handshake()
        block = h2client.header_block(h2client.request_headers("GET", "/slow?s=7"))
        c.send(h2client.frame(h2client.HEADERS, h2client.END_STREAM | h2client.END_HEADERS, 1,
                              block))
        time.sleep(0.3)
        server.signal(signal.SIGTERM)
        frames = c.drain(12)
    data = b"".join(f.payload for f in frames if f.type == h2client.DATA and f.stream_id == 1)
    assert data == b"done", [(f.type, f.stream_id) for f in frames]
    assert any(f.type == h2client.DATA and f.flags & h2client.END_STREAM for f in frames)
    assert server.wait_exit(10) == 0


def test_open_websocket_closed_1001_on_shutdown(server_factory):
    """An open, quiet WebSocket hears of the stop at once: close 1001, then
    the server ends, without waiting for the graceful timeout."""
    server = server_factory.start("apps.ws:app")
    with connect(f"ws://{server.host}:{server.port}/echo") as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert server.wait_exit(5) == 0
    assert time.monotonic() - started < 2
