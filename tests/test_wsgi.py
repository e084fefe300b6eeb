"""WSGI (PEP 3333) over real sockets: the environ, wsgi.input, the response
iterable, start_response and write(), errors, the thread pool, HTTP/2, a slow
client and a stop. The app (apps/wsgi_app.py) runs inside wsgiref.validate,
which checks every environ and response of the paths that keep the PEP."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import signal
import socket
import threading
import time

import httpx
import pytest
from test_http2 import process_tree_rss_mb

from h2client import H2Client

APP = "apps.wsgi_app:app"


@pytest.fixture(scope="module")
def one(module_server_factory):
    """Inline mode: one application thread."""
    return module_server_factory.start(APP, "--root-path", "/mount", "--blocking-threads", "1")


@pytest.fixture(scope="module")
def pooled(module_server_factory):
    return module_server_factory.start(APP, "--blocking-threads", "4")


@pytest.fixture(params=["one", "pooled"])
def server(request):
    return request.getfixturevalue(request.param)


def get(server, path, **kw):
    return httpx.get(server.url(path), timeout=10, **kw)


def post(server, path, content, **kw):
    return httpx.post(server.url(path), content=content, timeout=20, **kw)


def test_the_interface_is_detected_and_named(one, pooled):
    assert "WSGI, 1 thread;" in one.output()
    assert "WSGI, 4 threads;" in pooled.output()


def test_hello(server):
    r = get(server, "/")
    assert (r.status_code, r.text) == (200, "Hello, world!")
    assert r.headers["content-type"] == "text/plain"


def test_environ(one):
    r = get(one, "/environ?a=1&b=%20", headers={
        "X-Custom": "v", "X-Dup": "1", "Content-Type": "text/x",
    })
    env = r.json()
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == "/mount"
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(one.port))
    assert env["REMOTE_ADDR"] == "127.0.0.1" and int(env["REMOTE_PORT"]) > 0
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.run_once"] is False and env["wsgi.multiprocess"] is False
    assert env["HTTP_X_CUSTOM"] == "v"
    assert env["CONTENT_TYPE"] == "text/x"
    assert "HTTP_CONTENT_TYPE" not in env


def test_environ_paths_are_decoded_as_latin1_and_fields_joined(one):
    with socket.create_connection((one.host, one.port), timeout=5) as s:
        s.sendall(b"GET /environ/%C3%A9%20x HTTP/1.1\r\nHost: h:1\r\nX-A: 1\r\nX-A: 2\r\n"
                  b"Cookie: a=1\r\nCookie: b=2\r\nX_Forwarded_For: 6.6.6.6\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    env = json.loads(data.split(b"\r\n\r\n", 1)[1])
    # PEP 3333: the decoded bytes as ISO-8859-1 (é in UTF-8 is two chars).
    assert env["PATH_INFO"] == "/environ/\u00c3\u00a9 x"
    assert env["HTTP_X_A"] == "1,2"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    # Underscored names would pass for a proxy's: dropped.
    assert not any("FORWARDED" in k for k in env)


@pytest.mark.parametrize("path", ["/echo", "/echo-all"])
def test_request_body(server, path):
    body = os.urandom(300_000)
    r = post(server, path, body)
    assert r.status_code == 200 and r.content == body


def test_chunked_upload_without_content_length(server):
    def gen():
        for i in range(50):
            yield b"%05d" % i * 1000

    expected = b"".join(gen())
    r = httpx.post(server.url("/digest"), content=gen(), timeout=20)
    assert r.json() == {"sha256": hashlib.sha256(expected).hexdigest(), "length": len(expected)}


@pytest.mark.parametrize("path", ["/lines", "/iter-lines"])
def test_readline_and_iteration(server, path):
    r = post(server, path, b"first\nsecond\n\nlast")
    assert r.json() == ["first\n", "second\n", "\n", "last"]


def test_large_streamed_upload(server):
    body = os.urandom(12 << 20)
    r = post(server, "/digest", body)
    assert r.json() == {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}


def test_expect_100_continue(one):
    with socket.create_connection((one.host, one.port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n"), first
        s.sendall(b"hello")
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            chunk = s.recv(65536)
            assert chunk
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and b"\r\nhello\r\n" in data


def test_generator_streams_chunked(server):
    r = get(server, "/gen?n=100")
    assert r.text == "".join(f"chunk{i}\n" for i in range(100))
    assert r.headers.get("transfer-encoding") == "chunked"


def test_the_apps_content_length_is_kept(server):
    r = get(server, "/gen-length")
    assert r.text == "0123456789" and r.headers["content-length"] == "10"


def test_write_callable(server):
    assert get(server, "/write").text == "written pieces"


def test_empty_response(server):
    r = get(server, "/empty")
    assert r.status_code == 204 and r.content == b""


def test_head_has_no_body(server):
    r = httpx.head(server.url("/"), timeout=5)
    assert r.status_code == 200 and r.content == b""


def test_file_wrapper_sends_the_file(server):
    with open(os.path.join(os.path.dirname(__file__), "apps", "wsgi_app.py"), "rb") as f:
        source = f.read()
    r = get(server, "/file")
    assert r.content == source
    # Sent whole by the server: its length is known.
    assert r.headers["content-length"] == str(len(source))
    r = get(server, "/file-offset")
    assert r.content == source[10:]


def test_close_is_called(server):
    before = get(server, "/closed-count").json()
    assert get(server, "/closed").text == "ab"
    with pytest.raises(httpx.RemoteProtocolError):
        get(server, "/raise-late")
    deadline = time.monotonic() + 5
    while get(server, "/closed-count").json() < before + 2:
        assert time.monotonic() < deadline


def test_an_exception_before_the_head_is_a_500_with_a_traceback(server):
    r = get(server, "/raise")
    assert r.status_code == 500
    out = server.wait_for_output("raised before start_response")
    assert "Traceback (most recent call last)" in out
    assert "Exception in WSGI application" in out


def test_an_exception_after_the_head_cuts_the_response(server):
    with pytest.raises(httpx.RemoteProtocolError):
        get(server, "/raise-late")
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"GET /raise-late HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"first piece" in data and not data.endswith(b"0\r\n\r\n")


def test_exc_info_replaces_the_head(server):
    r = get(server, "/exc-info")
    assert r.status_code == 500
    assert r.text == "the app's error page" and r.headers["x-error"] == "1"


@pytest.mark.parametrize("path,message", [
    ("/no-start", "returned without calling start_response"),
    ("/str-body", "must yield bytes, not str"),
    ("/bad-status", 'invalid status "OK"'),
])
def test_broken_responses_are_500s(server, path, message):
    r = get(server, path)
    assert r.status_code == 500
    server.wait_for_output(message)


def test_header_strings_are_sent_as_iso_8859_1(server):
    """PEP 3333: a header str is ISO-8859-1; a character beyond U+00FF
    cannot be sent, so that response is a 500 with the reason logged."""
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"GET /latin1-header HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and b"\r\nx-name: caf\xe9\r\n" in data.lower()
    r = get(server, "/wide-header")
    assert r.status_code == 500 and "x-price" not in r.headers
    server.wait_for_output("is not ISO-8859-1")


def test_hop_by_hop_headers_are_left_out(server):
    r = get(server, "/hop")
    assert r.headers["x-kept"] == "1"
    assert "keep-alive" not in r.headers
    assert r.headers.get("connection") != "close"


def test_wsgi_errors_go_to_logging(server):
    get(server, "/errors")
    out = server.wait_for_output("second error line")
    assert "ERROR    first error line" in out


def test_keep_alive_and_pipelining(one):
    with socket.create_connection((one.host, one.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3 +
                  b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"Hello, world!") == 4


def test_over_http2(server):
    with H2Client(server.host, server.port) as c:
        r = c.request("GET", "/environ")
        assert r.status == 200
        env = json.loads(r.body)
        assert env["SERVER_PROTOCOL"] == "HTTP/2"
        body = os.urandom(200_000)
        r = c.request("POST", "/echo", body=body, timeout=10)
        assert r.body == body


def test_pool_saturation_serves_every_request(server_factory):
    server = server_factory.start(APP, "--blocking-threads", "2")
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda _: get(server, "/sleep?s=0.3"), range(8)))
    took = time.monotonic() - started
    assert [r.status_code for r in results] == [200] * 8
    assert len({r.json()["thread"] for r in results}) == 2
    # Two at a time: four rounds of 0.3 s.
    assert took >= 1.15, took


def test_pool_saturation_over_http2(server_factory):
    server = server_factory.start(APP, "--blocking-threads", "2")
    started = time.monotonic()
    with H2Client(server.host, server.port, timeout=10) as c:
        sids = [c.send_headers("GET", "/sleep?s=0.3", end_stream=True) for _ in range(6)]
        results = [c.response(sid, timeout=10) for sid in sids]
    took = time.monotonic() - started
    assert [r.status for r in results] == [200] * 6
    assert took >= 0.85, took


def test_the_io_does_not_wait_for_the_pool(server_factory):
    """With every application thread busy, the health path still answers."""
    server = server_factory.start(APP, "--blocking-threads", "2", "--health-path", "/healthz")
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        busy = [ex.submit(get, server, "/sleep?s=1.5") for _ in range(2)]
        time.sleep(0.3)
        started = time.monotonic()
        assert get(server, "/healthz").status_code == 200
        assert time.monotonic() - started < 0.5
        assert all(f.result().status_code == 200 for f in busy)


def test_the_io_does_not_wait_for_python_work_on_the_pool(server_factory):
    """A thread running Python (holding the GIL) does not hold up the I/O:
    with a pool it has a thread of its own that never takes the GIL."""
    server = server_factory.start(APP, "--blocking-threads", "2", "--health-path", "/healthz")
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        busy = ex.submit(get, server, "/spin?s=2")
        time.sleep(0.3)
        worst = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert get(server, "/healthz").status_code == 200
            worst = max(worst, time.monotonic() - started)
        assert worst < 0.1, worst
        assert busy.result().status_code == 200


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_slow_client_cannot_grow_memory(server_factory, threads):
    server = server_factory.start(APP, "--blocking-threads", threads)
    assert get(server, "/").status_code == 200
    before = process_tree_rss_mb(server.pid)
    total = 0
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /big?mb=256 HTTP/1.1\r\nHost: x\r\n\r\n")
        # Read slowly at first: the app produces far faster than this.
        grown = 0.0
        for _ in range(20):
            total += len(s.recv(65536))
            time.sleep(0.05)
            grown = max(grown, process_tree_rss_mb(server.pid) - before)
        assert grown < 32, f"RSS grew by {grown:.1f} MB for a slow client"
        while total < (256 << 20):
            chunk = s.recv(1 << 20)
            assert chunk
            total += len(chunk)
    # Every byte arrived (head included).
    assert total > (256 << 20)


def test_stop_finishes_requests_in_flight(server_factory):
    for threads in ("1", "2"):
        server = server_factory.start(APP, "--blocking-threads", threads)
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            pending = ex.submit(get, server, "/sleep?s=0.8")
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            r = pending.result()
        assert r.status_code == 200
        assert server.wait_exit() == 0


def test_several_workers(server_factory):
    server = server_factory.start(APP, "--workers", "2", "--blocking-threads", "2")
    assert get(server, "/environ").json()["wsgi.multiprocess"] is True
    assert get(server, "/").text == "Hello, world!"


def test_interface_can_be_forced(server_factory):
    server = server_factory.start(APP, "--interface", "wsgi")
    assert get(server, "/").text == "Hello, world!"
    # The default: four threads.
    assert "WSGI, 4 threads;" in server.output()


def test_a_bad_thread_count_is_one_line(server_factory):
    proc, log = server_factory.spawn(["-m", "cormorant", APP, "--blocking-threads", "0"])
    assert proc.wait(10) != 0
    text = log.read_text().strip()
    assert "--blocking-threads" in text and len(text.splitlines()) == 1, text


def test_python_api_detects_and_serves(server_factory, tmp_path):
    script = tmp_path / "serve.py"
    from conftest import free_port, wait_ready

    port = free_port()
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(os.path.dirname(__file__))!r})\n"
        "import cormorant\n"
        "from apps.wsgi_app import raw_app\n"
        f"cormorant.run(raw_app, port={port}, blocking_threads=2)\n"
    )
    proc, log = server_factory.spawn([str(script)])
    try:
        wait_ready(port, proc, log)
        assert "WSGI, 2 threads;" in log.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "Hello, world!"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_concurrent_clients_get_their_own_responses(server):
    def one(i):
        body = b"%d" % i * 1000
        r = post(server, "/echo", body)
        return r.content == body

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        assert all(ex.map(one, range(64)))
    assert threading.active_count() >= 1


def test_max_queue_time_sheds_requests_queued_behind_busy_threads(server_factory):
    server = server_factory.start(APP, "--blocking-threads", "2", "--max-queue-time", "200")
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        results = list(ex.map(lambda _: get(server, "/sleep?s=0.6"), range(6)))
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) >= 2 and 503 in codes, codes
    assert all(r.headers.get("retry-after") == "1" for r in results if r.status_code == 503)
    # Nothing stays counted as waiting: later requests are served.
    assert all(get(server, "/").status_code == 200 for _ in range(5))


def test_carries_over_tls_proxy_headers_limits_access_log(server_factory, tmp_path):
    import certs

    pki = certs.make_pki(tmp_path)
    server = server_factory.start(
        APP, "--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key),
        "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--limit-request-body", "1000",
        "--access-log")
    import ssl

    with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca_cert)), timeout=5) as c:
        env = c.get(server.url("/environ"), headers={"X-Forwarded-For": "203.0.113.9"}).json()
        assert env["wsgi.url_scheme"] == "https"
        assert env["REMOTE_ADDR"] == "203.0.113.9"
        assert c.post(server.url("/echo"), content=b"x" * 5000).status_code == 413
    server.wait_for_output('"GET /environ HTTP/1.1" 200')


def test_start_response_without_headers_is_a_clear_error(server_factory):
    server = server_factory.start(APP, "--blocking-threads", "1")
    r = get(server, "/no-headers")
    assert r.status_code == 500
    server.wait_for_output("start_response() takes (status, headers[, exc_info])")
