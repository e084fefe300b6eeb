"""Code written for granian runs on Cormorant with only its imports changed:
`cormorant.constants` has granian's enums, `Server` takes granian's
keywords."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import time
import typing

import httpx
import pytest

import cormorant
from cormorant import _ALIASES, _NO_EFFECT, _SPECIAL, ServerOptions, _config, _resolve
from cormorant.constants import HTTPModes, Interfaces, LogLevels, Loops, SSLProtocols

import certs
from conftest import TESTS_DIR, can_connect, free_port

EXAMPLE = TESTS_DIR.parent / "examples" / "granian_migration.py"


def test_interfaces_has_granians_members():
    assert [m.name for m in Interfaces] == ["ASGI", "ASGINL", "RSGI", "WSGI"]
    assert Interfaces.ASGI == "asgi" and str(Interfaces.ASGI) == "asgi"
    assert isinstance(Interfaces.ASGI, str)


@pytest.mark.parametrize("interface", [Interfaces.ASGI, "asgi", "ASGI"])
def test_asgi_interface_is_served(interface):
    cfg = _config("app:app", {"interface": interface}, [])
    assert "lifespan" not in cfg  # the default, auto


def test_asginl_is_asgi_without_lifespan():
    assert _config("app:app", {"interface": Interfaces.ASGINL}, [])["lifespan"] == "off"
    explicit = _config("app:app", {"interface": Interfaces.ASGINL, "lifespan": "on"}, [])
    assert explicit["lifespan"] == "on"


@pytest.mark.parametrize("interface", [Interfaces.WSGI, "wsgi", "WSGI"])
def test_wsgi_interface_is_served(interface):
    cfg = _resolve(_config("app:app", {"interface": interface, "blocking_threads": 8}, []))
    assert (cfg["interface"], cfg["blocking_threads"]) == ("wsgi", 8)


def test_the_interface_is_detected_by_default():
    assert _resolve(_config("app:app", {}, []))["interface"] == "auto"


@pytest.mark.parametrize("interface, needle", [
    (Interfaces.RSGI, "interface 'rsgi' is granian's own protocol"),
    ("trio", "interface 'trio' is not supported"),
])
def test_other_interfaces_are_a_clear_error(interface, needle):
    with pytest.raises(ValueError) as err:
        cormorant.Server("app:app", interface=interface)
    assert needle in str(err.value)


def test_granian_enums_become_configuration_values():
    cfg = _resolve(_config("app:app", {"http": HTTPModes.http1, "loop": Loops.uvloop,
                                       "log_level": LogLevels.warn,
                                       "ssl_protocol_min": SSLProtocols.tls13}, []))
    assert (cfg["http"], cfg["loop"], cfg["log_level"], cfg["ssl_protocol_min"]) == (
        "1", "uvloop", "warning", "tls1.3")


def test_typed_options_name_every_accepted_keyword():
    # The TypedDict is what editors complete: it must list exactly the
    # keywords `_config` accepts.
    assert set(typing.get_type_hints(ServerOptions)) == set(_ALIASES) | set(_NO_EFFECT) | _SPECIAL


def _wait_lines(proc, log, text, count, timeout=15.0):
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) < count:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError("not ready: " + log.read_text())
        time.sleep(0.05)


def test_litellms_granian_call_serves_https_and_websockets(server_factory, tmp_path):
    from websockets.sync.client import connect

    pki = certs.make_pki(tmp_path / "pki")
    port = free_port()
    proc, log = server_factory.spawn([
        str(EXAMPLE), "apps.fastapi_app:app", "--port", str(port), "--workers", "2",
        "--runtime-threads", "4",
        "--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key),
    ])
    try:
        _wait_lines(proc, log, f"running on https://127.0.0.1:{port}", 2)
        assert can_connect("127.0.0.1", port)
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        with httpx.Client(verify=ctx, timeout=5) as client:
            r = client.get(f"https://127.0.0.1:{port}/json")
        assert r.status_code == 200
        assert r.json() == {"hello": "world", "numbers": [1, 2, 3]}
        with connect(f"wss://127.0.0.1:{port}/ws/items", ssl=ctx,
                     open_timeout=5, close_timeout=2) as ws:
            ws.send(json.dumps({"n": 21}))
            assert json.loads(ws.recv(timeout=5)) == {"n": 21, "double": 42}
        assert "runtime_threads has no effect in Cormorant" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert code == 0, log.read_text()
