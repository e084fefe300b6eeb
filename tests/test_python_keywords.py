"""Every keyword of the Python API sets the configuration field it names:
granian's and uvicorn's names map onto one `ServerConfig` (the extension
checks the field exists and takes that type). A unit test: no server runs."""

import json

import pytest

from cormorant import _ALIASES, _config, _cormorant

# A value for each field that the configuration holds as given...
SAME = dict(
    access_log=True, access_log_format="%(h)s %(r)s", app_dir="src", backlog=64,
    date_header=False, env_file=".env", factory=True, fd=5, host="0.0.0.0",
    http2_adaptive_window=True, http2_initial_connection_window_size=4194304,
    http2_initial_stream_window_size=2097152, http2_max_concurrent_streams=50,
    http2_max_frame_size=32768, http2_max_header_list_size=32768, lifespan="off",
    limit_concurrency=10, limit_max_requests=1000, limit_max_requests_jitter=50,
    limit_request_body=1024, limit_request_fields=50, limit_request_head_size=4096,
    limit_request_line=2048, log_config="logging.json", log_json=True, log_level="debug",
    loop="asyncio", metrics=True, metrics_address="0.0.0.0", metrics_port=9100,
    pid_file="server.pid", port=9001, proxy_headers=False, reload=True,
    reload_excludes=["*.tmp"], reload_includes=["*.py"], respawn_failed_workers=False,
    root_path="/api", server_header=False, ssl_ca_certs="ca.pem", ssl_certfile="cert.pem",
    ssl_ciphers="TLS13_AES_128_GCM_SHA256", ssl_crl="crl.pem", ssl_keyfile="key.pem",
    ssl_keyfile_password="secret", ssl_protocol_min="tls1.3", static_path_expires=60,
    uds="/tmp/cormorant.sock", use_colors=False, workers=3, workers_max_rss=512, ws="none",
    ws_max_queue=8, ws_max_size=1024, ws_per_message_deflate=False,
)
# ... and the fields the Python API converts: (given, held).
CONVERTED = {
    "forwarded_allow_ips": (["10.0.0.1", "10.0.0.2"], "10.0.0.1,10.0.0.2"),
    "headers": ([("x-a", "1")], ["x-a:1"]),
    "ssl_cert_reqs": (True, "required"),
    "reload_dirs": ("src", ["src"]),
    "static_path_mount": ("public", ["public"]),
    "static_path_route": ("/s", ["/s"]),
    # Seconds are floats.
    **{
        name: (n, float(n))
        for n, name in enumerate(
            [
                "http2_keep_alive_interval", "http2_keep_alive_timeout", "reload_delay",
                "timeout_graceful_shutdown", "timeout_keep_alive", "timeout_request_body",
                "timeout_request_head", "timeout_tls_handshake", "workers_lifetime",
                "ws_ping_interval", "ws_ping_timeout",
            ],
            start=2,
        )
    },
}
SAMPLES = {**{k: (v, v) for k, v in SAME.items()}, **CONVERTED}


def test_every_field_has_a_sample():
    assert set(_ALIASES.values()) <= set(SAMPLES)


@pytest.mark.parametrize("keyword, field", sorted(_ALIASES.items()))
def test_each_keyword_sets_its_field(keyword, field):
    given, expected = SAMPLES[field]
    cfg = _config("apps.pid:app", {keyword: given}, [])
    assert cfg[field] == expected, (keyword, cfg)
    # The field exists in the server's configuration, with this type.
    assert _cormorant.config_errors(json.dumps(cfg)) is None


def test_a_misspelt_field_is_caught_by_the_extension():
    assert "unknown field" in _cormorant.config_errors(json.dumps({"prot": 1}))
    assert "invalid type" in _cormorant.config_errors(json.dumps({"port": "x"}))
