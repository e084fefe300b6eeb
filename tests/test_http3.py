"""HTTP/3 over QUIC (`--http3`), with aioquic as an independent client:
the scope, bodies both ways, streaming, trailers, interim responses,
pathsend, disconnects, many streams, the QUIC limits, Alt-Svc, the graceful
stop's GOAWAY, and malformed frames.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import ssl
import time

import h3client
import httpx
import pytest
from test_metrics import value, wait_value

import certs
from conftest import free_port, wait_text


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.Pki:
    return certs.make_pki(tmp_path_factory.mktemp("pki"))


def h3_flags(pki: certs.Pki, *more: str) -> list[str]:
    return ["--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key),
            "--http3", *more]


@pytest.fixture(scope="module")
def apps(module_server_factory, pki):
    return module_server_factory.start("apps.h2_apps:app", *h3_flags(pki))


@pytest.fixture(scope="module")
def scope_server(module_server_factory, pki):
    return module_server_factory.start("apps.scope_echo:app", *h3_flags(pki))


@pytest.fixture(scope="module")
def echo(module_server_factory, pki):
    return module_server_factory.start("apps.body_echo:app", *h3_flags(pki))


def run(coro):
    return asyncio.run(coro)


async def one(server, pki, method: str, path: str, **kw) -> h3client.Response:
    async with h3client.connect(server.port, str(pki.ca_cert)) as c:
        return await c.request(method, path, f"localhost:{server.port}", **kw)


# --- the scope ---------------------------------------------------------------


def test_scope_over_http3(scope_server, pki):
    r = run(one(scope_server, pki, "GET", "/a/b?x=1", headers=[(b"cookie", b"a=1"),
                                                                 (b"cookie", b"b=2")]))
    assert r.status == 200, r
    scope = json.loads(r.body)
    assert scope["http_version"] == "3"
    assert scope["scheme"] == "https"
    assert (scope["path"], scope["query_string"]) == ("/a/b", "x=1")
    headers = scope["headers"]
    # :authority becomes host, first; cookie crumbs are joined (RFC 9114 §4.2.1).
    assert headers[0] == ["host", f"localhost:{scope_server.port}"]
    assert ["cookie", "a=1; b=2"] in headers
    assert scope["server"] == ["127.0.0.1", scope_server.port]
    ext = scope["extensions"]
    assert "http.response.trailers" in ext and "http.response.early_hint" in ext
    assert ext["tls"]["tls_version"] == 0x0304
    # quinn does not tell the suite; the ASGI TLS extension allows None.
    assert ext["tls"]["cipher_suite"] is None
    assert ext["tls"]["server_cert"].startswith("-----BEGIN CERTIFICATE-----")


def test_server_fields_and_no_alt_svc_on_http3(scope_server, pki):
    r = run(one(scope_server, pki, "GET", "/"))
    assert r.header(b"server") == b"cormorant"
    assert r.header(b"date") is not None
    assert r.header(b"alt-svc") is None


# --- Alt-Svc ------------------------------------------------------------------


def test_tcp_responses_advertise_http3(scope_server, pki):
    ca = ssl.create_default_context(cafile=str(pki.ca_cert))
    expected = f'h3=":{scope_server.port}"; ma=86400'
    with httpx.Client(verify=ca, timeout=5) as c:
        assert c.get(scope_server.url("/")).headers["alt-svc"] == expected
    with httpx.Client(verify=ca, http2=True, timeout=5) as c:
        r = c.get(scope_server.url("/"))
    assert r.http_version == "HTTP/2"
    assert r.headers["alt-svc"] == expected


def test_no_alt_svc_without_http3(server_factory, pki):
    server = server_factory.start("apps.scope_echo:app", "--ssl-certfile", str(pki.server_cert),
                                  "--ssl-keyfile", str(pki.server_key))
    with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca_cert)), timeout=5) as c:
        assert "alt-svc" not in c.get(server.url("/")).headers


def test_startup_line_names_http3(scope_server):
    assert "(HTTP/1.1, HTTP/2, HTTP/3;" in scope_server.output()


def udp_sockets_on(port: int) -> int:
    """UDP sockets bound to `port` on this machine (/proc/net/udp)."""
    with open("/proc/net/udp") as f:
        return sum(1 for line in f.readlines()[1:] if line.split()[1].endswith(f":{port:04X}"))


def test_each_worker_serves_http3(server_factory, pki):
    server = server_factory.start("apps.pid:app", *h3_flags(pki, "--workers", "2"))
    # Both workers' sockets in the group first: one joining later moves
    # flows already under way (see the README's HTTP/3 limits).
    deadline = time.monotonic() + 10
    while udp_sockets_on(server.port) < 2:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.02)
    pids = set()
    for _ in range(40):
        r = h3client.get(server.port, "/", ca=str(pki.ca_cert))
        assert r.status == 200
        pids.add(bytes(r.body))
        if len(pids) == 2:
            break
    assert len(pids) == 2, "the SO_REUSEPORT group spreads connections over both workers"


@pytest.mark.parametrize("flags, message", [
    (["--http3"], "--http3 needs TLS"),
    (["--http3", "--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem", "--uds", "/tmp/x.sock"],
     "--http3 needs a TCP port"),
])
def test_http3_without_tls_is_one_readable_line(server_factory, flags, message):
    server = server_factory.start("apps.scope_echo:app", *flags, wait=False)
    assert server.wait_exit() != 0
    assert message in server.output()


# --- bodies -------------------------------------------------------------------


def test_request_body_both_ways(echo, pki):
    body = bytes(range(256)) * 4096  # 1 MiB
    r = run(one(echo, pki, "POST", "/", body=body))
    assert r.status == 200
    assert hashlib.sha256(r.body).hexdigest() == hashlib.sha256(body).hexdigest()
    assert r.header(b"content-length") == str(len(body)).encode()


def test_request_body_sent_in_parts(echo, pki):
    async def go():
        async with h3client.connect(echo.port, str(pki.ca_cert)) as c:
            sid = c.send_request("POST", "/count", f"localhost:{echo.port}", end=False)
            for part in (b"a" * 1000, b"b" * 2000):
                c.send_body(sid, part)
                await asyncio.sleep(0.05)
            c.send_body(sid, b"c" * 3000, end=True)
            return await c.response(sid)
    r = run(go())
    assert r.status == 200
    assert json.loads(r.body)["length"] == 6000


def test_streamed_response(server_factory, pki):
    server = server_factory.start("apps.streaming:app", *h3_flags(pki))
    r = run(one(server, pki, "GET", "/stream?n=50&size=1000"))
    assert r.status == 200 and r.ended
    assert len(r.body) == 50 * 1000


def test_trailers(apps, pki):
    r = run(one(apps, pki, "GET", "/trailers"))
    assert bytes(r.body) == b"hello trailers"
    assert r.trailers == [(b"x-checksum", b"abc123"), (b"grpc-status", b"0")]


def test_early_hint_is_a_103_before_the_response(apps, pki):
    r = run(one(apps, pki, "GET", "/early-hint"))
    assert r.interim == [(103, [(b"link", b"</style.css>; rel=preload; as=style")])]
    assert (r.status, bytes(r.body)) == (200, b"hinted")


def test_pathsend(apps, pki, tmp_path):
    f = tmp_path / "file.bin"
    f.write_bytes(b"x" * 200_000)
    r = run(one(apps, pki, "GET", f"/pathsend?path={f}"))
    assert r.status == 200
    assert r.header(b"content-length") == b"200000"
    assert len(r.body) == 200_000


def test_head_has_no_body(scope_server, pki):
    r = run(one(scope_server, pki, "HEAD", "/"))
    assert r.status == 200 and r.ended
    assert r.body == b""


def test_many_concurrent_streams_on_one_connection(apps, pki):
    async def go():
        async with h3client.connect(apps.port, str(pki.ca_cert)) as c:
            sids = [c.send_request("GET", f"/slow?s=0.2&i={i}", f"localhost:{apps.port}")
                    for i in range(100)]
            started = time.monotonic()
            rs = [await c.response(s, timeout=10) for s in sids]
            return rs, time.monotonic() - started
    rs, took = run(go())
    assert [r.status for r in rs] == [200] * 100
    assert {bytes(r.body) for r in rs} == {b"done"}
    assert took < 3, "the streams were served concurrently"


# --- disconnects --------------------------------------------------------------


def test_reset_upload_reaches_the_app_as_disconnect(apps, pki):
    async def go():
        async with h3client.connect(apps.port, str(pki.ca_cert)) as c:
            sid = c.send_request("POST", "/watch-upload?id=reset", f"localhost:{apps.port}",
                                 body=b"x" * 1000, end=False)
            await asyncio.to_thread(wait_text, apps.results_dir / "reset.waiting")
            c.reset(sid)
            return json.loads(await asyncio.to_thread(wait_text, apps.results_dir / "reset.json"))
    assert run(go())["type"] == "http.disconnect"


def test_closed_connection_reaches_a_waiting_app_as_disconnect(server_factory, pki):
    server = server_factory.start("apps.disconnect:app", *h3_flags(pki))

    async def go():
        async with h3client.connect(server.port, str(pki.ca_cert)) as c:
            c.send_request("GET", "/wait?id=gone", f"localhost:{server.port}")
            await asyncio.to_thread(wait_text, server.results_dir / "gone.waiting")
            closed = time.monotonic()
        return closed
    closed = run(go())
    seen = json.loads(wait_text(server.results_dir / "gone.json"))
    assert seen["type"] == "http.disconnect"
    assert seen["t"] - closed < 1.0


# --- limits -------------------------------------------------------------------


def test_quic_limits_are_advertised(server_factory, pki):
    server = server_factory.start("apps.h2_apps:app", *h3_flags(
        pki, "--http3-max-concurrent-streams", "7", "--http3-stream-window-size", "65536",
        "--http3-connection-window-size", "131072"))

    async def go():
        async with h3client.connect(server.port, str(pki.ca_cert)) as c:
            # The transport parameters, before any stream raises the limits.
            q = c._quic
            return (q._remote_max_streams_bidi, q._remote_max_stream_data_bidi_remote,
                    q._remote_max_data)
    streams, stream_window, conn_window = run(go())
    assert streams == 7
    assert stream_window == 65536
    assert conn_window == 131072


def test_stream_limit_holds(server_factory, pki):
    server = server_factory.start("apps.h2_apps:app", *h3_flags(
        pki, "--http3-max-concurrent-streams", "4"))

    async def go():
        async with h3client.connect(server.port, str(pki.ca_cert)) as c:
            started = time.monotonic()
            sids = [c.send_request("GET", "/slow?s=0.5", f"localhost:{server.port}")
                    for _ in range(8)]
            rs = [await c.response(s, timeout=10) for s in sids]
            return rs, time.monotonic() - started
    rs, took = run(go())
    assert [r.status for r in rs] == [200] * 8
    # Four at a time: two rounds of half a second.
    assert took >= 0.95, took


def test_unread_upload_costs_window_not_memory(server_factory, pki):
    server = server_factory.start("apps.h2_apps:app", *h3_flags(
        pki, "--http3-stream-window-size", "65536"))

    async def go():
        async with h3client.connect(server.port, str(pki.ca_cert)) as c:
            # The app sleeps without reading: only the stream window is sent.
            sid = c.send_request("POST", "/sleep-then-read?s=1.5", f"localhost:{server.port}",
                                 body=b"u" * 1_000_000, end=True)
            await asyncio.sleep(0.7)
            stream = c._quic._streams[sid]
            sent = stream.sender._pending_offset if hasattr(stream.sender, "_pending_offset") \
                else stream.sender.highest_offset
            r = await c.response(sid, timeout=10)
            return sent, r
    sent, r = run(go())
    assert sent <= 65536 + 16 * 1024, sent  # the window, plus the head's frame
    assert json.loads(r.body)["length"] == 1_000_000


# --- the stop -----------------------------------------------------------------


def test_stop_sends_goaway_and_finishes_the_request_under_way(server_factory, pki):
    server = server_factory.start("apps.h2_apps:app", *h3_flags(pki))

    async def go():
        async with h3client.connect(server.port, str(pki.ca_cert)) as c:
            sid = c.send_request("GET", "/slow?s=1", f"localhost:{server.port}")
            await asyncio.sleep(0.3)
            server.signal(signal.SIGTERM)
            r = await c.response(sid, timeout=10)
            await asyncio.wait_for(c.closed.wait(), 10)
            return r, c.goaway, c.close_error
    r, goaway, close_error = run(go())
    assert (r.status, bytes(r.body)) == (200, b"done")
    assert goaway is not None, "GOAWAY received"
    assert close_error == 0x100  # H3_NO_ERROR
    assert server.wait_exit() == 0


# --- bad input ----------------------------------------------------------------


async def raw_request_stream(server, pki, data: bytes) -> h3client.Client:
    """Opens a connection and writes `data` raw on a new request stream;
    returns the client once the server closed the connection."""
    async with h3client.connect(server.port, str(pki.ca_cert)) as c:
        sid = c._quic.get_next_available_stream_id()
        c._quic.send_stream_data(sid, data, end_stream=True)
        c.transmit()
        await asyncio.wait_for(c.closed.wait(), 5)
        return c


def test_data_before_headers_is_a_frame_error(apps, pki):
    c = run(raw_request_stream(apps, pki, h3client.frame(0x0, b"hello")))
    assert c.close_error == 0x105  # H3_FRAME_UNEXPECTED
    assert h3client.get(apps.port, "/hello", ca=str(pki.ca_cert)).status == 200


def test_qpack_reference_to_an_empty_dynamic_table_fails_decompression(apps, pki):
    # Required Insert Count 1: the server allows no dynamic table.
    c = run(raw_request_stream(apps, pki, h3client.frame(0x1, b"\x02\x00\x80")))
    assert c.close_error == 0x200  # QPACK_DECOMPRESSION_FAILED
    assert h3client.get(apps.port, "/hello", ca=str(pki.ca_cert)).status == 200


@pytest.mark.parametrize("kind", [0x2, 0x6, 0x8, 0x9])
def test_http2_frame_types_are_a_frame_error(apps, pki, kind):
    # RFC 9114 §7.2.8: HTTP/2's PRIORITY, PING, WINDOW_UPDATE and
    # CONTINUATION have no HTTP/3 meaning; receiving one is a connection error.
    request = h3client.literal_headers_frame(f"localhost:{apps.port}", [])
    c = run(raw_request_stream(apps, pki, request + h3client.frame(kind, b"12345678")))
    assert c.close_error == 0x105  # H3_FRAME_UNEXPECTED
    assert h3client.get(apps.port, "/hello", ca=str(pki.ca_cert)).status == 200


def test_unknown_frame_types_are_skipped(apps, pki):
    # RFC 9114 §9: frames of unknown type (here a reserved, greasing one and
    # an unassigned one) are ignored, even before the request's HEADERS.
    async def go():
        async with h3client.connect(apps.port, str(pki.ca_cert)) as c:
            sid = c.send_raw(h3client.frame(0x21, b"grease") + h3client.frame(0x4242, b"?")
                             + h3client.literal_headers_frame(f"localhost:{apps.port}", []))
            return await c.response(sid)
    r = run(go())
    assert (r.status, bytes(r.body)) == (200, b"hello")


def test_a_qpack_encoder_stream_flood_costs_no_memory(apps, pki):
    # A QPACK bomb needs a dynamic table to expand small references into
    # large fields. The server allows none: a client that sets a capacity
    # and inserts entries all the same (4 MiB of them) grows nothing, and a
    # header block that references one fails to decompress.
    from test_http2 import process_tree_rss_mb

    before = process_tree_rss_mb(apps.pid)

    async def go():
        async with h3client.connect(apps.port, str(pki.ca_cert)) as c:
            encoder = c.http._local_encoder_stream_id
            # Insert with Literal Name (RFC 9204 §4.3.3): a 15-byte name, a
            # 1000-byte value.
            insert = (h3client._prefixed_int(15, 5, 0x40) + b"n" * 15
                      + h3client._prefixed_int(1000, 7, 0x00) + b"v" * 1000)
            c._quic.send_stream_data(encoder, b"\x3f\xe1\x1f" + insert * 4096)
            c.transmit()
            await asyncio.sleep(1.5)
            grown = process_tree_rss_mb(apps.pid) - before
            c.send_raw(h3client.frame(0x1, b"\x02\x00\x80"))  # refers to entry 0
            c.transmit()
            await asyncio.wait_for(c.closed.wait(), 5)
            return grown, c.close_error
    grown, error = run(go())
    assert grown < 8, f"RSS grew by {grown:.1f} MB"
    assert error == 0x200  # QPACK_DECOMPRESSION_FAILED
    assert h3client.get(apps.port, "/hello", ca=str(pki.ca_cert)).status == 200


def test_literal_headers_frame_is_a_valid_request(apps, pki):
    # The hand-made encoding below, checked on a request of normal size.
    async def go():
        async with h3client.connect(apps.port, str(pki.ca_cert)) as c:
            sid = c.send_raw(h3client.literal_headers_frame(
                f"localhost:{apps.port}", [(b"x-a", b"v" * 300)]))
            return await c.response(sid)
    r = run(go())
    assert (r.status, bytes(r.body)) == (200, b"hello")


def test_oversized_header_section_is_refused(apps, pki):
    async def go():
        async with h3client.connect(apps.port, str(pki.ca_cert)) as c:
            big = [(b"x-%d" % i, b"v" * 1000) for i in range(100)]  # 100 KB > 64 KB
            sid = c.send_raw(h3client.literal_headers_frame(f"localhost:{apps.port}", big))
            return await c.response(sid)
    r = run(go())
    # RFC 9114 §4.2.2: refused, here with 431 as on the other protocols.
    assert r.status == 431, r
    assert h3client.get(apps.port, "/hello", ca=str(pki.ca_cert)).status == 200


# --- access log and metrics ----------------------------------------------------


def test_access_log_and_metrics_count_http3(server_factory, pki):
    mport = free_port()
    server = server_factory.start("apps.body_echo:app", *h3_flags(
        pki, "--access-log", "--metrics", "--metrics-port", str(mport)))
    assert h3client.get(server.port, "/", ca=str(pki.ca_cert)).status == 200
    assert run(one(server, pki, "POST", "/", body=b"z" * 1000)).status == 200
    out = server.wait_for_output('"POST / HTTP/3" 200')
    assert '"GET / HTTP/3" 200' in out
    text = wait_value(mport, 'cormorant_requests_total{method="POST",status="200"}',
                      lambda v: v == 1)
    assert value(text, 'cormorant_requests_total{method="GET",status="200"}') == 1
    assert value(text, "cormorant_request_body_bytes_total") == 1000

