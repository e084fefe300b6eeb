"""HTTPS, mutual TLS and the ASGI ``tls`` extension, over real sockets.

The certificates come from ``certs.make_pki`` (``cryptography``), made once per
module in a temporary directory. Clients are Python's ``ssl`` (through
``http.client``, which exposes the negotiated version and suite), httpx and
websockets, always verifying the server against the test CA.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

import certs
from conftest import TESTS_DIR, free_port, wait_ready

SCOPE_APP = "apps.scope_echo:app"

# IANA values of the suites Python's ssl names (TLS 1.3 by IANA name, TLS 1.2
# by OpenSSL name).
SUITE_VALUES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
}
VERSION_VALUES = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


# ---- helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.Pki:
    return certs.make_pki(tmp_path_factory.mktemp("pki"))


def tls_flags(pki: certs.Pki, cert=None, key=None) -> list[str]:
    return ["--ssl-certfile", str(cert or pki.server_cert), "--ssl-keyfile", str(key or pki.server_key)]


def mtls_flags(pki: certs.Pki, reqs: str, crl: bool = True) -> list[str]:
    flags = [*tls_flags(pki), "--ssl-ca-certs", str(pki.ca_cert), "--ssl-cert-reqs", reqs]
    return flags + (["--ssl-crl", str(pki.crl)] if crl else [])


def client_context(pki: certs.Pki, identity: str | None = None, *,
                   maximum: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    """A client trusting the test CA, presenting `identity`'s certificate
    ("alice", "revoked", "mallory") if given."""
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if identity is not None:
        ctx.load_cert_chain(str(getattr(pki, f"{identity}_cert")), str(getattr(pki, f"{identity}_key")))
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def request(port: int, ctx: ssl.SSLContext, method: str = "GET", path: str = "/",
            body: bytes | None = None, timeout: float = 5.0):
    """One HTTPS request on a new connection: (status, body, negotiated)
    where negotiated is {"version": "TLSv1.3", "cipher": "TLS_AES_..."}."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.connect()
        negotiated = {"version": conn.sock.version(), "cipher": conn.sock.cipher()[0]}
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read(), negotiated
    finally:
        conn.close()


def scope_of(port: int, ctx: ssl.SSLContext):
    """The scope `apps.scope_echo` saw, and what the client negotiated."""
    status, body, negotiated = request(port, ctx)
    assert status == 200, body
    return json.loads(body), negotiated


def expect_rejected(port: int, ctx: ssl.SSLContext) -> OSError:
    """The handshake (or, in TLS 1.3, the first read after it, where a client
    certificate is judged) fails; the server neither answers nor hangs."""
    try:
        status, body, _ = request(port, ctx)
    except TimeoutError as e:  # a subclass of OSError: check it first
        raise AssertionError("the server hung instead of refusing the connection") from e
    except OSError as e:  # ssl.SSLError, ConnectionResetError, RemoteDisconnected...
        return e
    raise AssertionError(f"the request succeeded: {status} {body[:200]!r}")


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Reads until the peer closes; False if it is still open after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


def run_until_exit(*flags: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
    """Runs the server with `flags`, expecting it to exit by itself."""
    return subprocess.run(
        [sys.executable, "-m", "cormorant", SCOPE_APP, "--host", "127.0.0.1",
         "--port", str(free_port()), *flags],
        cwd=TESTS_DIR, capture_output=True, text=True, timeout=timeout,
    )


def assert_no_error_logged(output: str) -> None:
    assert "ERROR" not in output, output
    assert "Traceback" not in output, output


# ---- shared servers -------------------------------------------------------------


@pytest.fixture(scope="module")
def https_server(module_server_factory, pki):
    return module_server_factory.start(SCOPE_APP, *tls_flags(pki))


@pytest.fixture(scope="module")
def required_server(module_server_factory, pki):
    return module_server_factory.start(SCOPE_APP, *mtls_flags(pki, "required"))


@pytest.fixture(scope="module")
def optional_server(module_server_factory, pki):
    return module_server_factory.start(SCOPE_APP, *mtls_flags(pki, "optional"))


# ---- HTTPS ------------------------------------------------------------------------


def test_https_get_with_httpx(https_server, pki):
    assert https_server.base_url.startswith("https://")
    with httpx.Client(verify=client_context(pki), timeout=5) as client:
        r = client.get(https_server.url("/some/path?x=1"))
    assert r.status_code == 200
    scope = r.json()
    assert scope["scheme"] == "https"
    assert scope["path"] == "/some/path"
    assert scope["http_version"] == "1.1"


def test_http2_by_alpn(https_server, pki):
    with httpx.Client(verify=client_context(pki), http2=True, timeout=5) as client:
        rs = [client.get(https_server.url(f"/h2/{i}")) for i in range(3)]
    assert {r.http_version for r in rs} == {"HTTP/2"}
    scope = rs[0].json()
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "https"
    assert scope["headers"][0][0] == "host"
    tls = scope["extensions"]["tls"]
    assert tls["tls_version"] == 0x0304
    assert "http.response.trailers" in scope["extensions"]
    assert len({tuple(r.json()["client"]) for r in rs}) == 1  # one connection


def test_http2_only_over_tls_answers_a_bad_preface_with_goaway(server_factory, pki):
    server = server_factory.start("apps.scope_echo:app", *tls_flags(pki), "--http", "2")
    ctx = client_context(pki)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
    # An empty SETTINGS (the server's preface), then GOAWAY PROTOCOL_ERROR.
    assert data == bytes.fromhex("000000040000000000" "000008070000000000" "00000000" "00000001")
    with httpx.Client(verify=client_context(pki), http2=True, timeout=5) as client:
        assert client.get(server.url("/")).http_version == "HTTP/2"


def test_http1_only_does_not_offer_h2(server_factory, pki):
    server = server_factory.start("apps.scope_echo:app", *tls_flags(pki), "--http", "1")
    with httpx.Client(verify=client_context(pki), http2=True, timeout=5) as client:
        r = client.get(server.url("/"))
    assert r.http_version == "HTTP/1.1"


def test_startup_line_names_https_and_the_protocols(https_server):
    out = https_server.output()
    assert f"Cormorant running on https://127.0.0.1:{https_server.port} (HTTP/1.1, HTTP/2;" in out
    assert "http://" not in out


def test_startup_line_with_http1_only_and_workers(server_factory, pki):
    server = server_factory.start(
        "apps.scope_echo:app", *tls_flags(pki), "--http", "1", "--workers", "2")
    out = server.wait_for_output("serving on")
    assert f"serving on https://127.0.0.1:{server.port} (HTTP/1.1) with 2 workers" in out
    assert f"running on https://127.0.0.1:{server.port} (HTTP/1.1;" in out
    assert "http://" not in out


def test_keep_alive_over_tls(https_server, pki):
    with httpx.Client(verify=client_context(pki), timeout=5) as client:
        ports = {tuple(client.get(https_server.url(f"/{i}")).json()["client"]) for i in range(3)}
    assert len(ports) == 1, ports  # three requests, one connection


def test_one_megabyte_post_echo(server_factory, pki):
    server = server_factory.start("apps.body_echo:app", *tls_flags(pki))
    body = os.urandom(1024 * 1024)
    with httpx.Client(verify=client_context(pki), timeout=10) as client:
        r = client.post(server.url("/"), content=body)
    assert r.status_code == 200
    assert r.content == body


def test_tls_extension_without_client_cert(https_server, pki):
    scope, negotiated = scope_of(https_server.port, client_context(pki))
    assert negotiated["version"] == "TLSv1.3"
    tls = scope["extensions"]["tls"]
    assert tls["server_cert"] == pki.server_cert_pem
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] == 0x0304
    assert tls["cipher_suite"] == SUITE_VALUES[negotiated["cipher"]]


def test_tls_extension_is_fresh_for_each_request(https_server, pki):
    # The app changes the scope it was given each time; the next request on
    # the same connection, and on another, still sees the values as they were.
    with httpx.Client(verify=client_context(pki), timeout=5) as client:
        seen = [client.get(https_server.url("/?mutate")).json() for _ in range(3)]
    with httpx.Client(verify=client_context(pki), timeout=5) as client:
        seen.append(client.get(https_server.url("/?mutate")).json())
    for scope in seen:
        tls = scope["extensions"]["tls"]
        assert tls["client_cert_chain"] == []
        assert tls["tls_version"] == 0x0304
        assert tls["server_cert"] == pki.server_cert_pem
        assert scope["asgi"]["version"] == "3.0"


def test_tls_extension_of_a_tls12_connection(https_server, pki):
    ctx = client_context(pki, maximum=ssl.TLSVersion.TLSv1_2)
    scope, negotiated = scope_of(https_server.port, ctx)
    assert negotiated["version"] == "TLSv1.2"
    tls = scope["extensions"]["tls"]
    assert tls["tls_version"] == 0x0303
    assert tls["cipher_suite"] == SUITE_VALUES[negotiated["cipher"]]


def test_websocket_over_tls_is_wss(server_factory, pki):
    from websockets.sync.client import connect

    server = server_factory.start("apps.ws:app", *tls_flags(pki))
    with connect(f"wss://127.0.0.1:{server.port}/scope", ssl=client_context(pki),
                 open_timeout=5, close_timeout=2) as ws:
        scope = json.loads(ws.recv(timeout=5))
    assert scope["scheme"] == "wss"
    assert scope["extensions"]["tls"]["tls_version"] in (0x0303, 0x0304)


# ---- mutual TLS -------------------------------------------------------------------


def test_required_accepts_a_valid_client_cert(required_server, pki):
    scope, _ = scope_of(required_server.port, client_context(pki, "alice"))
    tls = scope["extensions"]["tls"]
    assert tls["client_cert_name"] == certs.ALICE_NAME
    assert tls["client_cert_name"] == r"CN=alice \<admin\>,OU=Eng+UID=alice01,O=Example\, Inc.,C=FR"
    # The leaf first; OpenSSL clients append the issuers they know.
    assert tls["client_cert_chain"][0] == pki.alice_cert_pem
    assert all(c.startswith("-----BEGIN CERTIFICATE-----") for c in tls["client_cert_chain"])
    assert tls["client_cert_error"] is None
    assert tls["server_cert"] == pki.server_cert_pem


def test_required_refuses_no_client_cert(required_server, pki):
    expect_rejected(required_server.port, client_context(pki))


def test_required_refuses_a_cert_from_another_ca(required_server, pki):
    expect_rejected(required_server.port, client_context(pki, "mallory"))


def test_required_refuses_a_revoked_cert(required_server, pki):
    expect_rejected(required_server.port, client_context(pki, "revoked"))
    # The CRL does not hurt the others.
    scope, _ = scope_of(required_server.port, client_context(pki, "alice"))
    assert scope["extensions"]["tls"]["client_cert_error"] is None


def test_optional_without_client_cert(optional_server, pki):
    scope, _ = scope_of(optional_server.port, client_context(pki))
    tls = scope["extensions"]["tls"]
    assert tls["client_cert_name"] is None
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_error"] is None


def test_optional_with_a_valid_client_cert(optional_server, pki):
    tls = scope_of(optional_server.port, client_context(pki, "alice"))[0]["extensions"]["tls"]
    assert tls["client_cert_name"] == certs.ALICE_NAME
    assert tls["client_cert_error"] is None


@pytest.mark.parametrize("identity,name", [("mallory", "CN=mallory"), ("revoked", "CN=revoked")])
def test_optional_accepts_an_invalid_cert_and_reports_why(optional_server, pki, identity, name):
    tls = scope_of(optional_server.port, client_context(pki, identity))[0]["extensions"]["tls"]
    assert tls["client_cert_name"] == name
    assert len(tls["client_cert_chain"]) >= 1  # the leaf, and the issuers an OpenSSL client appends
    assert isinstance(tls["client_cert_error"], str) and tls["client_cert_error"]


@pytest.mark.parametrize("reqs", ["2", "required"])
def test_cert_reqs_required_spellings(server_factory, pki, reqs):
    server = server_factory.start(SCOPE_APP, *mtls_flags(pki, reqs, crl=False))
    expect_rejected(server.port, client_context(pki))
    assert scope_of(server.port, client_context(pki, "alice"))[0]["extensions"]["tls"]["client_cert_name"]


def test_cert_reqs_one_is_optional(server_factory, pki):
    server = server_factory.start(SCOPE_APP, *mtls_flags(pki, "1", crl=False))
    assert scope_of(server.port, client_context(pki))[0]["extensions"]["tls"]["client_cert_name"] is None


def test_granian_flag_aliases(server_factory, pki):
    server = server_factory.start(
        SCOPE_APP,
        "--ssl-certificate", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key),
        "--ssl-ca", str(pki.ca_cert), "--ssl-client-verify",
    )
    assert server.scheme == "https"
    expect_rejected(server.port, client_context(pki))
    tls = scope_of(server.port, client_context(pki, "alice"))[0]["extensions"]["tls"]
    assert tls["client_cert_name"] == certs.ALICE_NAME


# ---- versions and ciphers -----------------------------------------------------------


def test_protocol_min_tls13_refuses_a_tls12_client(server_factory, pki):
    server = server_factory.start(SCOPE_APP, *tls_flags(pki), "--ssl-protocol-min", "tls1.3")
    expect_rejected(server.port, client_context(pki, maximum=ssl.TLSVersion.TLSv1_2))
    scope, negotiated = scope_of(server.port, client_context(pki))
    assert negotiated["version"] == "TLSv1.3"
    assert scope["extensions"]["tls"]["tls_version"] == 0x0304


def test_cipher_restriction(server_factory, pki):
    server = server_factory.start(
        SCOPE_APP, *tls_flags(pki), "--ssl-ciphers", "TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES256-GCM-SHA384"
    )
    tls12 = ssl.TLSVersion.TLSv1_2
    expect_rejected(server.port, client_context(pki, maximum=tls12, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
    scope, negotiated = scope_of(
        server.port, client_context(pki, maximum=tls12, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
    )
    assert negotiated["cipher"] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    assert scope["extensions"]["tls"]["cipher_suite"] == 0xC02C
    # Python cannot narrow its TLS 1.3 offer; the server picks the one allowed.
    scope, negotiated = scope_of(server.port, client_context(pki))
    assert negotiated["cipher"] == "TLS_AES_256_GCM_SHA384"
    assert scope["extensions"]["tls"]["cipher_suite"] == 0x1302


# ---- key formats --------------------------------------------------------------------

KEY_FORMATS = {
    "ec-pkcs8": ("server_cert", "server_key", None),
    "ec-sec1": ("server_cert", "server_key_sec1", None),
    "ec-encrypted-pkcs8": ("server_cert", "server_key_encrypted", certs.KEY_PASSWORD),
    "rsa-pkcs8": ("server_rsa_cert", "server_rsa_key", None),
    "rsa-pkcs1": ("server_rsa_cert", "server_rsa_key_pkcs1", None),
}


@pytest.mark.parametrize("fmt", list(KEY_FORMATS))
def test_each_key_format_serves(server_factory, pki, fmt):
    cert_attr, key_attr, password = KEY_FORMATS[fmt]
    flags = tls_flags(pki, getattr(pki, cert_attr), getattr(pki, key_attr))
    if password is not None:
        flags += ["--ssl-keyfile-password", password]
    server = server_factory.start(SCOPE_APP, *flags)
    scope, _ = scope_of(server.port, client_context(pki))
    assert scope["extensions"]["tls"]["server_cert"] == getattr(pki, cert_attr).read_text()


# ---- startup errors: exit non-zero with one line on stderr ------------------------------

STARTUP_ERRORS = {
    "only-cert": (lambda p: ["--ssl-certfile", str(p.server_cert)], ["--ssl-keyfile"]),
    "only-key": (lambda p: ["--ssl-keyfile", str(p.server_key)], ["--ssl-certfile"]),
    "missing-cert": (
        lambda p: tls_flags(p, cert=p.dir / "missing.pem"),
        ["cannot read --ssl-certfile", "missing.pem", "No such file or directory"],
    ),
    "missing-key": (
        lambda p: tls_flags(p, key=p.dir / "missing-key.pem"),
        ["cannot read --ssl-keyfile", "missing-key.pem", "No such file or directory"],
    ),
    "key-not-a-key": (
        lambda p: tls_flags(p, key=p.server_cert), ["--ssl-keyfile", "no private key found"],
    ),
    "key-mismatch": (
        lambda p: tls_flags(p, key=p.unrelated_key),
        ["unrelated-key.pem", "does not match the certificate in", "server.pem"],
    ),
    "encrypted-no-password": (
        lambda p: tls_flags(p, key=p.server_key_encrypted),
        ["is encrypted: give --ssl-keyfile-password"],
    ),
    "wrong-password": (
        lambda p: tls_flags(p, key=p.server_key_encrypted) + ["--ssl-keyfile-password", "wrong"],
        ["--ssl-keyfile-password is wrong for", "server-key-encrypted.pem"],
    ),
    "required-without-ca": (
        lambda p: tls_flags(p) + ["--ssl-cert-reqs", "required"], ["--ssl-ca-certs is needed"],
    ),
    "crl-not-a-crl": (
        lambda p: tls_flags(p) + ["--ssl-ca-certs", str(p.ca_cert), "--ssl-cert-reqs", "required",
                                  "--ssl-crl", str(p.server_cert)],
        ["--ssl-crl", "not a CRL"],
    ),
    "unknown-cipher": (
        lambda p: tls_flags(p) + ["--ssl-ciphers", "RC4-MD5"], ["unknown cipher suite", "RC4-MD5"],
    ),
}


@pytest.mark.parametrize("case", list(STARTUP_ERRORS))
def test_startup_error_is_one_line(pki, case):
    make_flags, needles = STARTUP_ERRORS[case]
    result = run_until_exit(*make_flags(pki))
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# ---- misbehaving clients -------------------------------------------------------------


def test_plaintext_request_to_the_tls_port_is_closed(server_factory, pki):
    server = server_factory.start(SCOPE_APP, *tls_flags(pki))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert closed_within(sock, 3.0), "the server kept a plaintext connection open"
    status, _, _ = request(server.port, client_context(pki))
    assert status == 200
    assert_no_error_logged(server.output())


def test_silent_client_is_dropped_after_the_handshake_timeout(server_factory, pki):
    server = server_factory.start(SCOPE_APP, *tls_flags(pki), "--timeout-tls-handshake", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        assert closed_within(sock, 3.0), "a client that sent nothing was kept past the timeout"
        assert time.monotonic() - started >= 0.5, "dropped before the timeout"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        # A record header promising a ClientHello that never comes.
        sock.sendall(b"\x16\x03\x01\x02\x00")
        assert closed_within(sock, 3.0), "a stalled handshake was kept past the timeout"
    assert request(server.port, client_context(pki))[0] == 200
    assert_no_error_logged(server.output())


def test_failed_handshakes_are_not_logged_as_errors(server_factory, pki):
    server = server_factory.start(
        SCOPE_APP, *mtls_flags(pki, "required"), "--ssl-protocol-min", "tls1.3"
    )
    expect_rejected(server.port, client_context(pki))
    expect_rejected(server.port, client_context(pki, "mallory"))
    expect_rejected(server.port, client_context(pki, "revoked"))
    expect_rejected(server.port, client_context(pki, "alice", maximum=ssl.TLSVersion.TLSv1_2))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        closed_within(sock, 3.0)
    assert request(server.port, client_context(pki, "alice"))[0] == 200
    assert server.stop() == 0
    assert_no_error_logged(server.output())


# ---- Python API -----------------------------------------------------------------------


def _serve_python(server_factory, pki, code: str):
    """Runs `code` (PORT, CERT, KEY substituted) and makes one HTTPS request."""
    port = free_port()
    code = (textwrap.dedent(code).replace("PORT", str(port))
            .replace("CERT", repr(str(pki.server_cert))).replace("KEY", repr(str(pki.server_key))))
    proc, log = server_factory.spawn(["-c", code])
    try:
        wait_ready(port, proc, log)
        scope, _ = scope_of(port, client_context(pki))
        assert scope["scheme"] == "https"
        assert scope["extensions"]["tls"]["server_cert"] == pki.server_cert_pem
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


def test_python_api_uvicorn_keywords(server_factory, pki):
    _serve_python(server_factory, pki, """
        import cormorant
        from apps.scope_echo import app
        cormorant.run(app, host="127.0.0.1", port=PORT, ssl_certfile=CERT, ssl_keyfile=KEY)
    """)


def test_python_api_granian_keywords_with_paths(server_factory, pki):
    _serve_python(server_factory, pki, """
        from pathlib import Path
        import cormorant
        cormorant.Server("apps.scope_echo:app", address="127.0.0.1", port=PORT,
                         ssl_cert=Path(CERT), ssl_key=Path(KEY)).serve()
    """)
