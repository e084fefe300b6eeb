"""Command-line options that change what is served."""

import threading
import time

import httpx
import pytest

from rawhttp import RawConnection, request_bytes


def test_limit_concurrency_503_beyond_limit(server_factory):
    server = server_factory.start("apps.streaming:app", "--limit-concurrency", "1")
    results = []
    t = threading.Thread(target=lambda: results.append(httpx.get(server.url("/slow?s=1"))))
    t.start()
    time.sleep(0.3)
    try:
        with RawConnection(server.host, server.port) as c:
            c.send(request_bytes("GET", "/single"))
            resp = c.read_response()
            assert resp.status == 503
            assert c.wait_closed(3)
    finally:
        t.join(10)
    assert results[0].status_code == 200
    # Once the slow request is done, requests are served again.
    assert httpx.get(server.url("/single")).status_code == 200


def test_no_server_header_and_no_date_header(server_factory):
    server = server_factory.start("apps.streaming:app", "--no-server-header", "--no-date-header")
    for path in ("/single", "/stream?n=2"):
        r = httpx.get(server.url(path))
        assert r.status_code == 200
        assert "server" not in r.headers
        assert "date" not in r.headers


def test_no_server_header_keeps_date(server_factory):
    server = server_factory.start("apps.streaming:app", "--no-server-header")
    r = httpx.get(server.url("/single"))
    assert "server" not in r.headers
    assert r.headers["date"].endswith("GMT")


def test_extra_headers(server_factory):
    server = server_factory.start(
        "apps.streaming:app", "--header", "X-Powered-By:cormorant-tests",
        "--header", "X-Second: two words")
    for path in ("/single", "/stream?n=1"):
        r = httpx.get(server.url(path))
        assert r.headers["x-powered-by"] == "cormorant-tests"
        assert r.headers["x-second"] == "two words"
    # Also on the server's own error responses? At least on app responses.


def test_extra_headers_from_environment(server_factory):
    server = server_factory.start("apps.streaming:app", env={"CORMORANT_HEADERS": "X-Env:yes"})
    assert httpx.get(server.url("/single")).headers["x-env"] == "yes"


def test_root_path_from_environment(server_factory):
    server = server_factory.start("apps.scope_echo:app", env={"CORMORANT_ROOT_PATH": "/mnt"})
    scope = httpx.get(server.url("/x")).json()
    assert scope["root_path"] == "/mnt"
    assert scope["path"] == "/mnt/x"


def test_timeout_keep_alive_closes_idle_connection(server_factory):
    server = server_factory.start("apps.streaming:app", "--timeout-keep-alive", "0.3")
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/single"))
        assert c.read_response().status == 200
        elapsed = c.seconds_until_closed()
    assert 0.2 < elapsed < 2, elapsed


def test_timeout_keep_alive_counts_from_the_last_response(server_factory):
    """Each response restarts the idle time: a connection reused within the
    timeout is not closed on the first request's schedule."""
    server = server_factory.start("apps.streaming:app", "--timeout-keep-alive", "1")
    with RawConnection(server.host, server.port) as c:

        def get() -> None:
            c.send(request_bytes("GET", "/single"))
            assert c.read_response().status == 200

        get()
        time.sleep(0.6)
        get()
        # Past the first request's deadline (1 s after it), still open.
        time.sleep(0.6)
        get()
        elapsed = c.seconds_until_closed()
    assert 0.8 < elapsed < 3, elapsed


def test_slow_request_head_is_cut_off(server_factory):
    # A head trickling in byte by byte must not hold the connection forever:
    # the head timeout counts from its first byte and is not re-armed by
    # each new byte, unlike the idle keep-alive timeout.
    server = server_factory.start(
        "apps.streaming:app", "--timeout-request-head", "0.6", "--timeout-keep-alive", "5"
    )
    head = request_bytes("GET", "/single")
    with RawConnection(server.host, server.port) as c:
        started = time.monotonic()
        closed = False
        for byte in head[:-2]:
            try:
                c.send(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > 3:
                break
        if not closed:
            closed = c.wait_closed(3)
        elapsed = time.monotonic() - started
    assert closed
    assert 0.5 < elapsed < 2.5, elapsed


# RFC 9110 §15.5.9: a request that does not arrive in time is answered 408
# rather than dropped silently. Core's timers (head from its first byte;
# body while the server waits for it) write the response, so it is the same
# bytes the C API sends.
@pytest.mark.parametrize(
    "app, flag, sent",
    [
        ("apps.streaming:app", "--timeout-request-head", b"GET /single HTTP/1.1\r\nHost: x\r\n"),
        (
            "apps.body_echo:app",
            "--timeout-request-body",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        ),
    ],
    ids=["head", "body"],
)
def test_request_that_does_not_arrive_in_time_gets_408(server_factory, app, flag, sent):
    server = server_factory.start(app, flag, "0.4", "--no-date-header")
    with RawConnection(server.host, server.port) as c:
        c.send(sent)
        started = time.monotonic()
        resp = c.read_response()
        elapsed = time.monotonic() - started
        assert c.wait_closed(3)
    assert 0.3 < elapsed < 2.5, elapsed
    assert resp.raw_head + resp.body == (
        b"HTTP/1.1 408 Request Timeout\r\nserver: cormorant\r\n"
        b"content-type: text/plain; charset=utf-8\r\ncontent-length: 15\r\n"
        b"connection: close\r\n\r\nRequest Timeout"
    )


def test_request_body_that_keeps_coming_is_not_timed_out(server_factory):
    server = server_factory.start(
        "apps.body_echo:app", "--timeout-request-body", "0.5", "--no-date-header"
    )
    with RawConnection(server.host, server.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
        for piece in (b"ab", b"cd", b"ef", b"gh"):
            time.sleep(0.3)  # each gap under the limit, the total over it
            c.send(piece)
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"abcdefgh"


def test_timeout_request_head_rejects_nonsense(server_factory):
    proc, log_path = server_factory.spawn(
        ["-m", "cormorant", "apps.streaming:app", "--timeout-request-head", "0"]
    )
    assert proc.wait(timeout=20) != 0
    assert "timeout-request-head" in log_path.read_text()


def test_access_log(server_factory):
    server = server_factory.start("apps.streaming:app", "--access-log")
    httpx.get(server.url("/single?x=1"))
    out = server.wait_for_output("GET /single?x=1 HTTP/1.1")
    line = next(line for line in out.splitlines() if "GET /single?x=1" in line)
    assert " 200 " in line


def test_access_log_configured_by_the_app_goes_through_logging(server_factory):
    server = server_factory.start("apps.access_custom:app", "--access-log")
    httpx.get(server.url("/custom?q=2"))
    out = server.wait_for_output("GET /custom?q=2")
    line = next(line for line in out.splitlines() if "GET /custom?q=2" in line)
    assert line.startswith("cormorant.access [tagged] ")
    assert " 200 " in line


def test_no_access_log_by_default(server_factory):
    server = server_factory.start("apps.streaming:app")
    httpx.get(server.url("/single"))
    time.sleep(0.1)
    assert "GET /single" not in server.output()


@pytest.mark.parametrize("loop, expected", [
    ("asyncio", "asyncio.unix_events._UnixSelectorEventLoop"),
    ("uvloop", "uvloop.Loop"),
])
def test_loop_choice(server_factory, loop, expected):
    server = server_factory.start("apps.loopinfo:app", "--loop", loop)
    r = httpx.get(server.url("/"))
    assert r.status_code == 200
    assert r.text == expected
    # A streamed body and a request body work on that loop too.
    echo = server_factory.start("apps.body_echo:app", "--loop", loop)
    assert httpx.post(echo.url("/stream-echo"), content=b"x" * 100000).content == b"x" * 100000


def test_limit_request_line_option(server_factory):
    server = server_factory.start("apps.streaming:app", "--limit-request-line", "100")
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/" + "a" * 200))
        assert c.read_response().status == 414
    assert httpx.get(server.url("/single")).status_code == 200


def test_limit_request_fields_option(server_factory):
    server = server_factory.start("apps.streaming:app", "--limit-request-fields", "5")
    headers = [(f"X-{i}", "v") for i in range(10)]
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/single", headers=headers))
        assert c.read_response().status == 431


def test_limit_max_requests_single_process_exits(server_factory):
    server = server_factory.start("apps.pid:app", "--limit-max-requests", "3")
    for _ in range(3):
        with httpx.Client() as client:
            assert client.get(server.url("/")).status_code == 200
    assert server.wait_exit(10) == 0
