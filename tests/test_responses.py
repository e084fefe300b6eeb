"""How application responses reach the wire."""

import socket
import time

import httpx
import pytest

from rawhttp import RawConnection, request_bytes


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory.start("apps.responses:app")


def _rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _get(server, target):
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", target))
        return c.read_response()


@pytest.mark.parametrize("shape", ["lists", "tuple", "generator"])
def test_response_headers_in_any_iterable_of_pairs(server, shape):
    # ASGI: headers are "an iterable of [name, value] two-item iterables".
    resp = _get(server, f"/header-shapes?shape={shape}")
    assert resp.status == 200
    assert (resp.header("x-a"), resp.header("x-b")) == ("1", "2")


def test_send_result_is_an_ordinary_awaitable(server):
    # Apps await send()'s result twice, wrap it in a task, time it out and
    # gather it: whatever it returns must allow all of that.
    resp = _get(server, "/awaitables")
    assert resp.status == 200
    assert resp.body == b"abcd"


def test_app_content_length_over_several_messages(server):
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/cl-exact"))
        resp = c.read_response()
        assert resp.header("content-length") == "5"
        assert resp.header("transfer-encoding") is None
        assert resp.body == b"hello"
        # Still usable.
        c.send(request_bytes("GET", "/cl-exact"))
        assert c.read_response().body == b"hello"


def test_body_shorter_than_content_length_closes_connection(server):
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/cl-short"))
        raw = c.read_until_close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-length: 10" in head.lower()
    assert len(body) < 10


def test_body_longer_than_content_length_is_not_sent(server):
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/cl-long") + request_bytes("GET", "/cl-exact"))
        raw = c.read_until_close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"content-length: 2" in head.lower()
    # Never more than the declared length, and no smuggled bytes after.
    assert len(rest) <= 2


def test_204_has_no_body_and_no_framing(server):
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/204"))
        resp = c.read_response()
        assert resp.status == 204
        assert resp.header("content-length") is None
        assert resp.header("transfer-encoding") is None
        c.send(request_bytes("GET", "/cl-exact"))
        assert c.read_response().body == b"hello"


def test_response_headers_kept_in_order_with_duplicates(server):
    resp = _get(server, "/headers")
    names = [n.lower() for n, _ in resp.headers]
    assert resp.header_all("set-cookie") == ["a=1", "b=2"]
    assert names.index("x-mixed-case") > names.index("set-cookie")
    assert resp.header("x-mixed-case") == "Value"
    r = httpx.get(server.url("/headers"))
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]


def test_unknown_status_code(server):
    resp = _get(server, "/custom-status")
    assert resp.status == 299
    assert resp.body == b"odd"


def test_slow_reader_backpressure_bounds_memory(server):
    before = _rss_mb(server.pid)
    c = RawConnection(server.host, server.port)
    try:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(request_bytes("GET", "/big?mb=200"))
        time.sleep(1.0)  # the app would have produced 200 MB by now
        assert _rss_mb(server.pid) - before < 50
        got = 0
        while got < 20 * 1024 * 1024:
            data = c.sock.recv(1 << 20)
            assert data
            got += len(data)
    finally:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        c.close()
    # The app's next send() fails with a disconnect, which is not an error.
    time.sleep(0.3)
    out = server.output()
    assert "Exception in ASGI application" not in out
    assert httpx.get(server.url("/cl-exact")).text == "hello"


def test_big_streamed_response_intact(server):
    r = httpx.get(server.url("/big?mb=8"), timeout=30)
    assert len(r.content) == 8 * 1024 * 1024
    assert r.content.count(b"b") == len(r.content)


@pytest.fixture(scope="module")
def header_server(module_server_factory):
    return module_server_factory.start("apps.responses:app_headers")


def test_app_chunked_header_is_not_doubled(header_server):
    with RawConnection(header_server.host, header_server.port) as c:
        c.send(request_bytes("GET", "/te") + request_bytes("GET", "/te"))
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.header_all("transfer-encoding") == ["chunked"]
    # Chunked by the server itself, once. Chunk boundaries carry no meaning
    # (RFC 9112 §7.1): sends that queue up before the connection takes them
    # may leave as one chunk.
    assert r1.body == b"abcdef" and b"".join(r1.chunks) == b"abcdef"
    assert r2.body == b"abcdef"


def test_app_connection_close_header_closes(header_server):
    with RawConnection(header_server.host, header_server.port) as c:
        c.send(request_bytes("GET", "/close") + request_bytes("GET", "/close"))
        raw = c.read_until_close()
    assert raw.count(b"HTTP/1.1 200") == 1
    assert raw.lower().count(b"connection: close") == 1
    assert raw.endswith(b"\r\n\r\nbye")


def test_app_keep_alive_header_not_duplicated(header_server):
    with RawConnection(header_server.host, header_server.port) as c:
        c.send(request_bytes("GET", "/keep") + request_bytes("GET", "/keep"))
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.body == r2.body == b"kept"
    assert len(r1.header_all("connection")) <= 1
