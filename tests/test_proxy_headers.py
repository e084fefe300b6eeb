"""Proxy headers (--proxy-headers, --forwarded-allow-ips): `Forwarded` and
`X-Forwarded-*` set `client`, `scheme` and the `host` header of the scope,
but only when the connection's peer is trusted. Tests connect from
127.0.0.1, which the default allow-list trusts; `--forwarded-allow-ips
10.0.0.1` makes them an untrusted peer.
"""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.sync.client import connect

import cormorant

APP = "apps.scope_echo:app"


@pytest.fixture(scope="module")
def servers(module_server_factory):
    started = {}

    def get(name: str, *flags: str, app: str = APP, env=None):
        if name not in started:
            started[name] = module_server_factory.start(app, *flags, env=env)
        return started[name]

    return get


def scope_of(server, headers=(), http2=False, path="/"):
    with httpx.Client(http1=not http2, http2=http2) as c:
        r = c.get(server.url(path), headers=list(headers))
    assert r.status_code == 200
    if http2:
        assert r.http_version == "HTTP/2"
    return r.json()


def host_header(scope):
    return [v for n, v in scope["headers"] if n == "host"]


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_x_forwarded_from_trusted_peer(servers, http2):
    s = scope_of(
        servers("default"),
        [
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "app.example.com"),
        ],
        http2=http2,
    )
    assert s["client"] == ["203.0.113.7", 0]
    assert s["scheme"] == "https"
    assert host_header(s) == ["app.example.com"]


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_forwarded_from_trusted_peer(servers, http2):
    s = scope_of(
        servers("default"),
        [("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https;host="shop.example:8443"')],
        http2=http2,
    )
    assert s["client"] == ["2001:db8:cafe::17", 4711]
    assert s["scheme"] == "https"
    assert host_header(s) == ["shop.example:8443"]


def test_forwarded_preferred_over_x_forwarded(servers):
    s = scope_of(
        servers("default"),
        [
            ("X-Forwarded-For", "198.51.100.1"),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=192.0.2.60;proto=http"),
        ],
    )
    assert s["client"] == ["192.0.2.60", 0]
    assert s["scheme"] == "http"


def test_forwarded_unknown_and_obfuscated(servers):
    s = scope_of(servers("default"), [("Forwarded", "for=unknown")])
    assert s["client"] is None
    s = scope_of(servers("default"), [("Forwarded", 'for="_hidden:_port"')])
    assert s["client"] == ["_hidden", 0]


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_untrusted_peer_is_ignored(servers, http2):
    server = servers("untrusted", "--forwarded-allow-ips", "10.0.0.1")
    s = scope_of(
        server,
        [
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=192.0.2.1;proto=https;host=evil.example"),
        ],
        http2=http2,
    )
    assert s["client"][0] == "127.0.0.1"
    assert s["client"][1] > 0
    assert s["scheme"] == "http"
    assert host_header(s) == [f"127.0.0.1:{server.port}"]


def test_no_proxy_headers(servers):
    s = scope_of(
        servers("off", "--no-proxy-headers"),
        [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")],
    )
    assert s["client"][0] == "127.0.0.1"
    assert s["scheme"] == "http"


def test_allow_list_from_uvicorn_env_var(servers):
    server = servers("env", env={"FORWARDED_ALLOW_IPS": "10.0.0.1"})
    s = scope_of(server, [("X-Forwarded-For", "203.0.113.7")])
    assert s["client"][0] == "127.0.0.1"


def test_multi_hop_with_trusted_cidr(servers):
    server = servers("cidr", "--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8")
    s = scope_of(
        server,
        [
            ("X-Forwarded-For", "198.51.100.9, 203.0.113.7, 10.1.2.3, 10.0.0.2"),
            ("X-Forwarded-Proto", "http, https, http, http"),
        ],
    )
    # The rightmost hop that is not a trusted proxy, and its scheme.
    assert s["client"] == ["203.0.113.7", 0]
    assert s["scheme"] == "https"
    s = scope_of(server, [("Forwarded", "for=203.0.113.7;proto=https, for=10.0.0.2")])
    assert s["client"] == ["203.0.113.7", 0]
    assert s["scheme"] == "https"
    # Every hop trusted: the leftmost.
    s = scope_of(server, [("X-Forwarded-For", "10.9.9.9, 10.0.0.2")])
    assert s["client"] == ["10.9.9.9", 0]
    # With only loopback trusted, 10.0.0.2 is the client.
    s = scope_of(
        servers("default"),
        [("X-Forwarded-For", "203.0.113.7, 10.0.0.2")],
    )
    assert s["client"] == ["10.0.0.2", 0]


def test_trust_everyone(servers):
    s = scope_of(
        servers("star", "--forwarded-allow-ips", "*"),
        [("X-Forwarded-For", "198.51.100.9, 203.0.113.7")],
    )
    # uvicorn's rule: with *, the leftmost (the original client).
    assert s["client"] == ["198.51.100.9", 0]


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-For", "not-an-ip")],
        [("X-Forwarded-For", "1.2.3.4:99999")],
        [("X-Forwarded-Proto", "gopher")],
        [("X-Forwarded-Proto", "https, http")],
        [("X-Forwarded-Host", "bad host/x")],
        [("Forwarded", 'for="1.2.3.4')],
        [("Forwarded", "for=2001:db8::1")],
        [("Forwarded", "for=1.2.3.4;for=5.6.7.8")],
        [("Forwarded", "for=example.com;proto=https")],
    ],
    ids=lambda h: f"{h[0][0]}={h[0][1]}",
)
def test_malformed_values_are_ignored(servers, headers):
    server = servers("default")
    s = scope_of(server, headers)
    assert s["client"][0] == "127.0.0.1"
    assert s["client"][1] > 0
    assert s["scheme"] == "http"
    assert host_header(s) == [f"127.0.0.1:{server.port}"]


def test_websocket_scheme_and_client(servers):
    server = servers("ws", app="apps.ws:app")
    url = f"ws://127.0.0.1:{server.port}/scope"
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    with connect(url, additional_headers=headers) as ws:
        scope = json.loads(ws.recv())
    assert scope["scheme"] == "wss"
    assert scope["client"] == ["203.0.113.7", 0]
    with connect(url, additional_headers={"Forwarded": "proto=ws"}) as ws:
        assert json.loads(ws.recv())["scheme"] == "ws"


def test_websocket_untrusted_peer(servers):
    server = servers("ws-untrusted", "--forwarded-allow-ips=10.0.0.1", app="apps.ws:app")
    url = f"ws://127.0.0.1:{server.port}/scope"
    with connect(url, additional_headers={"X-Forwarded-Proto": "wss"}) as ws:
        scope = json.loads(ws.recv())
    assert scope["scheme"] == "ws"
    assert scope["client"][0] == "127.0.0.1"


def test_unix_socket_peer_trusted_with_loopback(server_factory, tmp_path):
    uds = str(tmp_path / "s.sock")
    server = server_factory.start(APP, uds=uds)
    with httpx.Client(transport=httpx.HTTPTransport(uds=uds)) as c:
        s = c.get("http://localhost/", headers={"X-Forwarded-For": "203.0.113.7"}).json()
    assert s["client"] == ["203.0.113.7", 0]
    server.stop()
    uds2 = str(tmp_path / "t.sock")
    server_factory.start(APP, "--forwarded-allow-ips", "10.0.0.1", uds=uds2)
    with httpx.Client(transport=httpx.HTTPTransport(uds=uds2)) as c:
        s = c.get("http://localhost/", headers={"X-Forwarded-For": "203.0.113.7"}).json()
    assert s["client"] is None


def test_bad_allow_list_fails_at_startup(server_factory):
    proc, log = server_factory.spawn(
        ["-m", "cormorant", APP, "--port", "0", "--forwarded-allow-ips", "10.0.0.1,nope"]
    )
    assert proc.wait(timeout=10) != 0
    assert "nope" in log.read_text()


def test_python_api_names():
    cfg = cormorant.Server(
        "m:app", proxy_headers=False, forwarded_allow_ips=["10.0.0.1", "10.0.0.2"]
    ).config
    assert cfg["proxy_headers"] is False
    assert cfg["forwarded_allow_ips"] == "10.0.0.1,10.0.0.2"
