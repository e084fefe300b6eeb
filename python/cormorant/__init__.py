"""Cormorant: a fast, correct ASGI server for Python, written in Rust.

    from cormorant import Server
    Server("pkg.mod:app", address="127.0.0.1", port=8000, workers=2).serve()

or, like ``uvicorn.run``::

    import cormorant
    cormorant.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

from ._cormorant import ClientDisconnected, StartupError, __version__
from ._options import ServerOptions
from ._settings import NONE_IS_OFF, Settings

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

__all__ = ["ClientDisconnected", "Server", "ServerOptions", "StartupError", "run", "__version__"]

# Keyword names accepted by Server/run, mapped to settings: each setting's
# own name, and uvicorn's and granian's names where they mean the same thing.
_ALIASES: Dict[str, str] = {
    **{name: name for name in Settings.__annotations__},
    "address": "host",  # granian
    "log_access": "access_log",  # granian
    "log_access_format": "access_log_format",  # granian
    "log_dictconfig": "log_config",  # granian: a dict (written to a JSON file)
    "env_files": "env_file",  # granian: a list of files
    "reload_paths": "reload_dirs",  # granian
    "reload_ignore_patterns": "reload_excludes",  # granian
    "reload_ignore_dirs": "reload_excludes",  # granian
    "workers_kill_timeout": "timeout_graceful_shutdown",  # granian
    "working_dir": "app_dir",  # granian
    "h11_max_incomplete_event_size": "limit_request_head_size",  # uvicorn
    "url_path_prefix": "root_path",  # granian
    "websockets": "ws",  # granian: True/False
    "ssl_cert": "ssl_certfile",  # granian
    "ssl_key": "ssl_keyfile",  # granian
    "ssl_key_password": "ssl_keyfile_password",  # granian
    "ssl_ca": "ssl_ca_certs",  # granian
    "ssl_client_verify": "ssl_cert_reqs",  # granian: True/False
    "max_requests_before_restart": "limit_max_requests",  # LiteLLM
}

# Keywords `_config` reads itself rather than through `_ALIASES`.
_SPECIAL = {"interface", "log_enabled", "http1_settings", "http2_settings"}

# granian's HTTP/2 settings object (``http2_settings=HTTP2Settings(...)``):
# its attributes, mapped to ours.
_HTTP2_SETTINGS = {
    "adaptive_window": "http2_adaptive_window",
    "initial_connection_window_size": "http2_initial_connection_window_size",
    "initial_stream_window_size": "http2_initial_stream_window_size",
    "keep_alive_interval": "http2_keep_alive_interval",
    "keep_alive_timeout": "http2_keep_alive_timeout",
    "max_concurrent_streams": "http2_max_concurrent_streams",
    "max_frame_size": "http2_max_frame_size",
    "max_headers_size": "http2_max_header_list_size",
}

# Keywords of granian's and uvicorn's constructors that tune their own
# internals and have no counterpart here: accepted, so code moves over
# unchanged, and named once in the log.
_NO_EFFECT = {
    "runtime_threads": "one I/O thread per worker serves every connection",
    "runtime_blocking_threads": "the I/O thread never blocks",
    "runtime_mode": "one I/O thread per worker serves every connection",
    "blocking_threads_idle_timeout": "WSGI threads live as long as their worker",
    "task_impl": "tasks are the event loop's own",
    "backpressure": "use limit_concurrency to bound requests in flight",
    "respawn_interval": "workers are replaced at once",
    "rss_sample_interval": "memory is sampled every second",
    "rss_samples": "one sample over the limit retires a worker",
    "reload_tick": "changes are delivered by inotify, not polled",
    "reload_filter": "use reload_includes and reload_excludes",
    "reload_ignore_worker_failure": "a worker that fails to load always waits for the next change",
    "timeout_notify": "workers report readiness themselves",
    "callback_notify": "workers report readiness themselves",
    "ssl_version": "use ssl_protocol_min",
}

def _dictconfig_file(config: Dict[str, Any]) -> str:
    """granian's log_dictconfig is a dict: hand it to the workers as a file."""
    import tempfile

    f = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="cormorant-log-", delete=False)
    with f:
        json.dump(config, f)
    return f.name


def _value(v: Any) -> Any:
    # granian passes enums (Interfaces.ASGI...): use their value.
    return getattr(v, "value", v)


def _json_value(v: Any) -> Any:
    """JSON for what `json` does not know: paths and enums."""
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if hasattr(v, "value"):
        return v.value
    raise TypeError(f"{type(v).__name__} is not a configuration value")


def _config(target: Optional[str], kwargs: Dict[str, Any], notices: List[str]) -> Dict[str, Any]:
    """The configuration for `kwargs`, as the extension reads it: each
    keyword renamed to its field; the extension reads and checks the
    values. Keywords that change nothing here add a line to `notices`."""
    cfg: Dict[str, Any] = {"target": target}
    interface = str(_value(kwargs.pop("interface", "auto"))).lower()
    if interface == "rsgi":
        raise ValueError(
            "interface 'rsgi' is granian's own protocol, which Cormorant does not serve: "
            "use the application's ASGI or WSGI interface"
        )
    if interface == "asginl":
        # granian's ASGI without the lifespan protocol.
        kwargs.setdefault("lifespan", "off")
        interface = "asgi"
    elif interface == "asgi3":
        interface = "asgi"
    elif interface not in ("asgi", "wsgi", "auto"):
        raise ValueError(f"interface {interface!r} is not supported: expected 'auto', 'asgi' or 'wsgi'")
    cfg["interface"] = interface
    for key in sorted(k for k in kwargs if k in _NO_EFFECT):
        kwargs.pop(key)
        notices.append(f"{key} has no effect in Cormorant: {_NO_EFFECT[key]}")
    if kwargs.pop("log_enabled", True) is False:
        kwargs.setdefault("log_level", "critical")
        kwargs["access_log"] = False
    h1 = kwargs.pop("http1_settings", None)
    if h1 is not None:
        # granian's HTTP1Settings: milliseconds and bytes.
        if getattr(h1, "header_read_timeout", None) is not None:
            kwargs.setdefault("timeout_request_head", h1.header_read_timeout / 1000)
        if getattr(h1, "max_buffer_size", None) is not None:
            kwargs.setdefault("limit_request_head_size", h1.max_buffer_size)
    settings = kwargs.pop("http2_settings", None)
    if settings is not None:
        for attr, name in _HTTP2_SETTINGS.items():
            setting = getattr(settings, attr, None)
            if setting is not None:
                kwargs.setdefault(name, setting)
    for key, value in kwargs.items():
        field = _ALIASES.get(key)
        if field is None:
            raise TypeError(f"unexpected keyword argument {key!r}")
        if field == "log_config" and isinstance(value, dict):
            value = _dictconfig_file(value)
        if field in ("log_config", "env_file") and isinstance(value, (list, tuple)):
            # granian's env_files: a list.
            if len(value) > 1:
                raise ValueError(f"{key}: only one file is supported, got {len(value)}")
            value = value[0] if value else None
        if isinstance(cfg.get(field), list) and isinstance(value, (list, tuple)):
            # Two keywords for one list (granian's reload_ignore_dirs and
            # reload_ignore_patterns) add up.
            value = cfg[field] + list(value)
        elif isinstance(value, tuple):
            value = list(value)
        cfg[field] = value
    if cfg.get("workers") is None:
        env = os.environ.get("WEB_CONCURRENCY", "").strip()
        # A count, or "auto"; the extension refuses anything else.
        cfg["workers"] = (int(env) if env.isdigit() else env) if env else 1
    # None is "the default", except where it means off (no pings).
    return {k: v for k, v in cfg.items() if v is not None or k in NONE_IS_OFF}


def _resolve(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The whole configuration as the extension reads `cfg`: every field,
    each value in its one spelling. ValueError for a wrong value."""
    from . import _cormorant

    resolved: Dict[str, Any] = json.loads(_cormorant.resolve_config(json.dumps(cfg, default=_json_value)))
    return resolved


class Server:
    """A Cormorant server for one ASGI or WSGI application.

    ``target`` is ``"module:attribute"`` (required for several workers) or
    the application object itself. Keywords follow uvicorn's names, and
    granian's where they mean the same thing (``address``, ``log_access``,
    ``url_path_prefix``, ``interface="wsgi"``, ``blocking_threads``).
    """

    config: Dict[str, Any]

    def __init__(
        self, target: Union[str, Callable[..., Any]], **kwargs: Unpack[ServerOptions]
    ) -> None:
        self._notices: List[str] = []
        if isinstance(target, str):
            self._app = None
            self.config = _resolve(_config(target, dict(kwargs), self._notices))
        else:
            self._app = target
            self.config = _resolve(_config(None, dict(kwargs), self._notices))
            if self.config.get("workers", 1) > 1:
                raise ValueError(
                    "pass the application as an import string such as 'main:app' "
                    "to run several workers"
                )

    def serve(self) -> None:
        """Serve until stopped by SIGINT or SIGTERM. Raises SystemExit on failure."""
        from . import _cormorant, _worker

        if self._notices:
            _worker.setup_logging(self.config.get("log_level", "info"))
            for line in self._notices:
                logging.getLogger("cormorant.error").info(line)
        code = _cormorant.serve(json.dumps(self.config), self._app)
        if code:
            raise SystemExit(code)


def run(app: Union[str, Callable[..., Any]], **kwargs: Unpack[ServerOptions]) -> None:
    """Serve ``app`` like ``uvicorn.run``."""
    Server(app, **kwargs).serve()
