"""The keywords `Server` and `run` take, typed, so that editors complete
them and type checkers catch a misspelt one.

Every setting's own name comes from `_settings.Settings` (generated from
the extension's configuration); this adds the names other servers give
them (granian's, uvicorn's), which `cormorant._ALIASES` maps to settings,
and the keywords accepted for their sake alone.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from ._settings import Settings, _Path, _Paths, _Seconds


class ServerOptions(Settings, total=False):
    """Every keyword of `cormorant.Server` and `cormorant.run`."""

    # Where to listen.
    address: str  # granian
    # What to serve, and how.
    interface: str  # "auto", "asgi" or "wsgi" (or cormorant.constants.Interfaces.WSGI)
    working_dir: Optional[_Path]  # granian
    url_path_prefix: Optional[str]  # granian
    # Logging.
    log_enabled: bool  # granian
    log_access: bool  # granian
    log_access_format: Optional[str]  # granian
    log_dictconfig: Optional[Dict[str, Any]]  # granian
    env_files: Optional[Sequence[_Path]]  # granian
    # Development reload.
    reload_paths: Optional[_Paths]  # granian
    reload_ignore_patterns: Optional[_Paths]  # granian
    reload_ignore_dirs: Optional[_Paths]  # granian
    # Timeouts and limits.
    workers_kill_timeout: Optional[_Seconds]  # granian
    max_requests_before_restart: Optional[int]  # LiteLLM
    h11_max_incomplete_event_size: Optional[int]  # uvicorn
    # WebSocket.
    websockets: bool  # granian
    # HTTP/1.1 and HTTP/2.
    http1_settings: Any  # granian's HTTP1Settings
    http2_settings: Any  # granian's HTTP2Settings
    # TLS.
    ssl_cert: Optional[_Path]  # granian
    ssl_key: Optional[_Path]  # granian
    ssl_key_password: Optional[str]  # granian
    ssl_ca: Optional[_Path]  # granian
    ssl_client_verify: bool  # granian
    # granian's and uvicorn's tuning of their own internals: accepted, no
    # effect here (each is named once in the log).
    runtime_threads: int
    runtime_blocking_threads: Optional[int]
    runtime_mode: str
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
    callback_notify: Any
    ssl_version: Any
