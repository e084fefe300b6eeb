"""HTTP/1.1 behaviour on the wire: persistence, pipelining, framing,
HTTP/1.0, HEAD, Expect: 100-continue, large and streamed bodies."""

import hashlib
import json
import os
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from rawhttp import RawConnection, chunked, fetch, request_bytes


@pytest.fixture(scope="module")
def echo(module_server_factory):
    return module_server_factory.start("apps.body_echo:app")


@pytest.fixture(scope="module")
def stream(module_server_factory):
    return module_server_factory.start("apps.streaming:app")


# --- persistence and pipelining -------------------------------------------


def test_keep_alive_several_requests_one_socket(echo):
    with RawConnection(echo.host, echo.port) as c:
        for i in range(5):
            body = f"request {i}".encode()
            c.send(request_bytes("POST", "/", body=body))
            resp = c.read_response()
            assert resp.status == 200
            assert resp.body == body
            assert (resp.header("connection") or "").lower() != "close"
        # Still open after five requests.
        assert c.peek(0.1) == b"" and not c.closed_by_peer


def test_pipelining_three_requests_in_order(echo):
    data = b"".join(
        request_bytes("POST", "/", body=f"pipelined-{i}".encode()) for i in range(3)
    )
    with RawConnection(echo.host, echo.port) as c:
        c.send(data)
        bodies = [c.read_response().body for _ in range(3)]
    assert bodies == [b"pipelined-0", b"pipelined-1", b"pipelined-2"]


def test_pipelining_mixed_methods(stream):
    data = (request_bytes("GET", "/single") + request_bytes("HEAD", "/single")
            + request_bytes("GET", "/stream?n=2"))
    with RawConnection(stream.host, stream.port) as c:
        c.send(data)
        r1 = c.read_response()
        r2 = c.read_response(head_request=True)
        r3 = c.read_response()
    assert r1.body == b"all at once"
    assert r2.status == 200 and r2.body == b""
    assert r3.body == b"chunk-0\nchunk-1\n"


def test_connection_close_request_closes(stream):
    with RawConnection(stream.host, stream.port) as c:
        c.send(request_bytes("GET", "/single", headers=[("Connection", "close")]))
        resp = c.read_response()
        assert resp.status == 200
        assert (resp.header("connection") or "").lower() == "close"
        assert c.wait_closed(2)


# --- framing ---------------------------------------------------------------


def test_single_body_response_gets_content_length(stream):
    with RawConnection(stream.host, stream.port) as c:
        c.send(request_bytes("GET", "/single"))
        resp = c.read_response()
    assert resp.header("content-length") == str(len(b"all at once"))
    assert resp.header("transfer-encoding") is None
    assert resp.body == b"all at once"


def test_empty_single_body_has_content_length_zero(stream):
    with RawConnection(stream.host, stream.port) as c:
        c.send(request_bytes("GET", "/empty"))
        resp = c.read_response()
    assert resp.header("content-length") == "0"
    assert resp.body == b""


def test_streamed_response_is_chunked(stream):
    with RawConnection(stream.host, stream.port) as c:
        c.send(request_bytes("GET", "/stream?n=3"))
        resp = c.read_response()
    assert resp.header("transfer-encoding") == "chunked"
    assert resp.header("content-length") is None
    assert resp.chunked
    assert resp.body == b"chunk-0\nchunk-1\nchunk-2\n"


def test_streaming_100_chunks(stream):
    with httpx.Client(base_url=stream.base_url) as client:
        with client.stream("GET", "/stream?n=100") as r:
            assert r.status_code == 200
            assert r.headers["transfer-encoding"] == "chunked"
            body = b"".join(r.iter_bytes())
    expected = b"".join(f"chunk-{i}\n".encode() for i in range(100))
    assert body == expected


def test_streaming_large_chunks(stream):
    r = httpx.get(stream.url("/stream?n=64&size=65536"), timeout=10)
    assert r.status_code == 200
    assert len(r.content) == 64 * 65536


def test_chunked_request_body(echo):
    body = chunked(b"hello ", b"chunked ", b"world")
    with RawConnection(echo.host, echo.port) as c:
        c.send(request_bytes("POST", "/", headers=[("Transfer-Encoding", "chunked")]) + body)
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"hello chunked world"


def test_chunked_request_body_with_extensions_and_trailers(echo):
    body = b"5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
    with RawConnection(echo.host, echo.port) as c:
        c.send(request_bytes("POST", "/", headers=[("Transfer-Encoding", "chunked")]) + body)
        resp = c.read_response()
    assert resp.body == b"hello"


def test_chunked_in_chunked_out(echo):
    with RawConnection(echo.host, echo.port) as c:
        c.send(request_bytes("POST", "/stream-echo", headers=[("Transfer-Encoding", "chunked")]))
        c.send(b"3\r\nabc\r\n")
        time.sleep(0.05)
        c.send(b"4\r\ndefg\r\n0\r\n\r\n")
        resp = c.read_response()
    assert resp.header("transfer-encoding") == "chunked"
    assert resp.body == b"abcdefg"


def test_chunked_request_split_byte_by_byte(echo):
    data = request_bytes("POST", "/", headers=[("Transfer-Encoding", "chunked")]) + chunked(
        b"slow", b"ly")
    with RawConnection(echo.host, echo.port) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
        resp = c.read_response()
    assert resp.body == b"slowly"


# --- HTTP/1.0 --------------------------------------------------------------


def test_http10_streamed_response_is_not_chunked_and_closes(stream):
    with RawConnection(stream.host, stream.port) as c:
        c.send(b"GET /stream?n=3 HTTP/1.0\r\n\r\n")
        raw = c.read_until_close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.")
    assert b" 200 " in head.split(b"\r\n")[0] + b" "
    assert b"transfer-encoding" not in head.lower()
    assert body == b"chunk-0\nchunk-1\nchunk-2\n"


def test_http10_single_body_closes_after(stream):
    with RawConnection(stream.host, stream.port) as c:
        c.send(b"GET /single HTTP/1.0\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200
        assert resp.body == b"all at once"
        assert c.wait_closed(2)


def test_http10_keep_alive_header_is_honoured_or_closed(stream):
    # Either behaviour is allowed for 1.0 keep-alive, but the response must
    # be framed by content-length when the connection stays open.
    with RawConnection(stream.host, stream.port) as c:
        c.send(b"GET /single HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200
        assert resp.header("transfer-encoding") is None
        if (resp.header("connection") or "").lower() == "keep-alive":
            c.send(b"GET /single HTTP/1.0\r\n\r\n")
            assert c.read_response().body == b"all at once"
        else:
            assert c.wait_closed(2)


# --- HEAD ------------------------------------------------------------------


def test_head_has_headers_but_no_body(stream):
    with RawConnection(stream.host, stream.port) as c:
        c.send(request_bytes("HEAD", "/single"))
        resp = c.read_response(head_request=True)
        assert resp.status == 200
        assert resp.header("content-type") == "text/plain"
        # No body bytes follow: the next response starts right away.
        c.send(request_bytes("GET", "/single"))
        resp2 = c.read_response()
    assert resp2.status == 200 and resp2.body == b"all at once"


def test_head_streamed_has_no_body(stream):
    with RawConnection(stream.host, stream.port) as c:
        c.send(request_bytes("HEAD", "/stream?n=5"))
        resp = c.read_response(head_request=True)
        c.send(request_bytes("GET", "/single"))
        resp2 = c.read_response()
    assert resp.status == 200
    assert resp2.status == 200 and resp2.body == b"all at once"


def test_head_with_httpx(stream):
    r = httpx.head(stream.url("/single"))
    assert r.status_code == 200
    assert r.content == b""


# --- Expect: 100-continue --------------------------------------------------


def expect_head(path, length):
    return request_bytes("POST", path, headers=[
        ("Content-Length", str(length)), ("Expect", "100-continue")])


def test_100_continue_sent_when_app_reads_body(echo):
    body = b"x" * 1000
    with RawConnection(echo.host, echo.port) as c:
        c.send(expect_head("/", len(body)))
        interim = c.read_response()
        assert interim.status == 100
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n")
        c.send(body)
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body == body


def test_no_100_continue_when_app_does_not_read_body(echo):
    with RawConnection(echo.host, echo.port) as c:
        c.send(expect_head("/noread", 5))
        resp = c.read_response()
        assert resp.status == 200, resp
        assert resp.body == b"not read"
        # Nothing before the final response, and no 100 after it.
        assert b"100 Continue" not in resp.raw_head
        rest = c.peek(0.2)
        assert b"100 Continue" not in rest


def test_unread_expect_body_response_announces_close(echo):
    # No 100 was sent, so the client may never send the body: the server
    # cannot reuse the connection and must say so.
    with RawConnection(echo.host, echo.port) as c:
        c.send(expect_head("/noread", 5))
        resp = c.read_response()
        assert resp.status == 200
        assert (resp.header("connection") or "").lower() == "close"
        assert c.wait_closed(3)


def _keep_alive_is_honest(c, resp):
    """Either the response says close and the server closes, or the
    connection really serves the next request."""
    if (resp.header("connection") or "").lower() == "close":
        assert c.wait_closed(3)
    else:
        c.send(request_bytes("POST", "/", body=b"next"))
        assert c.read_response().body == b"next"


def test_unread_small_body_keeps_connection_usable(echo):
    with RawConnection(echo.host, echo.port) as c:
        c.send(request_bytes("POST", "/noread", body=b"ignored body"))
        resp = c.read_response()
        assert resp.body == b"not read"
        _keep_alive_is_honest(c, resp)


def test_unread_large_body_keep_alive_is_honest(echo):
    body = b"u" * (4 * 1024 * 1024)
    with RawConnection(echo.host, echo.port) as c:
        c.send(request_bytes("POST", "/noread", headers=[("Content-Length", str(len(body)))]))
        c.send(body[:1024 * 1024])
        resp = c.read_response()
        assert resp.body == b"not read"
        try:
            c.send(body[1024 * 1024:])
        except OSError:
            return  # closed by the server, as announced
        _keep_alive_is_honest(c, resp)


def test_100_continue_not_sent_before_app_asks(echo):
    # The /noread app answers without reading; the first bytes on the wire
    # must be the final response.
    with RawConnection(echo.host, echo.port) as c:
        c.send(expect_head("/noread", 10))
        first = c.read_until(b"\r\n")
    assert first.startswith(b"HTTP/1.1 200")


def test_no_100_continue_for_http10(echo):
    with RawConnection(echo.host, echo.port) as c:
        c.send(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert c.peek(0.3) == b""
        c.send(b"hello")
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"hello"


def test_expect_with_body_already_sent(echo):
    body = b"eager client"
    with RawConnection(echo.host, echo.port) as c:
        c.send(expect_head("/", len(body)) + body)
        resp = c.read_response()
        if resp.status == 100:
            resp = c.read_response()
    assert resp.status == 200
    assert resp.body == body


# --- large bodies ----------------------------------------------------------


def test_4mb_upload_echoed_intact(echo):
    body = os.urandom(4 * 1024 * 1024)
    r = httpx.post(echo.url("/"), content=body, timeout=30)
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(body))
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(body).digest()


def _count_upload(server, target: str, body: bytes) -> dict:
    # A raw socket writes the body as fast as the kernel takes it (httpx
    # paces its writes, which makes the count measure the client).
    resp = fetch(server.host, server.port, request_bytes("POST", target, body=body), timeout=30)
    assert resp.status == 200
    return json.loads(resp.body)


def test_4mb_upload_in_few_messages(echo):
    # An app that does some work per message (parsing, hashing) is what
    # coalescing is for: while it works, the server keeps reading up to its
    # 1 MiB high-water mark, and the next receive() takes all of it at once.
    # Handing over each 64 KiB socket read would make 64 messages.
    body = os.urandom(4 * 1024 * 1024)
    info = _count_upload(echo, "/count?work=0.005", body)
    assert info["length"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert 4 <= info["messages"] <= 10, info
    assert max(info["sizes"]) <= 2 * 1024 * 1024, "read far ahead of the app"


def test_4mb_upload_fast_app_still_coalesced(echo):
    # An app that does no work takes whatever is buffered each time it asks,
    # so the count depends on scheduling; it stays well under one message
    # per 64 KiB socket read.
    body = os.urandom(4 * 1024 * 1024)
    info = _count_upload(echo, "/count", body)
    assert info["length"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert 1 <= info["messages"] <= 32, info


def test_4mb_chunked_upload(echo):
    part = os.urandom(256 * 1024)

    def gen():
        for _ in range(16):
            yield part

    r = httpx.post(echo.url("/count"), content=gen(), timeout=30)
    info = r.json()
    assert info["length"] == 16 * len(part)
    assert info["sha256"] == hashlib.sha256(part * 16).hexdigest()


def test_large_stream_echo(echo):
    body = os.urandom(2 * 1024 * 1024)
    r = httpx.post(echo.url("/stream-echo"), content=body, timeout=30)
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.content == body


def test_empty_post(echo):
    r = httpx.post(echo.url("/count"), content=b"")
    assert r.json()["length"] == 0
    assert r.json()["messages"] == 1


# --- standard headers -------------------------------------------------------


def test_default_server_and_date_headers(stream):
    r = httpx.get(stream.url("/single"))
    assert r.headers["server"] == "cormorant"
    date = r.headers["date"]
    assert date.endswith(" GMT") and len(date) == 29, date


def test_date_follows_the_clock_on_a_kept_alive_connection(stream):
    # The Date is handed to the connection once a second, not per response:
    # a later response on the same connection still shows the time it was
    # sent at.
    def local_port(r):
        return r.extensions["network_stream"].get_extra_info("client_addr")[1]

    with httpx.Client() as client:
        first = client.get(stream.url("/single"))
        first_port = local_port(first)
        time.sleep(2.1)
        second = client.get(stream.url("/single"))
        assert local_port(second) == first_port  # one connection
    gap = parsedate_to_datetime(second.headers["date"]) - parsedate_to_datetime(first.headers["date"])
    assert 2 <= gap.total_seconds() <= 4, (first.headers["date"], second.headers["date"])


def test_json_via_httpx(echo):
    r = httpx.post(echo.url("/"), json={"a": 1})
    assert json.loads(r.content) == {"a": 1}


def test_plain_fetch(stream):
    resp = fetch(stream.host, stream.port, request_bytes("GET", "/nope"))
    assert resp.status == 404
