"""Every keyword of the Python API sets the configuration field it names:
granian's and uvicorn's names map onto one `ServerConfig` (the extension
checks the field exists and takes that type). A unit test: no server runs."""

import json

import pytest

from cormorant import _ALIASES, _config, _cormorant

# A value for each field, as given, and as the configuration must hold it.
SAMPLES = {
    "access_log": (True, True),
    "access_log_format": ("%(h)s %(r)s", "%(h)s %(r)s"),
    "app_dir": ("src", "src"),
    "backlog": (64, 64),
    "date_header": (False, False),
    "env_file": (".env", ".env"),
    "factory": (True, True),
    "fd": (5, 5),
    "forwarded_allow_ips": (["10.0.0.1", "10.0.0.2"], "10.0.0.1,10.0.0.2"),
    "headers": ([("x-a", "1")], ["x-a:1"]),
    "host": ("0.0.0.0", "0.0.0.0"),
    "http2_adaptive_window": (True, True),
    "http2_initial_connection_window_size": (4194304, 4194304),
    "http2_initial_stream_window_size": (2097152, 2097152),
    "http2_keep_alive_interval": (15, 15.0),
    "http2_keep_alive_timeout": (5, 5.0),
    "http2_max_concurrent_streams": (50, 50),
    "http2_max_frame_size": (32768, 32768),
    "http2_max_header_list_size": (32768, 32768),
    "lifespan": ("off", "off"),
    "limit_concurrency": (10, 10),
    "limit_max_requests": (1000, 1000),
    "limit_max_requests_jitter": (50, 50),
    "limit_request_body": (1024, 1024),
    "limit_request_fields": (50, 50),
    "limit_request_head_size": (4096, 4096),
    "limit_request_line": (2048, 2048),
    "log_config": ("logging.json", "logging.json"),
    "log_json": (True, True),
    "log_level": ("debug", "debug"),
    "loop": ("asyncio", "asyncio"),
    "metrics": (True, True),
    "metrics_address": ("0.0.0.0", "0.0.0.0"),
    "metrics_port": (9100, 9100),
    "pid_file": ("server.pid", "server.pid"),
    "port": (9001, 9001),
    "proxy_headers": (False, False),
    "reload": (True, True),
    "reload_delay": (1, 1.0),
    "reload_dirs": ("src", ["src"]),
    "reload_excludes": (["*.tmp"], ["*.tmp"]),
    "reload_includes": (["*.py"], ["*.py"]),
    "respawn_failed_workers": (False, False),
    "root_path": ("/api", "/api"),
    "server_header": (False, False),
    "ssl_ca_certs": ("ca.pem", "ca.pem"),
    "ssl_cert_reqs": (True, "required"),
    "ssl_certfile": ("cert.pem", "cert.pem"),
    "ssl_ciphers": ("TLS13_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"),
    "ssl_crl": ("crl.pem", "crl.pem"),
    "ssl_keyfile": ("key.pem", "key.pem"),
    "ssl_keyfile_password": ("secret", "secret"),
    "ssl_protocol_min": ("tls1.3", "tls1.3"),
    "static_path_expires": (60, 60),
    "static_path_mount": ("public", ["public"]),
    "static_path_route": ("/s", ["/s"]),
    "timeout_graceful_shutdown": (7, 7.0),
    "timeout_keep_alive": (3, 3.0),
    "timeout_request_body": (9, 9.0),
    "timeout_request_head": (4, 4.0),
    "timeout_tls_handshake": (2, 2.0),
    "uds": ("/tmp/cormorant.sock", "/tmp/cormorant.sock"),
    "use_colors": (False, False),
    "workers": (3, 3),
    "workers_lifetime": (60, 60.0),
    "workers_max_rss": (512, 512),
    "ws": ("none", "none"),
    "ws_max_queue": (8, 8),
    "ws_max_size": (1024, 1024),
    "ws_per_message_deflate": (False, False),
    "ws_ping_interval": (5, 5.0),
    "ws_ping_timeout": (6, 6.0),
}


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
