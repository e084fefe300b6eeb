"""Client disconnects while the application is running."""

import json
import socket
import time
import uuid

import pytest

from conftest import wait_text
from rawhttp import RawConnection, request_bytes

# The app must see http.disconnect this soon after the client closes.
DISCONNECT_BUDGET = 0.1


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory.start("apps.disconnect:app")


def _wait_file(path):
    return json.loads(wait_text(path))


def _disconnect_after_wait(server, query, started):
    ident = uuid.uuid4().hex
    c = RawConnection(server.host, server.port)
    c.send(request_bytes("GET", f"/wait?id={ident}&{query}"))
    if started:
        head = c.read_until(b"waiting\n")
        assert head.startswith(b"HTTP/1.1 200")
    _wait_file(server.results_dir / f"{ident}.waiting")
    time.sleep(0.05)  # let the app settle into its awaits
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\0" * 8)
    closed_at = time.monotonic()
    c.close()
    return _wait_file(server.results_dir / f"{ident}.json"), closed_at


def test_receive_yields_disconnect_quickly_before_response(server):
    result, closed_at = _disconnect_after_wait(server, "", started=False)
    assert result["type"] == "http.disconnect"
    assert result["t"] - closed_at < DISCONNECT_BUDGET, result["t"] - closed_at


def test_receive_yields_disconnect_quickly_during_streaming(server):
    result, closed_at = _disconnect_after_wait(server, "start=1", started=True)
    assert result["type"] == "http.disconnect"
    assert result["t"] - closed_at < DISCONNECT_BUDGET, result["t"] - closed_at


def test_graceful_close_also_detected(server):
    ident = uuid.uuid4().hex
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", f"/wait?id={ident}&start=1"))
        c.read_until(b"waiting\n")
        _wait_file(server.results_dir / f"{ident}.waiting")
        c.sock.shutdown(socket.SHUT_RDWR)
        closed_at = time.monotonic()
    result = _wait_file(server.results_dir / f"{ident}.json")
    assert result["type"] == "http.disconnect"
    assert result["t"] - closed_at < DISCONNECT_BUDGET


def test_send_after_disconnect_raises_oserror(server):
    result, _ = _disconnect_after_wait(server, "start=1&send_after=1", started=True)
    assert result["type"] == "http.disconnect"
    assert result["send_exc"] is not None
    assert result["send_exc_is_oserror"] is True


def test_send_start_after_disconnect_raises_oserror(server):
    result, _ = _disconnect_after_wait(server, "send_after=1", started=False)
    assert result["send_exc"] is not None
    assert result["send_exc_is_oserror"] is True


def test_uncaught_send_error_after_disconnect_is_not_logged_as_error(server):
    before = server.output()
    result, _ = _disconnect_after_wait(server, "start=1&raise=1", started=True)
    assert result["type"] == "http.disconnect"
    # Give the server time to log, if it were going to.
    time.sleep(0.2)
    new = server.output()[len(before):]
    assert "Exception in ASGI application" not in new
    assert "ERROR" not in new
    assert "Traceback" not in new


def test_server_still_serves_after_disconnects(server):
    ident = uuid.uuid4().hex
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", f"/wait?id={ident}&start=1"))
        assert c.read_until(b"waiting\n").startswith(b"HTTP/1.1 200")


def test_disconnect_during_upload(server):
    ident = uuid.uuid4().hex
    c = RawConnection(server.host, server.port)
    c.send(request_bytes("POST", f"/wait?id={ident}",
                         headers=[("Content-Length", "100000")]) + b"x" * 1000)
    time.sleep(0.1)
    closed_at = time.monotonic()
    c.close()
    # The body loop ends on http.disconnect, and the next receive() yields
    # it again at once.
    _wait_file(server.results_dir / f"{ident}.waiting")
    result = _wait_file(server.results_dir / f"{ident}.json")
    assert result["type"] == "http.disconnect"
    assert result["t"] - closed_at < 1


def test_zz_server_stops_promptly_after_disconnects(server):
    # No connection may be left behind by the requests above (an app that
    # returns after a disconnect without responding used to leak its
    # connection, and graceful shutdown then waited forever).
    started = time.monotonic()
    assert server.stop(timeout=5) == 0
    assert time.monotonic() - started < 3
