"""`--proxy-protocol`: the PROXY protocol v1/v2 header a trusted load
balancer sends first names the client (and server) the app sees, on
HTTP/1.1, HTTP/2 and TLS; bad, truncated, late and untrusted headers close
that connection (with a debug line) while everyone else is served."""

import ipaddress
import json
import socket
import ssl
import struct
import time

import pytest

import certs
from h2client import H2Client
from rawhttp import RawConnection, request_bytes

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src="203.0.113.7", dst="198.51.100.2", sport=51000, dport=443, proto="TCP4"):
    return f"PROXY {proto} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src="203.0.113.7", dst="198.51.100.2", sport=51000, dport=443, command=0x1,
       tlvs=b""):
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    family = 0x11 if s.version == 4 else 0x21
    block = s.packed + d.packed + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x20 | command, family]) + struct.pack("!H", len(block)) + block


def scope_after(server, preamble: bytes, *, pieces: int = 1, gap: float = 0.0):
    """Sends `preamble` (in `pieces`), then a request; the scope the app saw."""
    with RawConnection(server.host, server.port) as c:
        data = preamble + request_bytes("GET", "/x")
        step = max(1, len(preamble) // pieces)
        cut = [preamble[i:i + step] for i in range(0, len(preamble), step)]
        for part in cut:
            c.send(part)
            time.sleep(gap)
        c.send(data[len(preamble):])
        resp = c.read_response()
    assert resp.status == 200, resp
    return json.loads(resp.body)


def closed_without_response(server, data: bytes, timeout: float = 5.0) -> bool:
    with RawConnection(server.host, server.port, timeout=timeout) as c:
        c.send(data)
        return c.read_until_close() == b""


@pytest.fixture(scope="module")
def v1_server(module_server_factory):
    return module_server_factory.start("apps.scope_echo:app", "--proxy-protocol", "v1",
                                       "--log-level", "debug")


@pytest.fixture(scope="module")
def v2_server(module_server_factory):
    return module_server_factory.start("apps.scope_echo:app", "--proxy-protocol", "v2",
                                       "--timeout-request-head", "1")


@pytest.fixture(scope="module")
def auto_server(module_server_factory):
    return module_server_factory.start("apps.scope_echo:app", "--proxy-protocol", "auto")


def test_v1_header_names_the_client_and_server(v1_server):
    scope = scope_after(v1_server, v1())
    assert scope["client"] == ["203.0.113.7", 51000]
    assert scope["server"] == ["198.51.100.2", 443]
    scope = scope_after(v1_server, v1("2001:db8::7", "2001:db8::2", 1, 8443, "TCP6"))
    assert scope["client"] == ["2001:db8::7", 1]
    assert scope["server"] == ["2001:db8::2", 8443]
    # UNKNOWN: the connection's own addresses.
    scope = scope_after(v1_server, b"PROXY UNKNOWN\r\n")
    assert scope["client"][0] == "127.0.0.1"


def test_v2_header_names_the_client_with_tlvs_and_local(v2_server):
    scope = scope_after(v2_server, v2())
    assert scope["client"] == ["203.0.113.7", 51000]
    assert scope["server"] == ["198.51.100.2", 443]
    alpn_tlv = b"\x01\x00\x02h2" + b"\x05\x00\x04abcd"  # ALPN, unique id
    scope = scope_after(v2_server, v2("2001:db8::9", "::1", 40000, 80, tlvs=alpn_tlv))
    assert scope["client"] == ["2001:db8::9", 40000]
    # LOCAL (the balancer's own health check): the connection's addresses.
    scope = scope_after(v2_server, v2(command=0x0))
    assert scope["client"][0] == "127.0.0.1"


def test_a_header_split_across_reads(v1_server, v2_server):
    scope = scope_after(v1_server, v1(), pieces=8, gap=0.02)
    assert scope["client"] == ["203.0.113.7", 51000]
    scope = scope_after(v2_server, v2(), pieces=6, gap=0.02)
    assert scope["client"] == ["203.0.113.7", 51000]


def test_keep_alive_requests_after_the_header_keep_its_client(v2_server):
    with RawConnection(v2_server.host, v2_server.port) as c:
        c.send(v2())
        for _ in range(3):
            c.send(request_bytes("GET", "/again"))
            resp = c.read_response()
            assert json.loads(resp.body)["client"] == ["203.0.113.7", 51000]


def test_http2_after_the_header(v2_server):
    s = socket.create_connection((v2_server.host, v2_server.port), timeout=5)
    s.sendall(v2())
    with H2Client(v2_server.host, v2_server.port, sock=s) as c:
        res = c.request("GET", "/h2")
    assert res.status == 200
    assert json.loads(res.body)["client"] == ["203.0.113.7", 51000]


@pytest.mark.parametrize("bad", [
    b"PROXY TCP4 203.0.113.7 198.51.100.2 51000\r\n",           # a field short
    b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",             # IPv6 in TCP4
    b"PROXY TCP4 203.0.113.7 198.51.100.2 51000 65536\r\n",     # port out of range
    b"PROXY  TCP4 203.0.113.7 198.51.100.2 1 2\r\n",            # two spaces
    b"PROXY TCP4 " + b"1" * 120 + b"\r\n",                      # too long
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",                       # no header at all
    v2(),                                                        # the other version
])
def test_bad_v1_headers_close_the_connection(v1_server, bad):
    assert closed_without_response(v1_server, bad)
    # Everyone else is still served.
    assert scope_after(v1_server, v1())["client"] == ["203.0.113.7", 51000]


@pytest.mark.parametrize("bad", [
    V2_SIG + b"\x11\x11\x00\x0c" + bytes(12),        # version 1 in the v2 format
    V2_SIG + b"\x22\x11\x00\x0c" + bytes(12),        # command 2
    V2_SIG + b"\x21\x51\x00\x0c" + bytes(12),        # unknown family
    V2_SIG + b"\x21\x11\x00\x04" + bytes(4),         # address block too short
    v2(tlvs=b"\x01\x00\x09h2"),                      # a TLV runs past the end
    V2_SIG + b"\x21\x11\xff\xff",                    # longer than any sender's
])
def test_bad_v2_headers_close_the_connection(v2_server, bad):
    assert closed_without_response(v2_server, bad)
    assert scope_after(v2_server, v2())["client"] == ["203.0.113.7", 51000]


def test_a_truncated_header_closes_at_eof_or_at_the_head_timeout(v2_server):
    with RawConnection(v2_server.host, v2_server.port) as c:
        c.send(v2()[:20])
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_until_close() == b""
    t0 = time.monotonic()
    with RawConnection(v2_server.host, v2_server.port, timeout=5) as c:
        c.send(v2()[:20])
        assert c.read_until_close() == b""
    assert 0.8 <= time.monotonic() - t0 < 4


def test_rejections_are_logged_at_debug(v1_server):
    closed_without_response(v1_server, b"PROXY TCP9 a b c d\r\n")
    v1_server.wait_for_output("malformed proxy protocol header")


def test_auto_reads_a_header_when_sent_and_serves_plain_clients(auto_server):
    assert scope_after(auto_server, v1())["client"] == ["203.0.113.7", 51000]
    assert scope_after(auto_server, v2())["client"] == ["203.0.113.7", 51000]
    for method in ("GET", "POST", "PUT", "PATCH"):
        with RawConnection(auto_server.host, auto_server.port) as c:
            c.send(request_bytes(method, "/plain", body=b"" if method == "GET" else b"x"))
            resp = c.read_response()
            assert resp.status == 200
            assert json.loads(resp.body)["client"][0] == "127.0.0.1"
    with H2Client(auto_server.host, auto_server.port) as c:
        assert c.request("GET", "/").status == 200


def test_untrusted_peers_may_not_send_a_header(server_factory):
    server = server_factory.start("apps.scope_echo:app", "--proxy-protocol", "v2",
                                  "--forwarded-allow-ips", "10.0.0.1", "--log-level", "debug")
    assert closed_without_response(server, v2() + request_bytes("GET", "/"))
    assert closed_without_response(server, v1() + request_bytes("GET", "/"))
    server.wait_for_output("not trusted to send one")
    # Without a header, an untrusted peer is served as itself.
    scope = scope_after(server, b"")
    assert scope["client"][0] == "127.0.0.1"


def test_forwarded_headers_are_judged_by_the_proxied_client(server_factory):
    server = server_factory.start("apps.scope_echo:app", "--proxy-protocol", "v1",
                                  "--forwarded-allow-ips", "127.0.0.1")
    with RawConnection(server.host, server.port) as c:
        c.send(v1() + request_bytes("GET", "/", headers=[("x-forwarded-for", "192.0.2.99")]))
        scope = json.loads(c.read_response().body)
    # 203.0.113.7 is not a trusted proxy: its X-Forwarded-For is its own claim.
    assert scope["client"] == ["203.0.113.7", 51000]


def test_tls_starts_after_the_header(server_factory, tmp_path):
    pki = certs.make_pki(tmp_path / "pki")
    server = server_factory.start("apps.scope_echo:app", "--proxy-protocol", "v1",
                                  "--ssl-certfile", str(pki.server_cert),
                                  "--ssl-keyfile", str(pki.server_key))
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    raw = socket.create_connection((server.host, server.port), timeout=5)
    raw.sendall(v1())
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(request_bytes("GET", "/tls"))
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    scope = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert scope["scheme"] == "https"
    assert scope["client"] == ["203.0.113.7", 51000]


def test_bad_value_is_one_error_line(server_factory):
    proc, log = server_factory.spawn(["-m", "cormorant", "apps.scope_echo:app",
                                      "--proxy-protocol", "v3"])
    assert proc.wait(10) != 0
    assert "--proxy-protocol" in log.read_text()
