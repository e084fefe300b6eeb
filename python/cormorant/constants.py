"""granian's option enums, with granian's member names and values.

Code written for granian moves over by changing its imports only::

    from cormorant import Server as Granian
    from cormorant.constants import Interfaces

    Granian("main:app", address="0.0.0.0", port=8000, interface=Interfaces.ASGI).serve()

Every member is a ``str``, so plain strings (``interface="asgi"``) work too.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "HTTPModes",
    "Interfaces",
    "LogLevels",
    "Loops",
    "RuntimeModes",
    "SSLProtocols",
    "TaskImpl",
]


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)


class Interfaces(_StrEnum):
    """The application interface (``interface=``). Cormorant serves ASGI and
    WSGI; ``ASGINL`` is ASGI without the lifespan protocol, as in granian.
    The default, the string ``"auto"``, tells them apart by the callable."""

    ASGI = "asgi"
    ASGINL = "asginl"
    RSGI = "rsgi"
    WSGI = "wsgi"


class HTTPModes(_StrEnum):
    """HTTP versions served (``http=``)."""

    auto = "auto"
    http1 = "1"
    http2 = "2"


class Loops(_StrEnum):
    """The event loop (``loop=``)."""

    auto = "auto"
    asyncio = "asyncio"
    rloop = "rloop"
    uvloop = "uvloop"
    winloop = "winloop"


class RuntimeModes(_StrEnum):
    """granian's runtime threading (``runtime_mode=``): accepted, no effect."""

    auto = "auto"
    mt = "mt"
    st = "st"


class TaskImpl(_StrEnum):
    """granian's task implementation (``task_impl=``): accepted, no effect."""

    asyncio = "asyncio"
    rust = "rust"


class SSLProtocols(_StrEnum):
    """The lowest TLS version accepted (``ssl_protocol_min=``)."""

    tls12 = "tls1.2"
    tls13 = "tls1.3"


class LogLevels(_StrEnum):
    """Log levels (``log_level=``); granian keeps these in ``granian.log``."""

    critical = "critical"
    error = "error"
    warning = "warning"
    warn = "warn"
    info = "info"
    debug = "debug"
    notset = "notset"
