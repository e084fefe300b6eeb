"""What the server does when the application misbehaves."""

import time

import httpx
import pytest

from rawhttp import RawConnection, request_bytes


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory.start("apps.errors:app")


def test_exception_before_response_gives_500_and_traceback(server):
    r = httpx.get(server.url("/raise-before"))
    assert r.status_code == 500
    assert r.text == "Internal Server Error"
    assert r.headers["content-length"] == str(len(r.content))
    out = server.wait_for_output("boom before the response")
    assert "Exception in ASGI application" in out
    assert "Traceback (most recent call last)" in out
    assert "RuntimeError: boom before the response" in out


def test_connection_usable_after_500(server):
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/raise-before"))
        assert c.read_response().status == 500
        c.send(request_bytes("GET", "/results"))
        assert c.read_response().status == 200


def test_exception_after_response_started_cuts_response(server):
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/raise-after"))
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"transfer-encoding: chunked" in head.lower()
        rest = c.read_until_close()
    assert c.closed_by_peer
    # The first chunk arrived, the terminating zero-size chunk never did.
    assert rest.startswith(b"7\r\npartial\r\n")
    assert b"0\r\n\r\n" not in rest
    out = server.wait_for_output("boom after the response started")
    assert "Exception in ASGI application" in out


def test_exception_after_response_httpx_sees_incomplete(server):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(server.url("/raise-after"))


def test_return_without_response_gives_500(server):
    r = httpx.get(server.url("/no-response"))
    assert r.status_code == 500
    assert r.text == "Internal Server Error"


def test_start_without_body_then_return_gives_500(server):
    # The start was held back and never reached the wire: the client can
    # still get a clean 500.
    r = httpx.get(server.url("/start-only"))
    assert r.status_code == 500


def _report(server, case):
    r = httpx.get(server.url(f"/invalid/{case}"))
    assert r.status_code == 200, r.text
    return r.json()


def test_body_before_start_raises(server):
    rep = _report(server, "body-before-start")
    assert rep["type"] is not None
    assert "Exception" in rep["mro"]
    assert "http.response.start" in rep["message"]


def test_two_starts_raise(server):
    rep = _report(server, "two-starts")
    assert rep["type"] is not None
    assert "start" in rep["message"]


def test_unknown_message_type_raises(server):
    rep = _report(server, "unknown-type")
    assert rep["type"] is not None
    assert "http.response.bogus" in rep["message"]


def test_message_without_type_raises(server):
    rep = _report(server, "no-type")
    assert rep["type"] is not None
    assert "type" in rep["message"]


def test_status_not_int_raises(server):
    rep = _report(server, "bad-status")
    assert rep["type"] == "TypeError"


def test_invalid_header_name_raises(server):
    rep = _report(server, "bad-header-name")
    assert rep["type"] == "ValueError"


@pytest.mark.parametrize("case", ["three-item-header", "headers-not-a-list", "str-header-name"])
def test_malformed_header_list_raises_type_error(server, case):
    rep = _report(server, case)
    assert rep["type"] == "TypeError"


def test_header_value_with_crlf_raises(server):
    rep = _report(server, "bad-header-value")
    assert rep["type"] == "ValueError"


@pytest.mark.parametrize("case", ["ctl-header-value", "del-header-value"])
def test_header_value_with_other_controls_raises(server, case):
    # RFC 9110 §5.5: a field value has no control characters but HTAB. HTTP/2
    # refused them already; HTTP/1.1 let them through to the wire.
    rep = _report(server, case)
    assert rep["type"] == "ValueError"
    assert "control characters are not allowed" in rep["message"]


def test_str_body_raises(server):
    rep = _report(server, "str-body")
    assert rep["type"] == "TypeError"


def test_send_after_response_completed_raises(server):
    r = httpx.get(server.url("/after-complete"))
    assert r.text == "complete"
    deadline = time.monotonic() + 5
    while True:
        results = httpx.get(server.url("/results")).json()
        if "after-complete" in results or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    rep = results["after-complete"]
    assert rep["type"] is not None
    assert "completed" in rep["message"]


def test_invalid_messages_are_not_logged_as_server_errors(server):
    _report(server, "unknown-type")
    out = server.output()
    assert "panicked" not in out


def test_an_exit_raised_by_the_app_is_answered_logged_once_and_ends_the_worker(server_factory):
    """SystemExit is not an Exception: the request still gets its 500 and
    one logged traceback, and the exit reaches the event loop, as it
    would from a task of the request's own (it is not taken for a failure
    to start the app)."""
    srv = server_factory.start("apps.exits:app")
    assert httpx.get(srv.url("/")).status_code == 200
    assert httpx.get(srv.url("/exit")).status_code == 500
    srv.wait_exit()
    out = srv.output()
    assert out.count("Exception in ASGI application") == 1, out
    assert "Exception while starting the ASGI application" not in out, out
