"""HTTP/2 (h2c with prior knowledge) on the wire, and the response extensions
(trailers, early hints, pathsend) on HTTP/1.1 and HTTP/2.

High-level checks go through httpx (`http1=False, http2=True` makes it speak
h2c with prior knowledge); frame-level checks use tests/h2client.py (the `h2`
state machine, or hand-made frames).

The frame-level mechanics can be checked against another server built on
hyper: CORMORANT_H2_REFERENCE=granian runs the server fixtures as
`granian --interface asgi --http 2` instead (tests of Cormorant-only
behaviour are skipped then).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

import h2client
from conftest import ServerProcess, free_port, wait_text
from h2client import H2Client, RawH2, frame, header_block, request_headers
from rawhttp import RawConnection, fetch, request_bytes

REFERENCE = os.environ.get("CORMORANT_H2_REFERENCE", "")

# The app must see http.disconnect this soon after a RST_STREAM / lost connection.
DISCONNECT_BUDGET = 0.25

cormorant_only = pytest.mark.skipif(
    REFERENCE != "", reason="Cormorant-specific behaviour (reference server run)")


def start(factory, app: str, *flags: str, env=None) -> ServerProcess:
    """Starts Cormorant (or the reference server) serving `app`."""
    if REFERENCE != "granian":
        return factory.start(app, *flags, env=env)
    import tempfile

    results = Path(tempfile.mkdtemp(prefix="results-", dir=factory.tmp_dir))
    port = free_port()
    rename = {"--http2-max-header-list-size": "--http2-max-headers-size"}
    args, it = [], iter(flags)
    for f in it:
        if f == "--timeout-graceful-shutdown":
            next(it)
            continue
        if f == "--http":
            next(it)
            continue
        args.append(rename.get(f, f))
    full_env = {"CORMORANT_TEST_RESULTS": str(results), **(env or {})}
    proc, log = factory.spawn(
        ["-m", "granian", "--interface", "asgi", "--http", "2", "--workers", "1",
         "--host", "127.0.0.1", "--port", str(port), *args, app], env=full_env)
    server = ServerProcess(proc, log, "127.0.0.1", port, None, results)
    factory.servers.append(server)
    factory.wait_ready(server, ready_line=None)
    return server


def h2_client(**kw) -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=10, **kw)


def wait_file(path: Path):
    return json.loads(wait_text(path))


def process_tree_rss_mb(pid: int) -> float:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@pytest.fixture(scope="module")
def apps(module_server_factory):
    return start(module_server_factory, "apps.h2_apps:app")


@pytest.fixture(scope="module")
def scope_server(module_server_factory):
    return start(module_server_factory, "apps.scope_echo:app")


@pytest.fixture(scope="module")
def echo(module_server_factory):
    return start(module_server_factory, "apps.body_echo:app")


@pytest.fixture(scope="module")
def stream(module_server_factory):
    return start(module_server_factory, "apps.streaming:app")


@pytest.fixture(scope="module")
def responses(module_server_factory):
    return start(module_server_factory, "apps.responses:app")


@pytest.fixture(scope="module")
def disconnect_server(module_server_factory):
    return start(module_server_factory, "apps.disconnect:app")


# --- httpx over h2c -----------------------------------------------------------


def test_get_over_h2c(apps):
    with h2_client() as c:
        r = c.get(apps.url("/hello"))
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200
    assert r.text == "hello"


@cormorant_only
def test_http1_still_served_in_auto_mode(apps):
    r = httpx.get(apps.url("/hello"), timeout=5)
    assert r.http_version == "HTTP/1.1"
    assert r.text == "hello"


def test_post_echo_1mb(echo):
    body = os.urandom(1 << 20)
    with h2_client() as c:
        r = c.post(echo.url("/"), content=body)
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200
    assert r.content == body


@cormorant_only
def test_a_cancelled_receive_does_not_take_the_body_that_comes_after(echo):
    # The app's receive() times out before the body comes, and the body
    # comes while the app does something else: its next receive() gets it.
    def body():
        time.sleep(0.2)
        yield b"later"

    with h2_client() as c:
        r = c.post(echo.url("/cancelled-receive"), content=body())
    assert r.status_code == 200
    assert r.content == b"later"


@cormorant_only
def test_upload_4mb_arrives_in_few_messages(echo):
    body = os.urandom(4 << 20)
    with h2_client() as c:
        r = c.post(echo.url("/count?work=0.005"), content=body)
    data = r.json()
    assert data["length"] == len(body)
    assert data["sha256"] == hashlib.sha256(body).hexdigest()
    # One message per DATA frame would be 256. How much the client has sent
    # while the app works sets the sizes, so a loaded machine (the client
    # competes for the CPU) makes more, smaller ones: the bound leaves room.
    assert data["messages"] <= 24, data["sizes"]


def test_streaming_response(stream):
    with h2_client() as c:
        with c.stream("GET", stream.url("/stream?n=100")) as r:
            assert r.http_version == "HTTP/2"
            assert r.status_code == 200
            body = b"".join(r.iter_bytes())
    assert body == b"".join(f"chunk-{i}\n".encode() for i in range(100))


def test_streaming_large_response(responses):
    with h2_client() as c:
        r = c.get(responses.url("/big?mb=4"))
    assert len(r.content) == 4 << 20


def test_many_concurrent_requests_one_connection(scope_server):
    async def run():
        async with httpx.AsyncClient(http1=False, http2=True, timeout=20) as c:
            return await asyncio.gather(
                *(c.get(scope_server.url(f"/n/{i}")) for i in range(60)))

    rs = asyncio.run(run())
    assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in rs)
    assert [r.json()["path"] for r in rs] == [f"/n/{i}" for i in range(60)]
    # One connection: every request came from the same client port.
    assert len({r.json()["client"][1] for r in rs}) == 1


def test_concurrent_slow_requests_overlap(apps):
    with H2Client(apps.host, apps.port) as c:
        t0 = time.monotonic()
        sids = [c.send_headers("GET", "/slow?s=0.5") for _ in range(20)]
        results = [c.response(s, timeout=10) for s in sids]
        elapsed = time.monotonic() - t0
    assert all(r.status == 200 and r.body == b"done" for r in results)
    assert elapsed < 3.0, elapsed  # 20 x 0.5 s in sequence would be 10 s


def test_scope_fields(scope_server):
    with H2Client(scope_server.host, scope_server.port) as c:
        sid = c.send_headers(raw=[
            (b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/some/path?x=1&y=2"),
            (b":authority", b"example.com:8080"),
            (b"cookie", b"a=1"), (b"x-custom", b"one"), (b"cookie", b"b=2"),
            (b"cookie", b"c=3"),
        ])
        st = c.response(sid)
    assert st.status == 200
    scope = json.loads(st.body)
    assert scope["type"] == "http"
    assert scope["http_version"] == "2"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/some/path"
    assert scope["raw_path"] == "/some/path"
    assert scope["query_string"] == "x=1&y=2"
    headers = [tuple(h) for h in scope["headers"]]
    assert headers[0] == ("host", "example.com:8080")
    assert [n for n, _ in headers if n == "host"] == ["host"]
    assert not [n for n, _ in headers if n.startswith(":")]
    assert ("x-custom", "one") in headers
    assert scope["_types"]["header_item"] == ["bytes", "bytes"]


@cormorant_only
def test_cookie_fields_joined(scope_server):
    with H2Client(scope_server.host, scope_server.port) as c:
        sid = c.send_headers(raw=[
            (b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
            (b":authority", b"localhost"),
            (b"cookie", b"a=1"), (b"x-custom", b"one"), (b"cookie", b"b=2"),
            (b"cookie", b"c=3"),
        ])
        st = c.response(sid)
    headers = [tuple(h) for h in json.loads(st.body)["headers"]]
    assert [v for n, v in headers if n == "cookie"] == ["a=1; b=2; c=3"]


@cormorant_only  # granian sends the body of a HEAD response
def test_head_has_no_body(stream):
    with H2Client(stream.host, stream.port) as c:
        st = c.request("HEAD", "/single")
    assert st.status == 200
    assert st.body == b""
    assert st.data_frames == 0 or st.body == b""


def test_204_has_no_body(responses):
    with h2_client() as c:
        r = c.get(responses.url("/204"))
    assert r.status_code == 204
    assert r.content == b""


def test_repeated_response_headers(responses):
    with H2Client(responses.host, responses.port) as c:
        st = c.request("GET", "/headers")
    assert [v for n, v in st.headers if n == b"set-cookie"] == [b"a=1", b"b=2"]
    assert st.header(b"x-mixed-case") == b"Value"
    # HTTP/2 has no connection-specific headers.
    assert st.header(b"connection") is None
    assert st.header(b"transfer-encoding") is None


@cormorant_only
def test_extensions_on_http2(apps):
    with h2_client() as c:
        ext = c.get(apps.url("/extensions")).json()
    assert "http.response.trailers" in ext
    assert "http.response.pathsend" in ext
    assert "http.response.early_hint" not in ext


@cormorant_only
def test_extensions_on_http1(apps):
    ext = httpx.get(apps.url("/extensions")).json()
    assert "http.response.trailers" not in ext
    assert "http.response.pathsend" in ext
    assert "http.response.early_hint" in ext
    ext = httpx.get(apps.url("/extensions"), headers={"TE": "trailers"}).json()
    assert "http.response.trailers" in ext
    assert "http.response.early_hint" in ext


# --- --http modes -------------------------------------------------------------


@cormorant_only
def test_http_2_only_refuses_http1(server_factory):
    server = start(server_factory, "apps.h2_apps:app", "--http", "2")
    with RawConnection(server.host, server.port, timeout=3) as c:
        c.send(request_bytes("GET", "/hello"))
        data = c.read_until_close()  # times out (fails) if the server keeps it open
    # Closed, at most with a GOAWAY frame: no HTTP/1.1 response.
    assert not data.startswith(b"HTTP/1.1 2"), data[:200]
    with h2_client() as c:
        assert c.get(server.url("/hello")).text == "hello"


@cormorant_only
@pytest.mark.parametrize("opening", [b"INVALID CONNECTION PREFACE\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"],
                         ids=["garbage", "http1"])
def test_http_2_only_answers_a_bad_preface_with_goaway(server_factory, opening):
    # RFC 9113 §3.4: a preface that is not the client preface is a connection
    # error of type PROTOCOL_ERROR (h2spec 3.5 #2).
    server = start(server_factory, "apps.h2_apps:app", "--http", "2")
    with RawH2(server.host, server.port) as c:
        c.send(opening)
        frames = c.drain(3)
        assert c.wait_closed(3)
    # The server's own preface (SETTINGS) may come first.
    kinds = [(f.type, f.error_code) for f in frames if f.type != h2client.SETTINGS or frames.index(f)]
    assert kinds == [(h2client.GOAWAY, h2client.PROTOCOL_ERROR)], [(f.type, f.flags) for f in frames]
    with h2_client() as c:
        assert c.get(server.url("/hello")).text == "hello"


@cormorant_only
def test_http_1_only_rejects_preface(server_factory):
    server = start(server_factory, "apps.h2_apps:app", "--http", "1")
    with RawConnection(server.host, server.port, timeout=3) as c:
        c.send(h2client.PREFACE + h2client.settings_frame())
        data = c.read_until_close()
    # Refused like any request HTTP/1.1 cannot serve (400 or 505), then closed.
    assert data == b"" or data.startswith((b"HTTP/1.1 400", b"HTTP/1.1 505")), data[:200]
    assert httpx.get(server.url("/hello")).text == "hello"


# --- connection start ---------------------------------------------------------


BAD_FIRST_FRAMES = {
    "settings-on-stream": frame(h2client.SETTINGS, 0, 1, b"\0\0\0"),
    "data-on-stream-0": frame(h2client.DATA, 0, 0, b"abc"),
    "zero-window-update": h2client.window_update_frame(0, 0),
    "even-stream-id": frame(h2client.HEADERS, h2client.END_HEADERS, 2,
                            header_block(request_headers())),
}


@pytest.mark.parametrize("case", sorted(BAD_FIRST_FRAMES))
def test_bad_frame_after_preface_gets_goaway_and_close(apps, case):
    with RawH2(apps.host, apps.port) as c:
        c.send(h2client.PREFACE + h2client.settings_frame() + BAD_FIRST_FRAMES[case])
        frames = c.drain(3)
        assert c.wait_closed(3)
    goaways = [f for f in frames if f.type == h2client.GOAWAY]
    assert goaways, [(f.type, f.flags) for f in frames]
    assert goaways[-1].error_code == h2client.PROTOCOL_ERROR
    assert not [f for f in frames if f.type == h2client.HEADERS]


def test_garbage_bytes_after_preface_close(apps):
    with RawH2(apps.host, apps.port) as c:
        c.send(h2client.PREFACE + b"\xff" * 64)
        frames = c.drain(3)
        assert c.wait_closed(3)
    assert not [f for f in frames if f.type == h2client.HEADERS]


def test_default_settings(apps):
    with RawH2(apps.host, apps.port) as c:
        settings = c.handshake()
    # SETTINGS_MAX_CONCURRENT_STREAMS
    assert settings.get(0x3) == 200, settings


@cormorant_only
def test_settings_flags_are_advertised(server_factory):
    server = start(server_factory, "apps.h2_apps:app",
                   "--http2-max-frame-size", "32768",
                   "--http2-initial-stream-window-size", "131072",
                   "--http2-initial-connection-window-size", "1048576",
                   "--http2-max-header-list-size", "20000")
    with RawH2(server.host, server.port) as c:
        settings = c.handshake()
        assert settings.get(0x5) == 32768, settings  # MAX_FRAME_SIZE
        assert settings.get(0x4) == 131072, settings  # INITIAL_WINDOW_SIZE
        assert settings.get(0x6) == 20000, settings  # MAX_HEADER_LIST_SIZE
        # The connection window is raised from 65535 with a WINDOW_UPDATE.
        update = c.wait_frame(lambda f: f.type == h2client.WINDOW_UPDATE and f.stream_id == 0)
        assert int.from_bytes(update.payload[:4], "big") & 0x7FFFFFFF == 1048576 - 65535


@cormorant_only
def test_keep_alive_pings_and_a_silent_peer_is_dropped(server_factory):
    server = start(server_factory, "apps.h2_apps:app", "--http2-keep-alive-interval", "0.3",
                   "--http2-keep-alive-timeout", "0.5")
    # A peer that answers (RawH2 acks every PING) stays connected.
    with RawH2(server.host, server.port) as c:
        c.handshake()
        c.wait_frame(lambda f: f.type == h2client.PING and not f.flags & h2client.ACK, timeout=3)
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            c.next_frame(0.05)  # reading answers the server's PINGs
        assert not c.closed
        assert not [f for f in c.frames if f.type == h2client.GOAWAY]
        c.send(frame(h2client.PING, 0, 0, b"12345678"))
        c.wait_frame(lambda f: f.type == h2client.PING and f.flags & h2client.ACK, timeout=3)
    # One that never answers a PING is closed after interval + timeout.
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(h2client.PREFACE + h2client.settings_frame()
                     + h2client.settings_frame(ack=True))
        started = time.monotonic()
        sock.settimeout(5)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            assert time.monotonic() - started < 4.5, "a dead peer was kept"
        assert time.monotonic() - started < 4.5


# --- streams limits -----------------------------------------------------------


def test_max_concurrent_streams(server_factory):
    server = start(server_factory, "apps.h2_apps:app", "--http2-max-concurrent-streams", "10")
    with RawH2(server.host, server.port) as c:
        settings = c.handshake()
        assert settings.get(0x3) == 10, settings
        c.wait_frame(lambda f: f.type == h2client.SETTINGS and f.flags & h2client.ACK)
        block = header_block(request_headers("GET", "/slow?s=1"))
        ids = [1 + 2 * i for i in range(13)]
        c.send(b"".join(frame(h2client.HEADERS, h2client.END_HEADERS | h2client.END_STREAM,
                              sid, block) for sid in ids))
        statuses, resets = {}, {}
        deadline = time.monotonic() + 8
        while len(statuses) + len(resets) < len(ids) and time.monotonic() < deadline:
            f = c.next_frame(1)
            if f is None:
                continue
            if f.type == h2client.RST_STREAM:
                resets[f.stream_id] = f.error_code
            elif f.type == h2client.HEADERS and f.decoded:
                statuses[f.stream_id] = dict(f.decoded).get(b":status")
            elif f.type == h2client.GOAWAY:
                break
    assert sorted(statuses) == ids[:10], (statuses, resets)
    assert all(s == b"200" for s in statuses.values())
    assert sorted(resets) == ids[10:], (statuses, resets)
    assert set(resets.values()) <= {h2client.REFUSED_STREAM, h2client.PROTOCOL_ERROR}


def test_streams_after_completed_ones_are_not_counted(server_factory):
    server = start(server_factory, "apps.h2_apps:app", "--http2-max-concurrent-streams", "10")
    with H2Client(server.host, server.port) as c:
        for _ in range(30):
            st = c.request("GET", "/hello")
            assert st.status == 200 and st.body == b"hello"


def test_header_list_over_limit(server_factory):
    server = start(server_factory, "apps.h2_apps:app", "--http2-max-header-list-size", "4096")
    with H2Client(server.host, server.port) as c:
        sid = c.send_headers("GET", "/hello", headers=[("x-big", "v" * 8000)])
        c.wait_for(lambda: c.stream(sid).done or c.goaway is not None or c.closed)
        st = c.stream(sid)
        assert st.status in (431, None) and st.body != b"hello"
    with H2Client(server.host, server.port) as c:
        assert c.request("GET", "/hello").body == b"hello"


# --- flow control -------------------------------------------------------------


def test_app_not_reading_stops_the_upload(server_factory):
    server = start(server_factory, "apps.h2_apps:app",
                   "--http2-initial-stream-window-size", "65535",
                   "--http2-initial-connection-window-size", "1048576")
    total = 1 << 20
    body = os.urandom(total)
    with H2Client(server.host, server.port, timeout=15) as c:
        window = c.conn.remote_settings.initial_window_size
        assert window == 65535
        sid = c.send_headers("POST", "/sleep-then-read?s=2", end_stream=False)
        t0 = time.monotonic()
        sent = 0
        # The app sleeps for 2 s without calling receive(): push for ~1.2 s.
        while time.monotonic() - t0 < 1.2:
            n = min(c.sendable(sid), total - sent)
            if n:
                c.conn.send_data(sid, body[sent:sent + n])
                c.flush()
                sent += n
            c.pump(0.05)
        assert c.sendable(sid) == 0
        # The initial window, plus at most one read-ahead chunk.
        assert window <= sent <= window + 65536, sent
        updates = [u for u in c.window_updates if u[1] == sid]
        assert sum(d for _, _, d in updates) <= 65536, updates
        # The app wakes up and reads: the rest flows.
        c.send_data(sid, body[sent:], end_stream=True)
        st = c.response(sid, timeout=15)
    assert st.status == 200
    assert json.loads(st.body)["length"] == total


# --- disconnects --------------------------------------------------------------


def test_rst_stream_mid_body_gives_disconnect(apps):
    ident = uuid.uuid4().hex
    with H2Client(apps.host, apps.port) as c:
        sid = c.send_headers("POST", f"/watch-upload?id={ident}", end_stream=False)
        c.send_data(sid, b"x" * 20000)
        wait_file(apps.results_dir / f"{ident}.waiting")
        time.sleep(0.05)
        reset_at = time.monotonic()
        c.reset(sid, h2client.CANCEL)
        result = wait_file(apps.results_dir / f"{ident}.json")
        assert result["type"] == "http.disconnect"
        assert result["t"] - reset_at < DISCONNECT_BUDGET, result["t"] - reset_at
        # The connection is still usable.
        assert c.request("GET", "/hello").body == b"hello"


@pytest.mark.parametrize("started", [False, True])
def test_rst_stream_while_app_waits_gives_disconnect(disconnect_server, started):
    server = disconnect_server
    ident = uuid.uuid4().hex
    with H2Client(server.host, server.port) as c:
        sid = c.send_headers("GET", f"/wait?id={ident}" + ("&start=1" if started else ""))
        if started:
            c.wait_for(lambda: b"waiting" in c.stream(sid).body)
        wait_file(server.results_dir / f"{ident}.waiting")
        time.sleep(0.05)
        reset_at = time.monotonic()
        c.reset(sid, h2client.CANCEL)
        result = wait_file(server.results_dir / f"{ident}.json")
    assert result["type"] == "http.disconnect"
    assert result["t"] - reset_at < DISCONNECT_BUDGET, result["t"] - reset_at


def test_connection_loss_gives_disconnect_on_every_stream(disconnect_server):
    server = disconnect_server
    idents = [uuid.uuid4().hex for _ in range(3)]
    c = H2Client(server.host, server.port)
    for ident in idents:
        c.send_headers("GET", f"/wait?id={ident}&start=1")
    for ident in idents:
        wait_file(server.results_dir / f"{ident}.waiting")
    time.sleep(0.05)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    closed_at = time.monotonic()
    c.close()
    for ident in idents:
        result = wait_file(server.results_dir / f"{ident}.json")
        assert result["type"] == "http.disconnect"
        assert result["t"] - closed_at < DISCONNECT_BUDGET, result["t"] - closed_at


# --- malformed requests -------------------------------------------------------


BASE = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/hello"),
        (b":authority", b"localhost")]

# Stream errors the server (hyper's h2) detects after decoding the block.
STREAM_LEVEL = {
    "missing-path": [h for h in BASE if h[0] != b":path"],
    "missing-method": [h for h in BASE if h[0] != b":method"],
    "pseudo-after-regular": BASE[:3] + [(b"x-a", b"1"), (b":authority", b"localhost")],
    "repeated-pseudo": BASE + [(b":path", b"/again")],
    "connection-header": BASE + [(b"connection", b"keep-alive")],
    "transfer-encoding": BASE + [(b"transfer-encoding", b"chunked")],
    "te-not-trailers": BASE + [(b"te", b"gzip")],
}

# hyper's HPACK decoder rejects these while decoding: hyper answers with a
# connection error (GOAWAY PROTOCOL_ERROR); a stream error is also correct.
DECODE_LEVEL = {
    "unknown-pseudo": BASE + [(b":foo", b"bar")],
    "uppercase-name": BASE + [(b"X-Upper", b"1")],
}


@pytest.mark.parametrize("case", sorted(STREAM_LEVEL))
def test_malformed_headers_reset_the_stream(apps, case):
    with H2Client(apps.host, apps.port, validate=False) as c:
        sid = c.send_headers(raw=STREAM_LEVEL[case])
        c.wait_for(lambda: c.stream(sid).done or c.goaway is not None)
        assert c.goaway is None, c.goaway
        assert c.stream(sid).reset == h2client.PROTOCOL_ERROR, c.stream(sid)
        assert c.stream(sid).status is None
        # The connection keeps working.
        assert c.request("GET", "/hello").body == b"hello"


@pytest.mark.parametrize("case", sorted(DECODE_LEVEL))
def test_undecodable_headers_are_rejected(apps, case):
    with H2Client(apps.host, apps.port, validate=False) as c:
        sid = c.send_headers(raw=DECODE_LEVEL[case])
        try:
            c.wait_for(lambda: c.stream(sid).done or c.goaway is not None)
        except AssertionError:
            pass  # closed
        st = c.stream(sid)
        assert st.status is None
        if c.goaway is not None:
            assert c.goaway.error_code == h2client.PROTOCOL_ERROR
        else:
            assert st.reset == h2client.PROTOCOL_ERROR
            assert c.request("GET", "/hello").body == b"hello"
    with H2Client(apps.host, apps.port) as c:
        assert c.request("GET", "/hello").body == b"hello"


# --- abuse --------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--http2-max-header-list-size", "65536")],
                         ids=["default", "64k-limit"])
def test_continuation_flood_is_bounded(server_factory, flags):
    server = start(server_factory, "apps.h2_apps:app", *flags)
    with H2Client(server.host, server.port) as c:
        assert c.request("GET", "/hello").body == b"hello"
    rss_before = process_tree_rss_mb(server.pid)
    chunk = header_block([(b"x-flood", b"a" * 4000)] * 4)  # ~16 KB of literals
    chunk = chunk[:16384]
    sent = 0
    errors = []
    with RawH2(server.host, server.port) as c:
        c.handshake()
        c.send(frame(h2client.HEADERS, h2client.END_STREAM, 1,
                     header_block(request_headers("GET", "/hello"))))
        burst = frame(h2client.CONTINUATION, 0, 1, chunk) * 16  # 256 KB
        while sent < (64 << 20):
            if not c.send(burst):
                break
            sent += len(burst)
            while True:
                f = c.next_frame(0.001)
                if f is None:
                    break
                if f.type in (h2client.GOAWAY, h2client.RST_STREAM) or (
                        f.type == h2client.HEADERS and f.stream_id == 1):
                    errors.append(f)
            if errors or c.closed:
                break
        errors += [f for f in c.drain(2)
                   if f.type in (h2client.GOAWAY, h2client.RST_STREAM, h2client.HEADERS)]
        assert errors or c.closed, f"server accepted {sent} bytes of CONTINUATION"
        for f in errors:
            assert f.type != h2client.HEADERS or dict(f.decoded or []).get(b":status") == b"431"
        assert c.wait_closed(5)
    # What the server accepted before giving up, plus the sockets' buffers.
    assert sent < (8 << 20) or (REFERENCE and not flags), sent
    assert process_tree_rss_mb(server.pid) - rss_before < 64
    with H2Client(server.host, server.port) as c:
        assert c.request("GET", "/hello").body == b"hello"


def test_rapid_reset_keeps_server_responsive(server_factory):
    server = start(server_factory, "apps.h2_apps:app")
    block = header_block(request_headers("GET", "/hello"))
    stop = threading.Event()
    outcome = {"streams": 0, "goaway": None, "closed": False}

    def flood():
        with RawH2(server.host, server.port) as c:
            c.handshake()
            sid = 1
            while sid < 2 * 20000 and not stop.is_set():
                batch = []
                for _ in range(200):
                    batch.append(frame(h2client.HEADERS,
                                       h2client.END_HEADERS | h2client.END_STREAM, sid, block))
                    batch.append(h2client.rst_frame(sid, h2client.CANCEL))
                    sid += 2
                if not c.send(b"".join(batch)):
                    break
                outcome["streams"] = sid // 2
                while True:
                    f = c.next_frame(0.0005)
                    if f is None:
                        break
                    if f.type == h2client.GOAWAY:
                        outcome["goaway"] = f.error_code
                if c.closed or outcome["goaway"] is not None:
                    break
            outcome["closed"] = c.closed or c.wait_closed(2)

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        time.sleep(0.3)
        for _ in range(3):
            t0 = time.monotonic()
            with H2Client(server.host, server.port, timeout=5) as c:
                assert c.request("GET", "/hello").body == b"hello"
            assert time.monotonic() - t0 < 2.0
            r = httpx.get(server.url("/hello"), timeout=5) if not REFERENCE else None
            assert r is None or r.text == "hello"
    finally:
        stop.set()
        t.join(30)
    assert not t.is_alive()
    assert outcome["streams"] > 0
    if outcome["goaway"] is not None:
        assert outcome["goaway"] in (h2client.ENHANCE_YOUR_CALM, h2client.PROTOCOL_ERROR,
                                     h2client.NO_ERROR)
    with H2Client(server.host, server.port) as c:
        assert c.request("GET", "/hello").body == b"hello"


# --- response extensions ------------------------------------------------------


@cormorant_only
def test_trailers_on_http2(apps):
    with H2Client(apps.host, apps.port) as c:
        sid = c.send_headers("GET", "/trailers", headers=[("te", "trailers")])
        st = c.response(sid)
        kinds = [type(e).__name__ for e in c.events if getattr(e, "stream_id", None) == sid]
    assert st.status == 200
    assert st.body == b"hello trailers"
    assert st.trailers is not None, kinds
    assert (b"x-checksum", b"abc123") in st.trailers
    assert (b"grpc-status", b"0") in st.trailers
    # The trailers end the stream (HEADERS with END_STREAM).
    assert kinds.index("TrailersReceived") < kinds.index("StreamEnded")


@cormorant_only
def test_trailers_on_http1_with_te(apps):
    with RawConnection(apps.host, apps.port) as c:
        c.send(request_bytes("GET", "/trailers", headers=[("TE", "trailers")]))
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"transfer-encoding: chunked" in head.lower()
        body = c.read_until(b"\r\n0\r\n")
        trailer_section = c.read_until(b"\r\n\r\n")
    assert b"hello " in body and b"trailers" in body
    lines = trailer_section[:-4].lower().split(b"\r\n")
    assert b"x-checksum: abc123" in lines
    assert b"grpc-status: 0" in lines


@cormorant_only
def test_no_trailers_on_http1_without_te(apps):
    r = fetch(apps.host, apps.port, request_bytes("GET", "/trailers"))
    assert r.status == 200
    assert r.body == b"no trailers extension"


@cormorant_only
def test_early_hints_on_http1(apps):
    with RawConnection(apps.host, apps.port) as c:
        c.send(request_bytes("GET", "/early-hint"))
        first = c.read_response()
        second = c.read_response()
    assert first.status == 103
    assert first.header("link") == "</style.css>; rel=preload; as=style"
    assert second.status == 200
    assert second.body == b"hinted"


@cormorant_only
def test_early_hints_after_the_start_on_http1(apps):
    # asgiref's extension allows hints between http.response.start and the
    # final body: while the head is held back, each becomes a 103 before it.
    with RawConnection(apps.host, apps.port) as c:
        c.send(request_bytes("GET", "/hint-after-start"))
        responses = [c.read_response() for _ in range(3)]
    assert [r.status for r in responses] == [103, 103, 200]
    assert responses[0].header("link") == "</a.css>; rel=preload; as=style"
    assert responses[1].header("link") == "</b.js>; rel=preload; as=script"
    assert responses[2].body == b"hinted"


@cormorant_only
def test_early_hint_after_the_head_left_is_dropped(apps):
    # Once the head is on the wire no 1xx may follow it: the hint is
    # dropped and the response completes.
    r = fetch(apps.host, apps.port, request_bytes("GET", "/hint-mid-body"))
    assert r.status == 200
    assert r.body == b"ab"
    assert "'http.response.early_hint'" not in apps.output()


def test_early_hints_after_the_start_on_http2_are_ignored(apps):
    with H2Client(apps.host, apps.port) as c:
        st = c.request("GET", "/hint-after-start")
        mid = c.request("GET", "/hint-mid-body")
    assert st.informational == []
    assert st.status == 200 and st.body == b"hinted"
    assert mid.status == 200 and mid.body == b"ab"


def test_no_early_hints_on_http2(apps):
    with H2Client(apps.host, apps.port) as c:
        st = c.request("GET", "/early-hint")
    assert st.informational == []
    assert st.status == 200 and st.body == b"hinted"


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "payload.bin"
    data = os.urandom(1 << 20)
    path.write_bytes(data)
    return path, data


@cormorant_only
def test_pathsend_http1(apps, big_file):
    path, data = big_file
    r = httpx.get(apps.url("/pathsend"), params={"path": str(path)}, timeout=10)
    assert r.status_code == 200
    assert r.content == data


@cormorant_only
def test_pathsend_http2(apps, big_file):
    path, data = big_file
    with h2_client() as c:
        r = c.get(apps.url("/pathsend"), params={"path": str(path)})
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200
    assert r.content == data


# --- graceful shutdown --------------------------------------------------------


def test_sigterm_sends_goaway_and_finishes_open_streams(server_factory):
    # Raw frames: the h2 state machine stops processing frames after a GOAWAY.
    server = start(server_factory, "apps.h2_apps:app")
    with RawH2(server.host, server.port, timeout=10) as c:
        c.handshake()
        c.send(frame(h2client.HEADERS, h2client.END_HEADERS | h2client.END_STREAM, 1,
                     header_block(request_headers("GET", "/slow?s=1.5"))))
        time.sleep(0.3)
        server.signal(signal.SIGTERM)
        frames = []
        deadline = time.monotonic() + 10
        while not c.closed and time.monotonic() < deadline:
            f = c.next_frame(0.5)
            if f is not None:
                frames.append(f)
    assert c.closed
    goaways = [f for f in frames if f.type == h2client.GOAWAY]
    assert goaways, [(f.type, f.stream_id) for f in frames]
    assert all(g.error_code == h2client.NO_ERROR for g in goaways)
    assert goaways[-1].last_stream_id >= 1
    # The first GOAWAY comes before the response: the stream stays open.
    heads = [f for f in frames if f.type == h2client.HEADERS and f.stream_id == 1]
    assert heads and dict(heads[0].decoded).get(b":status") == b"200"
    assert frames.index(goaways[0]) < frames.index(heads[0])
    data = [f for f in frames if f.type == h2client.DATA and f.stream_id == 1]
    assert b"".join(f.payload for f in data) == b"done"
    assert (data[-1].flags & h2client.END_STREAM) or (heads[-1].flags & h2client.END_STREAM)
    assert server.wait_exit(10) == 0
