"""The Python half of the WSGI interface (PEP 3333): telling a WSGI app from
an ASGI one, ``wsgi.errors`` and ``wsgi.file_wrapper``. Requests themselves
are run by the extension."""

from __future__ import annotations

import inspect
import logging
import os
import stat
import threading
from typing import Any, Iterator

_errors_logger = logging.getLogger("cormorant.wsgi")


def detect_interface(app: Any) -> str:
    """'asgi' or 'wsgi', from the callable: a coroutine function (or an
    object whose ``__call__`` is one) is ASGI; a callable of two positional
    parameters, ``(environ, start_response)``, is WSGI; three is ASGI."""
    call = app if inspect.isroutine(app) or inspect.isclass(app) else type(app).__call__
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app):
        return "asgi"
    try:
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return "asgi"
    positional = [p for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return "asgi"
    required = [p for p in positional if p.default is p.empty]
    return "wsgi" if len(required) == 2 or (len(positional) == 2 and not required) else "asgi"


class ErrorStream:
    """``wsgi.errors``: what the app writes goes to logging, a line at a
    time (logger ``cormorant.wsgi``, level ERROR)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partial: dict[int, str] = {}

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"wsgi.errors.write() takes a str, not {type(s).__name__}")
        key = threading.get_ident()
        with self._lock:
            text = self._partial.pop(key, "") + s
            *lines, rest = text.split("\n")
            if rest:
                self._partial[key] = rest
        for line in lines:
            _errors_logger.error(line)
        return len(s)

    def writelines(self, seq: Any) -> None:
        for s in seq:
            self.write(s)

    def flush(self) -> None:
        with self._lock:
            rest = self._partial.pop(threading.get_ident(), "")
        if rest:
            _errors_logger.error(rest)


class FileWrapper:
    """``wsgi.file_wrapper``: a file's blocks as the response iterable. When
    the file is a regular one read from its start, the server sends it
    itself (``sendfile`` where the connection allows) instead of iterating."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def close(self) -> None:
        """Closes the file (the server calls it once the response is over)."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data: bytes = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def sendable_path(self) -> str | None:
        """The file's absolute path, if the server can send it whole: a
        regular file at position 0, still at the path it was opened as."""
        f = self.filelike
        try:
            name = f.name
            fd = f.fileno()
            if not isinstance(name, str) or f.tell() != 0:
                return None
            opened = os.fstat(fd)
            path = os.path.abspath(name)
            named = os.stat(path)
        except (AttributeError, OSError, ValueError, TypeError):
            return None
        if not stat.S_ISREG(opened.st_mode):
            return None
        if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
            return None
        return path
