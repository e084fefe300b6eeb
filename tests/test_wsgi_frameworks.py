"""Real Flask and Django applications, unmodified, served by `cormorant
app:app` (the interface detected): routing, JSON, a form upload, a streamed
upload and download, a slow client, 100-continue, errors, HTTP/2."""

from __future__ import annotations

import hashlib
import os
import socket
import time

import httpx
import pytest
from test_http2 import process_tree_rss_mb

from h2client import H2Client

APPS = {"flask": "apps.flask_app:app", "django": "apps.django_app:app"}
# Flask with one application thread (inline), Django with the default pool.
FLAGS = {"flask": ("--blocking-threads", "1"), "django": ()}


@pytest.fixture(scope="module")
def servers(module_server_factory):
    """Each framework's server, started once for the module."""
    started = {}

    def get(framework):
        if framework not in started:
            s = module_server_factory.start(APPS[framework], *FLAGS[framework])
            s.framework = framework
            started[framework] = s
        return started[framework]

    return get


@pytest.fixture(params=["flask", "django"])
def server(request, servers):
    return servers(request.param)


@pytest.fixture
def flask(servers):
    return servers("flask")


@pytest.fixture
def django(servers):
    return servers("django")


def url(server, path):
    return server.url(path)


def test_detected_as_wsgi(server):
    assert "; WSGI, " in server.output()


def test_routing_and_json(server):
    r = httpx.get(url(server, "/"), timeout=5)
    assert r.status_code == 200
    assert r.text == f"Hello from {server.framework.capitalize()}"
    r = httpx.get(url(server, "/items/42?q=x"), timeout=5)
    assert r.json()["id"] == 42 and r.json()["q"] == "x"
    assert httpx.get(url(server, "/missing"), timeout=5).status_code == 404


def test_flask_json_body(flask):
    r = httpx.post(url(flask, "/json"), json={"a": [1, 2]}, timeout=5)
    assert r.json() == {"received": {"a": [1, 2]}, "method": "POST"}


def test_form_upload(server):
    data = os.urandom(3 << 20)
    r = httpx.post(url(server, "/upload"), files={"file": ("blob.bin", data)},
                   data={"field": "value"}, timeout=20)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "blob.bin", "field": "value", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()}


def test_streamed_upload(server):
    piece = os.urandom(1 << 20)

    def gen():
        for _ in range(16):
            yield piece

    # Django reads CONTENT_LENGTH bytes, so it needs one; Flask reads a
    # chunked body too (wsgi.input_terminated).
    headers = {"content-length": str(16 << 20)} if server.framework == "django" else {}
    r = httpx.post(url(server, "/stream-upload"), content=gen(), headers=headers, timeout=30)
    expected = hashlib.sha256(piece * 16).hexdigest()
    assert r.json() == {"size": 16 << 20, "sha256": expected}


def test_large_streamed_download(server):
    h, n = hashlib.sha256(), 0
    with httpx.stream("GET", url(server, "/download?mb=32"), timeout=30) as r:
        for chunk in r.iter_bytes():
            h.update(chunk)
            n += len(chunk)
    expected = hashlib.sha256(b"".join(bytes([i % 256]) * 65536 for i in range(512)))
    assert n == 32 << 20 and h.hexdigest() == expected.hexdigest()


def test_a_slow_client_cannot_grow_memory(server):
    before = process_tree_rss_mb(server.pid)
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /download?mb=256 HTTP/1.1\r\nHost: x\r\n\r\n")
        grown, total = 0.0, 0
        for _ in range(20):
            total += len(s.recv(65536))
            time.sleep(0.05)
            grown = max(grown, process_tree_rss_mb(server.pid) - before)
        assert grown < 32, f"RSS grew by {grown:.1f} MB for a slow client"
        while True:
            chunk = s.recv(1 << 20)
            assert chunk
            total += len(chunk)
            if chunk.endswith(b"0\r\n\r\n") and total > (256 << 20):
                break


def test_expect_100_continue(server):
    body = b"x" * 100_000
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"POST /stream-upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert hashlib.sha256(body).hexdigest().encode() in data


def test_a_view_that_raises_is_a_500(server):
    r = httpx.get(url(server, "/error"), timeout=5)
    assert r.status_code == 500
    server.wait_for_output(f"{server.framework} view failed")


def test_flask_stream_failing_midway_is_cut_and_logged(flask):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url(flask, "/stream-error"), timeout=5)
    out = flask.wait_for_output("flask stream failed")
    assert "Traceback (most recent call last)" in out


def test_django_file_response_is_sent_whole(django):
    with open(os.path.join(os.path.dirname(__file__), "apps", "django_app.py"), "rb") as f:
        source = f.read()
    r = httpx.get(url(django, "/file"), timeout=5)
    assert r.content == source
    assert r.headers["content-length"] == str(len(source))


def test_over_http2(server):
    with H2Client(server.host, server.port) as c:
        r = c.request("GET", "/items/7?q=h2")
        assert r.status == 200 and b'"id": 7' in r.body.replace(b'"id":7', b'"id": 7')
        data = os.urandom(1 << 20)
        r = c.request("POST", "/stream-upload", body=data, timeout=10,
                      headers=[("content-length", str(len(data)))])
        assert hashlib.sha256(data).hexdigest().encode() in r.body
