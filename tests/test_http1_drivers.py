"""The two drivers of cleartext HTTP/1.1 over TCP.

The readiness driver serves every such connection in one task. It hands a
connection to the async driver, at a request boundary or in the middle of
an exchange, for whatever it does not do itself: a file to send, a request
the server answers (the health path), a body still to come, a
`100 Continue`. The connection must carry on across the hand-over, with its
requests answered in order. CORMORANT_ASYNC_HTTP1=1 keeps every connection
on the async driver: both must behave alike. The readiness driver serves TLS
connections too once their handshake chose HTTP/1.1, and hands them over
with rustls's state: every TCP case runs over TLS as well.
"""

import os
import socket
import ssl
import tempfile
import time

import pytest

import certs
from rawhttp import RawConnection, request_bytes

DRIVERS = {"readiness": {}, "async": {"CORMORANT_ASYNC_HTTP1": "1"}}


@pytest.fixture(params=sorted(DRIVERS))
def driver_env(request):
    return DRIVERS[request.param]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make_pki(tmp_path_factory.mktemp("pki"))


class Transport:
    """A driver, and cleartext or TLS: how to start the server and connect."""

    def __init__(self, env: dict, pki=None) -> None:
        self.env = env
        self.context = None
        self.flags: list[str] = []
        if pki is not None:
            self.context = ssl.create_default_context(cafile=str(pki.ca_cert))
            self.flags = ["--ssl-certfile", str(pki.server_cert),
                          "--ssl-keyfile", str(pki.server_key)]

    def start(self, factory, app: str, *flags: str):
        return factory.start(app, *flags, *self.flags, env=self.env)

    def connect(self, server, timeout: float = 5.0) -> RawConnection:
        return RawConnection(server.host, server.port, timeout=timeout, tls=self.context)


@pytest.fixture(params=[f"{d}{t}" for d in sorted(DRIVERS) for t in ("", "+tls")])
def transport(request, pki):
    driver, _, tls = request.param.partition("+")
    return Transport(DRIVERS[driver], pki if tls else None)


def _get(target: str) -> bytes:
    return request_bytes("GET", target)


def test_a_connection_goes_on_after_a_file_was_sent(server_factory, tmp_path, transport):
    payload = bytes(range(256)) * 40
    path = tmp_path / "file.bin"
    path.write_bytes(payload)
    server = transport.start(server_factory, "apps.h2_apps:app")
    with transport.connect(server) as c:
        for target, body in [("/hello", b"hello"), (f"/pathsend?path={path}", payload),
                             ("/hello", b"hello"), (f"/pathsend?path={path}", payload)]:
            c.send(_get(target))
            r = c.read_response()
            assert (r.status, r.body) == (200, body), target


def test_pipelined_requests_across_the_hand_over_answer_in_order(server_factory, tmp_path,
                                                                  transport):
    path = tmp_path / "file.txt"
    path.write_bytes(b"from a file")
    server = transport.start(server_factory, "apps.h2_apps:app", "--health-path", "/healthz")
    targets = ["/hello", f"/pathsend?path={path}", "/healthz", "/hello", "/slow?s=0.1"]
    with transport.connect(server) as c:
        c.send(b"".join(_get(t) for t in targets))
        bodies = [c.read_response().body for _ in targets]
    assert bodies == [b"hello", b"from a file", b"OK", b"hello", b"done"]


def test_a_body_that_comes_after_its_head(server_factory, transport):
    server = transport.start(server_factory, "apps.body_echo:app")
    with transport.connect(server) as c:
        c.send(request_bytes("POST", "/", body=b"first"))
        assert c.read_response().body == b"first"
        # The head alone, the body a moment later: the app reads it as it
        # comes.
        body = b"x" * 100_000
        c.send(request_bytes("POST", "/", headers=[("Content-Length", str(len(body)))]))
        time.sleep(0.2)
        c.send(body)
        assert c.read_response().body == body
        c.send(request_bytes("POST", "/", body=b"after"))
        assert c.read_response().body == b"after"


def test_a_cancelled_receive_does_not_take_the_body_that_comes_after(server_factory,
                                                                    transport):
    # The app's receive() times out (cancelled) before the body comes, and
    # the body comes while the app does something else: its next receive()
    # gets it.
    server = transport.start(server_factory, "apps.body_echo:app")
    with transport.connect(server) as c:
        c.send(request_bytes("POST", "/cancelled-receive",
                             headers=[("Content-Length", "5")]))
        time.sleep(0.2)
        c.send(b"later")
        assert c.read_response().body == b"later"


def test_a_large_read_with_part_of_the_next_request_serves_both(server_factory, transport):
    # One write: a body that comes with its head (a read large enough for
    # the driver to hand its buffer to core), then the start of the next
    # request, whose rest comes later. Both are answered whole, and a third
    # after them.
    server = transport.start(server_factory, "apps.body_echo:app")
    first = bytes(range(256)) * 64
    second = b"y" * 20_000
    nxt = request_bytes("POST", "/", body=second)
    with transport.connect(server) as c:
        c.send(request_bytes("POST", "/", body=first) + nxt[:10])
        assert c.read_response().body == first
        time.sleep(0.2)
        c.send(nxt[10:])
        assert c.read_response().body == second
        c.send(request_bytes("POST", "/", body=b"third"))
        assert c.read_response().body == b"third"


def test_continue_after_requests_served_by_the_readiness_driver(server_factory, transport):
    server = transport.start(server_factory, "apps.body_echo:app")
    with transport.connect(server) as c:
        c.send(request_bytes("POST", "/", body=b"plain"))
        assert c.read_response().body == b"plain"
        c.send(request_bytes("POST", "/", headers=[("Content-Length", "4"),
                                                     ("Expect", "100-continue")]))
        interim = c.read_response()
        assert interim.status == 100
        c.send(b"more")
        assert c.read_response().body == b"more"


def _read_chunked_slowly(sock: socket.socket, pause_every: int) -> tuple[bytes, bytes]:
    """The head and the decoded body of a chunked response, read a little
    at a time with pauses."""
    buf = bytearray()
    reads = 0
    while not buf.endswith(b"\r\n0\r\n\r\n"):
        data = sock.recv(16384)
        assert data, "closed before the end of the response"
        buf += data
        reads += 1
        if reads % pause_every == 0:
            time.sleep(0.01)
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    body = bytearray()
    pos = 0
    while True:
        eol = rest.index(b"\r\n", pos)
        size = int(rest[pos:eol], 16)
        if size == 0:
            return head, bytes(body)
        body += rest[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def _slow_reader(server, transport) -> socket.socket:
    """A connection with a small receive buffer, so that a large response
    fills it and the server must wait to write the rest."""
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    if transport.context is not None:
        sock = transport.context.wrap_socket(sock, server_hostname=server.host)
    return sock


def test_a_slow_reader_gets_a_large_response_whole(server_factory, transport):
    # 16 MB, more than the socket buffers hold, read after a pause and then
    # with pauses: the server's writes fill the socket again and again and
    # must resume where they stopped.
    server = transport.start(server_factory, "apps.responses:app")
    with _slow_reader(server, transport) as sock:
        for mb in (16, 1):
            sock.sendall(_get(f"/big?mb={mb}"))
            time.sleep(0.3)
            head, body = _read_chunked_slowly(sock, pause_every=16)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert len(body) == mb * 1024 * 1024 and set(body) == {ord("b")}


def test_a_last_send_larger_than_the_buffer_returns_once_written(server_factory, transport):
    # The whole body in the last message: send() waits for the connection to
    # drain, and must return although the response is already complete.
    server = transport.start(server_factory, "apps.responses:app")
    with _slow_reader(server, transport) as sock:
        sock.sendall(_get("/big-once?mb=2&token=t1"))
        time.sleep(0.3)
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(16384)
        head, _, body = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert b"\r\ncontent-length: 2097152" in head.lower(), head
        while len(body) < 2 << 20:
            data = sock.recv(16384)
            assert data, "closed before the end of the response"
            body += data
            time.sleep(0.001)
        assert body == b"b" * (2 << 20)
    deadline = time.monotonic() + 5
    with transport.connect(server) as c:
        while True:
            c.send(_get("/sent?token=t1"))
            answer = c.read_response().body
            if answer == b"yes" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert answer == b"yes"


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(server_factory, transport):
    server = transport.start(server_factory, "apps.h2_apps:app", "--timeout-keep-alive", "1")
    with transport.connect(server) as c:
        c.send(_get("/hello"))
        assert c.read_response().body == b"hello"
        waited = c.seconds_until_closed()
    assert 0.8 <= waited <= 2.5, waited


class _UnixConnection(RawConnection):
    """A RawConnection over a Unix socket."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.buf = b""
        self.closed_by_peer = False


def test_a_unix_socket_connection_goes_on_after_a_file_was_sent(server_factory, tmp_path,
                                                                  driver_env):
    payload = b"over a unix socket " * 100
    path = tmp_path / "file.bin"
    path.write_bytes(payload)
    # A short path of its own: a Unix socket path has at most 107 bytes.
    uds = os.path.join(tempfile.mkdtemp(prefix="drv-"), "s")
    server_factory.start("apps.h2_apps:app", uds=uds, env=driver_env)
    with _UnixConnection(uds) as c:
        for target, body in [("/hello", b"hello"), (f"/pathsend?path={path}", payload),
                             ("/hello", b"hello")]:
            c.send(_get(target))
            r = c.read_response()
            assert (r.status, r.body) == (200, body), target
