"""WebSocket end to end, with the `websockets` client over real sockets.

Each test runs on both drivers of cleartext HTTP/1.1: the readiness driver,
which serves sessions itself, and the async one (CORMORANT_ASYNC_HTTP1=1),
which serves them over TLS.
"""

import base64
import json
import os
import socket
import struct
import threading
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

DRIVERS = {"readiness": {}, "async": {"CORMORANT_ASYNC_HTTP1": "1"}}


@pytest.fixture(scope="module", params=sorted(DRIVERS))
def server(module_server_factory, request):
    return module_server_factory.start("apps.ws:app", "--ws-max-size", "1048576",
                                       env=DRIVERS[request.param])


@pytest.fixture(params=sorted(DRIVERS))
def driver_env(request):
    return DRIVERS[request.param]


def ws_url(server, path):
    return f"ws://{server.host}:{server.port}{path}"


def wait_result(server, ident, timeout=5.0):
    path = server.results_dir / f"{ident}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"no result {ident}")


def test_echo_text_and_bytes(server):
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv() == b"\x00\x01binary"
        ws.send("ünïcödé ✓")
        assert ws.recv() == "ünïcödé ✓"


def test_many_messages_in_order(server):
    with connect(ws_url(server, "/echo")) as ws:
        for i in range(200):
            ws.send(f"m{i}")
        assert [ws.recv() for _ in range(200)] == [f"m{i}" for i in range(200)]


def test_large_message_round_trip(server):
    payload = os.urandom(900 * 1024)
    with connect(ws_url(server, "/echo"), max_size=2**21) as ws:
        ws.send(payload)
        assert ws.recv() == payload


def test_message_over_max_size_closes_1009(server):
    with connect(ws_url(server, "/echo"), max_size=2**22) as ws:
        ws.send(b"x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_scope(server):
    with connect(ws_url(server, "/scope?a=1&b=%20"), subprotocols=["one", "two"],
                 additional_headers={"X-Custom": "v"}) as ws:
        scope = json.loads(ws.recv())
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["subprotocols"] == ["one", "two"]
    assert "method" not in scope
    assert "websocket.http.response" in scope["extensions"]
    assert ["x-custom", "v"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", server.port]


def test_subprotocol_and_accept_headers(server):
    with connect(ws_url(server, "/subprotocol"), subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b"
        assert ws.response.headers["x-extra"] == "yes"


def test_close_before_accept_is_403(server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/deny"))
    assert info.value.response.status_code == 403


def test_denial_response_extension(server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/deny-custom"))
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["x-why"] == "token"
    assert response.body == b"no entry"
    assert "upgrade" not in {k.lower() for k in response.headers.keys()}


def test_server_close_code_and_reason(server):
    with connect(ws_url(server, "/server-close")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 4001
    assert info.value.rcvd.reason == "bye"


def test_client_close_reaches_app_and_send_after_raises_oserror(server):
    with connect(ws_url(server, "/record?id=closed")) as ws:
        ws.close(code=4002, reason="client done")
    result = wait_result(server, "closed")
    assert result["message"] == {"type": "websocket.disconnect", "code": 4002,
                                 "reason": "client done"}
    assert result["oserror"] is True


def test_dropped_connection_reports_1006(server):
    with connect(ws_url(server, "/record?id=dropped")) as ws:
        ws.socket.shutdown(socket.SHUT_RDWR)
        ws.socket.close()
    result = wait_result(server, "dropped")
    assert result["message"]["type"] == "websocket.disconnect"
    assert result["message"]["code"] == 1006


def test_app_exception_closes_1011(server):
    with connect(ws_url(server, "/raise")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 1011
    assert "Exception in ASGI application" in server.wait_for_output("boom in websocket app")


def test_invalid_send_raises_in_app(server):
    with connect(ws_url(server, "/bad-send")) as ws:
        text = ws.recv()
    assert "exactly one of 'text' and 'bytes'" in text


def test_permessage_deflate_negotiated_by_default(server):
    with connect(ws_url(server, "/echo")) as ws:
        ext = ws.response.headers.get("sec-websocket-extensions", "")
        assert ext.startswith("permessage-deflate")
        big = "compressible " * 10000
        ws.send(big)
        assert ws.recv() == big


def test_many_compressed_messages_keep_flowing(server):
    # Compressed frames are smaller than the messages: send-side accounting
    # must count messages, or send() ends up waiting forever (a bug once
    # hit after ~1000 messages of 256 bytes).
    msg = "0123456789abcdef" * 16
    with connect(ws_url(server, "/echo")) as ws:
        assert ws.response.headers.get("sec-websocket-extensions")
        for _ in range(3000):
            ws.send(msg)
            assert ws.recv(timeout=5) == msg


def test_plain_http_on_same_app(server):
    assert httpx.get(f"http://{server.host}:{server.port}/").text == "plain http"


def _handshake(port, headers):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    lines = ["GET /echo HTTP/1.1", "Host: 127.0.0.1"] + headers
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return s, data


def test_missing_key_is_400(server):
    s, data = _handshake(server.port, ["Upgrade: websocket", "Connection: Upgrade",
                                       "Sec-WebSocket-Version: 13"])
    s.close()
    assert data.startswith(b"HTTP/1.1 400")


def test_wrong_version_is_426(server):
    key = base64.b64encode(os.urandom(16)).decode()
    s, data = _handshake(server.port, ["Upgrade: websocket", "Connection: Upgrade",
                                       "Sec-WebSocket-Version: 8", f"Sec-WebSocket-Key: {key}"])
    s.close()
    assert data.startswith(b"HTTP/1.1 426")
    assert b"sec-websocket-version: 13" in data.lower()


def test_unmasked_client_frame_closes_1002(server):
    key = base64.b64encode(os.urandom(16)).decode()
    s, data = _handshake(server.port, ["Upgrade: websocket", "Connection: Upgrade",
                                       "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {key}"])
    assert data.startswith(b"HTTP/1.1 101")
    s.sendall(b"\x81\x02hi")  # FIN text "hi", not masked
    frame = s.recv(4096)
    s.close()
    assert frame[0] == 0x88  # close
    assert struct.unpack("!H", frame[2:4])[0] == 1002


def test_ws_none_serves_upgrade_as_http(server_factory):
    server = server_factory.start("apps.ws:app", "--ws", "none")
    key = base64.b64encode(os.urandom(16)).decode()
    s, data = _handshake(server.port, ["Upgrade: websocket", "Connection: Upgrade",
                                       "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {key}"])
    s.close()
    assert data.startswith(b"HTTP/1.1 200")


def test_no_deflate_when_disabled(server_factory):
    server = server_factory.start("apps.ws:app", "--ws-per-message-deflate", "false")
    with connect(ws_url(server, "/echo")) as ws:
        assert "sec-websocket-extensions" not in ws.response.headers
        ws.send("x")
        assert ws.recv() == "x"


def test_dead_peer_is_closed_after_ping_timeout(server_factory, driver_env):
    server = server_factory.start("apps.ws:app", "--ws-ping-interval", "0.2",
                                  "--ws-ping-timeout", "0.3", env=driver_env)
    key = base64.b64encode(os.urandom(16)).decode()
    s, data = _handshake(server.port, ["Upgrade: websocket", "Connection: Upgrade",
                                       "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {key}"])
    assert data.startswith(b"HTTP/1.1 101")
    # Never answer the pings: the server must drop us.
    started = time.monotonic()
    s.settimeout(5)
    received = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            received += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    elapsed = time.monotonic() - started
    s.close()
    assert received.startswith(b"\x89")  # at least one ping arrived first
    # Then core's close 1011 (what the websockets library sends on a ping
    # timeout), and the connection ends.
    assert received.endswith(b"\x88\x02\x03\xf3"), received
    assert elapsed < 3, elapsed


def test_live_peer_survives_pings(server_factory, driver_env):
    server = server_factory.start("apps.ws:app", "--ws-ping-interval", "0.1",
                                  "--ws-ping-timeout", "0.3", env=driver_env)
    with connect(ws_url(server, "/echo")) as ws:
        time.sleep(1.0)  # the client library answers the pings
        ws.send("still here")
        assert ws.recv() == "still here"


def test_starlette_websocket_endpoint(server_factory):
    server = server_factory.start("apps.starlette_app:app")
    with connect(ws_url(server, "/ws")) as ws:
        ws.send("ping")
        assert ws.recv() == "echo: ping"


def test_fastapi_websocket_route(server_factory):
    server = server_factory.start("apps.fastapi_app:app")
    with connect(ws_url(server, "/ws/items")) as ws:
        ws.send(json.dumps({"n": 2}))
        assert json.loads(ws.recv()) == {"n": 2, "double": 4}


def _rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _masked_binary(payload):
    mask = b"\x01\x02\x03\x04"
    n = len(payload)
    head = b"\x82" + (bytes([0x80 | 127]) + n.to_bytes(8, "big") if n > 65535
                       else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:4])) * (n // 4)
    return head + mask + body


def test_app_that_does_not_read_stops_the_peer_not_memory(server):
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection((server.host, server.port), timeout=5)
    s.sendall(("GET /no-reader HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: {key}\r\n\r\n").encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 101")
    frame = _masked_binary(b"abcd" * 16384)  # 64 KiB
    s.settimeout(1.5)
    sent = 0
    try:
        while sent < 400 * len(frame):  # 25 MiB if nothing pushed back
            s.sendall(frame)
            sent += len(frame)
    except socket.timeout:
        pass
    rss = _rss_mb(server.pid)
    s.close()
    # --ws-max-queue (32) messages plus socket buffers, not everything sent.
    assert sent < 20 * 1024 * 1024, sent
    assert rss < 150, rss


def test_a_cancelled_receive_does_not_take_the_next_message(server):
    # The app's receive() times out; the message comes while the app does
    # something else, and its next receive() gets it.
    with connect(ws_url(server, "/cancelled-receive")) as ws:
        time.sleep(0.2)
        ws.send("kept")
        assert ws.recv(timeout=3) == "kept"


def test_a_task_cancelled_in_receive_gets_the_next_message(server):
    # The app's own task is cancelled while it awaits receive(); it goes
    # on, and the message that comes meanwhile reaches its next receive().
    with connect(ws_url(server, "/cancelled-task")) as ws:
        time.sleep(0.2)
        ws.send("kept")
        assert ws.recv(timeout=3) == "kept"


def test_reading_resumes_when_a_late_app_takes_its_queue(server):
    # 300 messages of 16 KiB against --ws-max-queue 32: the connection
    # stops reading until the app takes them, and the app only receives.
    with connect(ws_url(server, "/late-reader?n=300")) as ws:
        payload = "x" * 16384
        sender = threading.Thread(target=lambda: [ws.send(payload) for _ in range(300)],
                                  daemon=True)
        sender.start()
        assert ws.recv(timeout=3) == "300"
        sender.join(timeout=5)


def test_peer_that_does_not_read_pauses_send(server):
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection((server.host, server.port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(("GET /flood?id=flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: {key}\r\n\r\n").encode())
    time.sleep(1.5)  # never read: the server's send() must block, not buffer
    first = wait_result(server, "flood")["sent"]
    time.sleep(0.5)
    second = wait_result(server, "flood")["sent"]
    rss = _rss_mb(server.pid)
    s.close()
    assert second == first, (first, second)  # send() is waiting
    assert first * 65536 < 32 * 1024 * 1024, first
    assert rss < 150, rss
