"""WebSocket over HTTP/2 (RFC 8441, extended CONNECT), over real sockets.

The client is the `h2` package for the HTTP/2 side and wsproto's client
`FrameProtocol` for the frames, neither of them the server's code. The
session behind the stream is the same core WebSocket machine as after an
HTTP/1.1 upgrade, so the app (tests/apps/ws.py) and the expectations are
those of test_websocket.py; here they are checked through the tunnel. The
extended CONNECT rules of RFC 8441 §4 and §5 are checked h2spec-style, with
the frames a broken client would send.
"""

import json
import signal
import ssl
import time

import pytest
from test_websocket import wait_result

import h2client
from h2client import H2Client, H2WebSocket, RawH2, frame, header_block

SETTINGS = h2client.SETTINGS_ENABLE_CONNECT_PROTOCOL


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory.start("apps.ws:app", "--ws-max-size", "1048576",
                                       "--access-log")


def open_ws(server, path="/echo", **kw):
    client = H2Client(server.host, server.port)
    ws = H2WebSocket(client, path, **kw)
    return client, ws


def test_the_setting_is_advertised_only_with_websockets_on(server, server_factory):
    with RawH2(server.host, server.port) as c:
        assert c.handshake().get(SETTINGS) == 1
    off = server_factory.start("apps.ws:app", "--ws", "none")
    with RawH2(off.host, off.port) as c:
        assert c.handshake().get(SETTINGS) in (None, 0)


def test_echo_text_and_bytes(server):
    client, ws = open_ws(server)
    with client:
        st = ws.answer()
        assert st.status == 200
        # RFC 8441 §5: no accept key, and none of HTTP/1.1's upgrade fields.
        names = {n for n, _ in st.headers}
        assert not names & {b"sec-websocket-accept", b"upgrade", b"connection"}
        for message in ("hello", b"\x00\x01binary", "ünïcödé ✓", b"x" * 200_000):
            ws.send(message)
            assert ws.receive().payload == message


def test_scope_is_the_websocket_scope_with_http_version_2(server):
    client, ws = open_ws(server, "/scope?x=1", protocols=["chat"])
    with client:
        assert ws.answer().status == 200
        scope = json.loads(ws.receive().payload)
    assert scope["type"] == "websocket"
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope"
    assert scope["query_string"] == "x=1"
    assert scope["subprotocols"] == ["chat"]
    assert ["host", "localhost"] in scope["headers"]


def test_subprotocol_and_extra_headers_in_the_200(server):
    client, ws = open_ws(server, "/subprotocol", protocols=["chat", "v2.bin"])
    with client:
        st = ws.answer()
        assert st.status == 200
        assert st.header(b"sec-websocket-protocol") == b"v2.bin"
        assert st.header(b"x-extra") == b"yes"


def test_close_before_accept_is_403_and_a_denial_is_the_apps_response(server):
    client, ws = open_ws(server, "/deny")
    with client:
        st = ws.client.response(ws.sid)
        assert st.status == 403 and st.ended
        ws = H2WebSocket(client, "/deny-custom")
        st = client.response(ws.sid)
        assert st.status == 401
        assert st.header(b"x-why") == b"token"
        assert st.body == b"no entry"
        # The connection goes on serving.
        ws = H2WebSocket(client, "/echo")
        assert ws.answer().status == 200


def test_server_close_code_and_reason_then_the_stream_ends(server):
    client, ws = open_ws(server, "/server-close")
    with client:
        ws.answer()
        close = ws.receive()
        assert close.close_code == 4001 and close.payload[1] == "bye"
        ws.close(4001, "bye")
        client.wait_for(lambda: ws.result.done)
        assert ws.result.ended


def test_client_close_and_reset_reach_the_app_as_disconnect(server):
    client, ws = open_ws(server, "/record?id=h2close")
    with client:
        ws.answer()
        ws.close(1000, "done")
        assert ws.receive().close_code == 1000
    result = wait_result(server, "h2close")
    assert result["message"] == {"type": "websocket.disconnect", "code": 1000, "reason": "done"}
    assert result["send"] != "no error"
    client, ws = open_ws(server, "/record?id=h2reset")
    with client:
        ws.answer()
        client.reset(ws.sid)
        result = wait_result(server, "h2reset")
    assert result["message"]["type"] == "websocket.disconnect"
    assert result["message"]["code"] == 1006


def test_a_reset_before_the_app_answers_reaches_it_as_disconnect(server):
    client, ws = open_ws(server, "/cancelled-receive")
    with client:
        client.reset(ws.sid)
        # The connection still serves WebSockets.
        ws = H2WebSocket(client, "/echo")
        ws.answer()
        ws.send("still here")
        assert ws.receive().payload == "still here"


def test_ping_is_answered_and_the_size_limit_closes_1009(server):
    client, ws = open_ws(server)
    with client:
        ws.answer()
        ws.ping(b"are you there")
        pong = ws.receive()
        assert (pong.opcode, pong.payload) == (10, b"are you there")
        ws.send(b"x" * (1048576 + 1))
        assert ws.receive().close_code == 1009


def test_core_pings_through_the_tunnel_and_drops_a_peer_that_never_answers(server_factory):
    server = server_factory.start("apps.ws:app", "--ws-ping-interval", "0.2",
                                  "--ws-ping-timeout", "0.3")
    client, ws = open_ws(server)
    with client:
        ws.answer()
        started = time.monotonic()
        assert ws.receive().opcode == 9  # core's ping; never answered
        assert ws.receive().close_code == 1011
        client.wait_for(lambda: ws.result.done)
    assert time.monotonic() - started < 3


def test_an_answered_ping_keeps_the_tunnel_open(server_factory):
    server = server_factory.start("apps.ws:app", "--ws-ping-interval", "0.1",
                                  "--ws-ping-timeout", "0.3")
    client, ws = open_ws(server)
    with client:
        ws.answer()
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            ping = ws.receive()
            assert ping.opcode == 9, ping
            ws.client.send_data(ws.sid, bytes(ws.proto.pong(ping.payload)))
        ws.send("still open")
        while (m := ws.receive()).opcode == 9:
            pass
        assert m.payload == "still open"


def test_a_protocol_error_in_the_frames_closes_1002(server):
    client, ws = open_ws(server)
    with client:
        ws.answer()
        ws.send_raw(b"\x81\x02hi")  # unmasked: a client must mask (RFC 6455 §5.1)
        assert ws.receive().close_code == 1002


def test_permessage_deflate_negotiated_and_used(server):
    client, ws = open_ws(server, deflate=True)
    with client:
        st = ws.answer()
        assert st.header(b"sec-websocket-extensions").startswith(b"permessage-deflate")
        text = "compress me " * 5000
        ws.send(text)
        assert ws.receive().payload == text
        sent_on_wire = len(ws.result.body)
        assert sent_on_wire < len(text) // 10, sent_on_wire


def test_app_exception_closes_1011(server):
    client, ws = open_ws(server, "/raise")
    with client:
        ws.answer()
        assert ws.receive().close_code == 1011


def test_many_websockets_and_requests_share_one_connection(server):
    with H2Client(server.host, server.port) as client:
        sockets = [H2WebSocket(client, "/echo") for _ in range(20)]
        for ws in sockets:
            assert ws.answer().status == 200
        plain = client.request("GET", "/")
        assert plain.status == 200 and plain.body == b"plain http"
        for i, ws in enumerate(sockets):
            ws.send(f"m{i}")
        for i, ws in enumerate(sockets):
            assert ws.receive().payload == f"m{i}"


def test_websockets_count_against_the_stream_limit(server_factory):
    # Each WebSocket holds a stream for its life: past
    # --http2-max-concurrent-streams the next one is refused, and one that
    # ends gives its stream back. Frames by hand: the `h2` package will not
    # exceed the limit itself.
    server = server_factory.start("apps.ws:app", "--http2-max-concurrent-streams", "3")
    block = header_block(connect_fields())

    def opened(c, sid):
        c.send(frame(h2client.HEADERS, h2client.END_HEADERS, sid, block))
        f = c.wait_frame(lambda f: f.stream_id == sid and f.type in (
            h2client.HEADERS, h2client.RST_STREAM))
        return f.type == h2client.HEADERS and (b":status", b"200") in f.decoded

    with RawH2(server.host, server.port) as c:
        assert c.handshake().get(0x3) == 3
        assert all(opened(c, sid) for sid in (1, 3, 5))
        c.send(frame(h2client.HEADERS, h2client.END_HEADERS, 7, block))
        refused = c.wait_frame(lambda f: f.stream_id == 7)
        assert (refused.type, refused.error_code) == (h2client.RST_STREAM,
                                                      h2client.REFUSED_STREAM)
        c.send(h2client.rst_frame(1))
        time.sleep(0.2)
        assert opened(c, 9)


def test_the_session_is_logged_and_counted_like_an_upgrade(server):
    client, ws = open_ws(server, "/echo?logged=h2")
    with client:
        ws.answer()
        ws.send("x")
        ws.receive()
        ws.close()
        ws.receive()
    line = server.wait_for_output("/echo?logged=h2")
    assert '"CONNECT /echo?logged=h2 HTTP/2" 200' in line, line


def test_an_app_that_does_not_read_stops_the_peer_by_flow_control(server):
    client, ws = open_ws(server, "/no-reader")
    with client:
        ws.answer()
        chunk = b"z" * 65536
        pending, sent = bytearray(), 0
        deadline = time.monotonic() + 5
        stalled_since = None
        # Frames go out as the windows allow; the stream window stays shut
        # once the server stops reading for the app.
        while time.monotonic() < deadline:
            if not pending:
                pending += ws.proto.send_data(chunk)
            n = min(len(pending), client.sendable(ws.sid))
            if n:
                client.conn.send_data(ws.sid, bytes(pending[:n]))
                client.flush()
                del pending[:n]
                sent += n
                stalled_since = None
            elif stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > 0.5:
                break
            client.pump(0.01)
        assert not ws.result.done
        assert client.sendable(ws.sid) == 0, sent
        assert sent < 16 * 1024 * 1024, sent


def test_stop_closes_open_websockets_with_1001_and_waits_for_the_handshake(server_factory):
    # Frames by hand: the `h2` package takes a GOAWAY as the connection's
    # end, while the streams it lets finish go on (RFC 9113 §6.8).
    server = server_factory.start("apps.ws:app", "--timeout-graceful-shutdown", "5")
    with RawH2(server.host, server.port) as c:
        c.handshake()
        c.send(frame(h2client.HEADERS, h2client.END_HEADERS, 1, header_block(connect_fields())))
        head = c.wait_frame(lambda f: f.type == h2client.HEADERS and f.stream_id == 1)
        assert (b":status", b"200") in head.decoded
        server.signal(signal.SIGTERM)
        close = c.wait_frame(lambda f: f.type == h2client.DATA and f.stream_id == 1)
        assert close.payload[0] == 0x88
        assert int.from_bytes(close.payload[2:4], "big") == 1001
        assert any(f.type == h2client.GOAWAY for f in c.frames) or c.wait_frame(
            lambda f: f.type == h2client.GOAWAY)
        time.sleep(0.3)
        assert server.proc.poll() is None, "the session waits for the client's close"
        # The client's close, masked (key 0): the handshake ends, then the server.
        c.send(frame(h2client.DATA, 0, 1, b"\x88\x82\0\0\0\0\x03\xe9"))
        c.wait_frame(lambda f: f.stream_id == 1 and (
            f.type == h2client.RST_STREAM
            or (f.type == h2client.DATA and f.flags & h2client.END_STREAM)))
        assert server.wait_exit() == 0


def test_over_tls_the_scheme_is_wss(server_factory, tmp_path):
    from certs import make_pki

    pki = make_pki(tmp_path)
    server = server_factory.start("apps.ws:app", "--ssl-certfile", str(pki.server_cert),
                                  "--ssl-keyfile", str(pki.server_key))
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.set_alpn_protocols(["h2"])
    import socket

    raw = socket.create_connection((server.host, server.port), timeout=5)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    assert sock.selected_alpn_protocol() == "h2"
    with H2Client(server.host, server.port, sock=sock) as client:
        ws = H2WebSocket(client, "/scope")
        assert ws.answer().status == 200
        scope = json.loads(ws.receive().payload)
    assert scope["scheme"] == "wss" and scope["http_version"] == "2"


# --- the extended CONNECT rules, h2spec-style ---------------------------------


def connect_fields(**overrides):
    fields = {":method": "CONNECT", ":protocol": "websocket", ":scheme": "http",
              ":path": "/echo", ":authority": "localhost", "sec-websocket-version": "13"}
    fields.update(overrides)
    return [(k.encode(), v.encode()) for k, v in fields.items() if v is not None]


def raw_stream_error(server, fields, settings=None):
    """Sends one HEADERS frame with `fields` on stream 1; returns the error
    code of the RST_STREAM or GOAWAY that answers it, or the status."""
    with RawH2(server.host, server.port) as c:
        c.handshake(settings)
        c.send(frame(h2client.HEADERS, h2client.END_HEADERS, 1, header_block(fields)))
        f = c.wait_frame(lambda f: f.type in (h2client.RST_STREAM, h2client.GOAWAY,
                                              h2client.HEADERS) and f.stream_id in (0, 1))
        if f.type == h2client.HEADERS:
            return "headers"
        return f.error_code


def test_protocol_on_a_method_other_than_connect_is_a_protocol_error(server):
    # RFC 8441 §4: `:protocol` only with CONNECT; a GET carrying it is malformed.
    fields = connect_fields(**{":method": "GET"})
    assert raw_stream_error(server, fields) == h2client.PROTOCOL_ERROR


def test_protocol_without_the_setting_is_a_protocol_error(server_factory):
    # RFC 8441 §3: a client must not send `:protocol` unless the server
    # advertised SETTINGS_ENABLE_CONNECT_PROTOCOL; with --ws none it did not.
    off = server_factory.start("apps.ws:app", "--ws", "none")
    assert raw_stream_error(off, connect_fields()) == h2client.PROTOCOL_ERROR


def test_extended_connect_without_path_or_scheme_is_a_protocol_error(server):
    # RFC 8441 §4: an extended CONNECT carries :scheme and :path.
    assert raw_stream_error(server, connect_fields(**{":path": None})) == h2client.PROTOCOL_ERROR


def test_a_protocol_other_than_websocket_is_501(server):
    with H2Client(server.host, server.port) as client:
        ws = H2WebSocket(client, raw=connect_fields(**{":protocol": "connect-udp"}))
        st = client.response(ws.sid)
    assert st.status == 501


def test_a_wrong_version_is_426_naming_13_and_no_version_is_426(server):
    with H2Client(server.host, server.port) as client:
        for version in ("8", None):
            ws = H2WebSocket(client, raw=connect_fields(**{"sec-websocket-version": version}))
            st = client.response(ws.sid)
            assert st.status == 426
            assert st.header(b"sec-websocket-version") == b"13"
