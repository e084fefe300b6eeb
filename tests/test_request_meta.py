"""Request identity and queue time: `--request-id` (kept from a trusted
proxy or made, given to the app, echoed, logged), W3C trace IDs in the
access log, `--request-start-header`, and the queue-time histogram."""

import json
import re
import time

import httpx

from h2client import H2Client
from rawhttp import RawConnection, request_bytes

HEX32 = re.compile(r"^[0-9a-f]{32}$")
FORMAT = "%(request)s id=%(request_id)s trace=%(trace_id)s span=%(span_id)s"


def header(scope, name):
    values = [v for n, v in scope["headers"] if n == name]
    assert len(values) <= 1, values
    return values[0] if values else None


def test_request_id_is_made_given_to_the_app_echoed_and_logged(server_factory):
    server = server_factory.start("apps.scope_echo:app", "--request-id", "--access-log",
                                  "--access-log-format", FORMAT)
    r = httpx.get(server.url("/a"), timeout=5)
    rid = r.headers["x-request-id"]
    assert HEX32.match(rid), rid
    scope = r.json()
    assert header(scope, "x-request-id") == rid
    assert scope["extensions"]["request_id"] == {"id": rid}
    server.wait_for_output(f'"GET /a HTTP/1.1" id={rid} trace=- span=-'.replace('"', ""))
    # Every request its own.
    ids = {httpx.get(server.url("/a"), timeout=5).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20
    # HTTP/2 too.
    with H2Client(server.host, server.port) as c:
        res = c.request("GET", "/h2")
    h2_id = dict(res.headers)[b"x-request-id"].decode()
    assert HEX32.match(h2_id)
    assert header(json.loads(res.body), "x-request-id") == h2_id


def test_a_trusted_proxys_id_is_kept_and_an_untrusted_or_bad_one_replaced(server_factory):
    trusting = server_factory.start("apps.scope_echo:app", "--request-id")
    r = httpx.get(trusting.url("/"), headers={"X-Request-ID": "lb-7f3a:1"}, timeout=5)
    assert r.headers["x-request-id"] == "lb-7f3a:1"
    assert header(r.json(), "x-request-id") == "lb-7f3a:1"
    for bad in ("has space", "x" * 200):
        r = httpx.get(trusting.url("/"), headers={"X-Request-ID": bad}, timeout=5)
        assert HEX32.match(r.headers["x-request-id"]), bad
    distrusting = server_factory.start("apps.scope_echo:app", "--request-id",
                                       "--forwarded-allow-ips", "10.0.0.1")
    r = httpx.get(distrusting.url("/"), headers={"X-Request-ID": "client-chosen"}, timeout=5)
    assert HEX32.match(r.headers["x-request-id"])
    assert header(r.json(), "x-request-id") == r.headers["x-request-id"]


def test_an_apps_own_id_wins_and_a_500_carries_the_id(server_factory):
    server = server_factory.start("apps.busy:app", "--request-id")
    r = httpx.get(server.url("/raise"), timeout=5)
    assert r.status_code == 500
    assert HEX32.match(r.headers["x-request-id"])
    server.wait_for_output("RuntimeError: boom")
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/own-id?ms=0"))
        resp = c.read_response()
    assert resp.header_all("x-request-id") == ["app-1"]


def test_trace_context_in_the_access_log(server_factory):
    server = server_factory.start("apps.scope_echo:app", "--access-log", "--access-log-format",
                                  FORMAT)
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    httpx.get(server.url("/t"), headers={"traceparent": tp}, timeout=5)
    server.wait_for_output("GET /t HTTP/1.1 id=- trace=4bf92f3577b34da6a3ce929d0e0e4736 "
                           "span=00f067aa0ba902b7")


def test_request_start_header(server_factory):
    server = server_factory.start("apps.scope_echo:app", "--request-start-header")
    before = time.time()
    scope = httpx.get(server.url("/"), headers={"X-Request-Start": "t=1"}, timeout=5).json()
    after = time.time()
    value = header(scope, "x-request-start")
    assert value is not None and value.startswith("t="), value
    micros = int(value[2:])
    assert before - 0.05 <= micros / 1e6 <= after, (before, micros, after)
    # Off by default.
    plain = server_factory.start("apps.scope_echo:app")
    assert header(httpx.get(plain.url("/"), timeout=5).json(), "x-request-start") is None


def test_queue_time_histogram(server_factory):
    from conftest import free_port
    mport = free_port()
    server = server_factory.start("apps.busy:app", "--metrics", "--metrics-port", str(mport))
    for _ in range(5):
        assert httpx.get(server.url("/?ms=1"), timeout=5).status_code == 200
    deadline = time.monotonic() + 5
    while True:
        text = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=5).text
        m = re.search(r"^cormorant_request_queue_seconds_count (\d+)$", text, re.M)
        if m and int(m.group(1)) >= 5:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    assert "# TYPE cormorant_request_queue_seconds histogram" in text
    assert 'cormorant_request_queue_seconds_bucket{le="+Inf"}' in text
