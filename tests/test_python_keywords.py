"""Every keyword of the Python API sets the configuration field it names,
and only that field: granian's and uvicorn's names map onto one
`ServerConfig`, whose values the extension reads (`_resolve` returns the
configuration as the server holds it). A unit test: no server runs."""

import json
import logging
import pathlib
import ssl

import pytest

from cormorant import _ALIASES, _config, _cormorant, _resolve
from cormorant._settings import Settings

# A value for each field that the configuration holds as given...
SAME = dict(
    access_log=True, access_log_format="%(h)s %(r)s", app_dir="src", backlog=64,
    date_header=False, env_file=".env", health_path="/healthz", factory=True, fd=5, host="0.0.0.0",
    http2_adaptive_window=True, http2_initial_connection_window_size=4194304,
    http2_initial_stream_window_size=2097152, http2_max_concurrent_streams=50,
    http2_max_frame_size=32768, http2_max_header_list_size=32768, http3=True,
    http3_0rtt=True, http3_connection_window_size=4194304, http3_max_concurrent_streams=20,
    http3_stream_window_size=65536, lifespan="off", interface="wsgi", blocking_threads=8,
    limit_concurrency=10, limit_max_requests=1000, limit_max_requests_jitter=50,
    limit_request_body=1024, limit_request_fields=50, limit_request_head_size=4096,
    limit_request_line=2048, log_config="logging.json", max_queue_time=250, log_json=True, log_level="debug",
    loop="asyncio", metrics=True, metrics_address="0.0.0.0", metrics_port=9100,
    pid_file="server.pid", port=9001, proxy_headers=False, proxy_protocol="v2", reload=True,
    reload_excludes=["*.tmp"], reload_includes=["*.py"], request_id=True,
    request_start_header=True, respawn_failed_workers=False,
    root_path="/api", server_header=False, ssl_ca_certs="ca.pem", ssl_certfile="cert.pem",
    ssl_ciphers="TLS13_AES_128_GCM_SHA256", ssl_crl="crl.pem", ssl_keyfile="key.pem",
    ssl_keyfile_password="secret", ssl_protocol_min="tls1.3", static_path_expires=60,
    uds="/tmp/cormorant.sock", user="nobody", group="nogroup", use_colors=False, workers=3,
    workers_max_rss=512, ws="none", ws_max_queue=8, ws_max_size=1024, ws_per_message_deflate=False,
)
# ... and the fields the extension reads from another form: (given, held).
CONVERTED = {
    "http": ("http1", "1"),
    "forwarded_allow_ips": (["10.0.0.1", "10.0.0.2"], "10.0.0.1,10.0.0.2"),
    "headers": ([("x-a", "1")], ["x-a:1"]),
    "ssl_cert_reqs": (True, "required"),
    "reload_dirs": ("src", ["src"]),
    "static_path_mount": ("public", ["public"]),
    "static_path_route": ("/s", ["/s"]),
    # A mask is written as octal text, as on the command line.
    "umask": (0o027, "027"),
    # Seconds are floats.
    **{
        name: (n, float(n))
        for n, name in enumerate(
            [
                "drain_delay", "http2_keep_alive_interval", "http2_keep_alive_timeout",
                "http3_idle_timeout", "reload_delay",
                "timeout_graceful_shutdown", "timeout_keep_alive", "timeout_request_body",
                "timeout_worker_healthcheck",
                "timeout_request_head", "timeout_tls_handshake", "workers_lifetime",
                "ws_ping_interval", "ws_ping_timeout",
            ],
            start=2,
        )
    },
}
SAMPLES = {**{k: (v, v) for k, v in SAME.items()}, **CONVERTED}


DEFAULTS = _resolve(_config("apps.pid:app", {}, []))


def test_every_setting_is_a_keyword():
    # The typed keywords are generated from the extension's configuration.
    assert set(Settings.__annotations__) == set(DEFAULTS) - {"target"}


def test_every_field_has_a_sample():
    assert set(_ALIASES.values()) <= set(SAMPLES)
    assert set(_ALIASES.values()) <= set(DEFAULTS)


@pytest.mark.parametrize("keyword, field", sorted(_ALIASES.items()))
def test_each_keyword_sets_its_field(keyword, field):
    given, expected = SAMPLES[field]
    held = _resolve(_config("apps.pid:app", {keyword: given}, []))
    assert held[field] == expected, (keyword, held[field])
    changed = {k for k in held if held[k] != DEFAULTS[k]}
    assert changed <= {field}, (keyword, changed)


@pytest.mark.parametrize("keyword, given, field, held", [
    ("log_level", logging.DEBUG, "log_level", "debug"),
    ("log_level", "WARN", "log_level", "warning"),
    ("ssl_cert_reqs", ssl.CERT_OPTIONAL, "ssl_cert_reqs", "optional"),
    ("ssl_client_verify", True, "ssl_cert_reqs", "required"),
    ("websockets", False, "ws", "none"),
    ("ws", "wsproto", "ws", "auto"),
    ("http", "h11", "http", "auto"),
    ("ssl_certfile", pathlib.Path("c.pem"), "ssl_certfile", "c.pem"),
    ("ws_ping_interval", None, "ws_ping_interval", 0.0),  # uvicorn: None, no pings
    ("timeout_keep_alive", None, "timeout_keep_alive", 5.0),  # None: the default
    ("ws_ping_interval", 0, "ws_ping_interval", 0.0),
    ("reload_ignore_dirs", ("a", "b"), "reload_excludes", ["a", "b"]),
])
def test_values_in_the_forms_uvicorn_and_granian_take(keyword, given, field, held):
    assert _resolve(_config("apps.pid:app", {keyword: given}, []))[field] == held


def test_two_keywords_for_one_list_add_up():
    cfg = _config("apps.pid:app", {"reload_ignore_dirs": ["a"], "reload_ignore_patterns": ["*.b"]}, [])
    assert _resolve(cfg)["reload_excludes"] == ["a", "*.b"]


def test_a_wrong_value_is_a_value_error():
    with pytest.raises(ValueError, match="expected one of"):
        _resolve(_config("apps.pid:app", {"http": "3"}, []))
    with pytest.raises(ValueError, match="invalid configuration"):
        _resolve(_config("apps.pid:app", {"timeout_keep_alive": -1}, []))


def test_a_misspelt_field_is_caught_by_the_extension():
    with pytest.raises(ValueError, match="unknown field"):
        _cormorant.resolve_config(json.dumps({"prot": 1}))
    with pytest.raises(ValueError, match="invalid type"):
        _cormorant.resolve_config(json.dumps({"port": "x"}))
