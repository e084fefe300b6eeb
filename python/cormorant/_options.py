"""The keywords `Server` and `run` take, typed, so that editors complete
them and type checkers catch a misspelt one.

uvicorn's names and granian's names are both here where they mean the
same thing; `cormorant._ALIASES` maps each to its configuration key.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Literal, Optional, Sequence, Tuple, TypedDict, Union

_Path = Union[str, "os.PathLike[str]"]
_Paths = Union[_Path, Sequence[_Path]]
_Seconds = Union[int, float]
_Header = Union[str, Tuple[str, str]]


class ServerOptions(TypedDict, total=False):
    """Every keyword of `cormorant.Server` and `cormorant.run`."""

    # Where to listen.
    host: str
    address: str  # granian
    port: int
    uds: Optional[_Path]
    fd: Optional[int]
    backlog: int
    # What to serve, and how.
    interface: str  # "asgi" (or cormorant.constants.Interfaces.ASGI)
    http: str  # "auto", "1", "2" (uvicorn's "h11" and "httptools" mean auto)
    factory: bool
    app_dir: Optional[_Path]
    working_dir: Optional[_Path]  # granian
    workers: Optional[int]
    loop: str  # "auto", "asyncio", "uvloop"
    lifespan: Literal["auto", "on", "off"]
    root_path: str
    url_path_prefix: Optional[str]  # granian
    # Logging.
    log_level: Union[str, int, None]
    log_enabled: bool  # granian
    access_log: bool
    log_access: bool  # granian
    access_log_format: Optional[str]
    log_access_format: Optional[str]  # granian
    log_json: bool
    use_colors: Optional[bool]
    log_config: Union[_Path, Dict[str, Any], None]
    log_dictconfig: Optional[Dict[str, Any]]  # granian
    env_file: Optional[_Path]
    env_files: Optional[Sequence[_Path]]  # granian
    # Development reload.
    reload: bool
    reload_dirs: Optional[_Paths]
    reload_paths: Optional[_Paths]  # granian
    reload_includes: Optional[_Paths]
    reload_excludes: Optional[_Paths]
    reload_ignore_patterns: Optional[_Paths]  # granian
    reload_ignore_dirs: Optional[_Paths]  # granian
    reload_delay: _Seconds
    # Timeouts and limits.
    timeout_keep_alive: _Seconds
    timeout_request_head: _Seconds
    timeout_request_body: _Seconds
    timeout_graceful_shutdown: Optional[_Seconds]
    workers_kill_timeout: Optional[_Seconds]  # granian
    timeout_tls_handshake: _Seconds
    limit_concurrency: Optional[int]
    limit_max_requests: Optional[int]
    max_requests_before_restart: Optional[int]  # LiteLLM
    limit_max_requests_jitter: int
    limit_request_line: int
    limit_request_fields: int
    limit_request_head_size: int
    h11_max_incomplete_event_size: Optional[int]  # uvicorn
    limit_request_body: int
    # Workers.
    workers_lifetime: Optional[_Seconds]  # granian
    workers_max_rss: Optional[int]  # granian, MiB
    respawn_failed_workers: bool  # granian
    pid_file: Optional[_Path]  # granian
    # Response headers.
    server_header: bool
    date_header: bool
    headers: Optional[Iterable[_Header]]
    # WebSocket.
    ws: Union[str, bool]
    websockets: bool  # granian
    ws_max_size: int
    ws_max_queue: int
    ws_ping_interval: Optional[_Seconds]
    ws_ping_timeout: Optional[_Seconds]
    ws_per_message_deflate: bool
    # HTTP/1.1 and HTTP/2.
    http1_settings: Any  # granian's HTTP1Settings
    http2_settings: Any  # granian's HTTP2Settings
    http2_max_concurrent_streams: int
    http2_initial_stream_window_size: int
    http2_initial_connection_window_size: int
    http2_adaptive_window: bool
    http2_max_frame_size: int
    http2_max_header_list_size: int
    http2_keep_alive_interval: Optional[_Seconds]
    http2_keep_alive_timeout: _Seconds
    # TLS.
    ssl_certfile: Optional[_Path]
    ssl_cert: Optional[_Path]  # granian
    ssl_keyfile: Optional[_Path]
    ssl_key: Optional[_Path]  # granian
    ssl_keyfile_password: Optional[str]
    ssl_key_password: Optional[str]  # granian
    ssl_ca_certs: Optional[_Path]
    ssl_ca: Optional[_Path]  # granian
    ssl_cert_reqs: Union[str, int, bool]  # "none"/"optional"/"required", ssl.VerifyMode
    ssl_client_verify: bool  # granian
    ssl_crl: Optional[_Path]
    ssl_protocol_min: str  # "tls1.2", "tls1.3"
    ssl_ciphers: Optional[str]
    # Proxies and static files.
    proxy_headers: bool
    forwarded_allow_ips: Union[str, Sequence[str], None]
    static_path_route: Optional[_Paths]
    static_path_mount: Optional[_Paths]
    static_path_expires: int
    # Metrics.
    metrics: bool
    metrics_address: str
    metrics_port: int
    # granian's and uvicorn's tuning of their own internals: accepted, no
    # effect here (each is named once in the log).
    runtime_threads: int
    runtime_blocking_threads: Optional[int]
    runtime_mode: str
    blocking_threads: Optional[int]
    blocking_threads_idle_timeout: _Seconds
    task_impl: str
    backpressure: Optional[int]
    respawn_interval: _Seconds
    rss_sample_interval: _Seconds
    rss_samples: int
    reload_tick: _Seconds
    reload_filter: Any
    reload_ignore_worker_failure: bool
    timeout_notify: Optional[_Seconds]
    timeout_worker_healthcheck: Optional[_Seconds]
    callback_notify: Any
    ssl_version: Any
