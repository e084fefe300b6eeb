"""The keywords of every setting, typed: generated from the extension's
`ServerConfig` (native/python/src/settings_stub.rs). Do not edit: run
`CORMORANT_BLESS=1 cargo test -p cormorant settings_stub`.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, TypedDict, Union

_Path = Union[str, "os.PathLike[str]"]
_Paths = Union[_Path, Sequence[_Path]]
_Seconds = Union[int, float]
_Header = Union[str, Tuple[str, str]]


class Settings(TypedDict, total=False):
    """One keyword per setting, named as the setting (`--loop` is `loop`)."""

    factory: bool
    app_dir: _Path
    host: str
    port: int
    uds: Optional[_Path]
    fd: Optional[int]
    backlog: int
    workers: Union[int, str]
    loop: str
    interface: str
    blocking_threads: int
    lifespan: str
    log_level: Union[str, int]
    access_log: bool
    root_path: str
    timeout_keep_alive: _Seconds
    timeout_request_head: _Seconds
    timeout_request_body: Optional[_Seconds]
    timeout_graceful_shutdown: Optional[_Seconds]
    health_path: Optional[_Path]
    drain_delay: _Seconds
    request_id: bool
    request_start_header: bool
    max_queue_time: Optional[int]
    limit_concurrency: Optional[int]
    limit_max_requests: Optional[int]
    server_header: bool
    date_header: bool
    headers: Optional[Iterable[_Header]]
    limit_request_line: int
    limit_request_fields: int
    limit_request_head_size: int
    limit_request_body: int
    ws: Union[str, bool]
    ws_max_size: int
    ws_max_queue: int
    ws_ping_interval: Optional[_Seconds]
    ws_ping_timeout: Optional[_Seconds]
    ws_per_message_deflate: bool
    http: Union[str, int]
    http2_max_concurrent_streams: int
    http2_initial_stream_window_size: int
    http2_initial_connection_window_size: int
    http2_adaptive_window: bool
    http2_max_frame_size: int
    http2_max_header_list_size: int
    http2_keep_alive_interval: Optional[_Seconds]
    http2_keep_alive_timeout: _Seconds
    http3: bool
    http3_max_concurrent_streams: int
    http3_idle_timeout: Optional[_Seconds]
    http3_stream_window_size: int
    http3_connection_window_size: int
    http3_0rtt: bool
    ssl_certfile: Optional[_Path]
    ssl_keyfile: Optional[_Path]
    ssl_keyfile_password: Optional[str]
    ssl_ca_certs: Optional[_Path]
    ssl_cert_reqs: Union[str, int, bool]
    ssl_crl: Optional[_Path]
    ssl_protocol_min: str
    ssl_ciphers: Optional[str]
    timeout_tls_handshake: _Seconds
    access_log_format: Optional[str]
    log_json: bool
    use_colors: Optional[bool]
    log_config: Union[_Path, Dict[str, Any], None]
    env_file: Optional[_Path]
    reload: bool
    reload_dirs: Optional[_Paths]
    reload_includes: Optional[_Paths]
    reload_excludes: Optional[_Paths]
    reload_delay: _Seconds
    metrics: bool
    metrics_address: str
    metrics_port: int
    proxy_headers: bool
    forwarded_allow_ips: Optional[Union[str, Sequence[str]]]
    proxy_protocol: str
    static_path_route: Optional[_Paths]
    static_path_mount: Optional[_Paths]
    static_path_expires: int
    limit_max_requests_jitter: int
    workers_lifetime: Optional[_Seconds]
    timeout_worker_healthcheck: Optional[_Seconds]
    workers_max_rss: Optional[int]
    respawn_failed_workers: bool
    pid_file: Optional[_Path]
    user: Optional[str]
    group: Optional[str]
    umask: Optional[int]


# Durations for which None means 0, off (`ws_ping_interval=None`: no pings).
NONE_IS_OFF = (
    "timeout_request_body",
    "ws_ping_interval",
    "ws_ping_timeout",
    "http2_keep_alive_interval",
    "http3_idle_timeout",
)
