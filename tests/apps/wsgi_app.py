"""A raw WSGI (PEP 3333) application for the WSGI tests, wrapped in
``wsgiref.validate`` (which checks the server's environ and objects, and the
app's side) unless ``WSGI_VALIDATE=0``.

/               Hello, world! (a one-item list)
/environ        JSON of the environ's str/bool/int/tuple values
/echo           the body, read with read(n) in 1000-byte pieces
/echo-all       the body, read with read() at once
/lines          JSON list of the body's lines (readline until b"")
/iter-lines     JSON list of the body's lines (iterating wsgi.input)
/digest         sha256 and length of the body, read in 64 KiB pieces
/gen?n=N        a generator of N "chunk<i>\\n" pieces (chunked)
/gen-length     a generator with the app's own Content-Length
/write          the write() callable, then an empty iterable
/empty          204 and an empty list
/big?mb=N       N MiB of b"x" in 64 KiB pieces, by a generator
/sleep?s=S      sleeps S seconds, then answers with the thread's ident
/spin?s=S       runs Python for S seconds without letting the GIL go
/file           a wsgi.file_wrapper over this file
/file-offset    a wsgi.file_wrapper over this file, read from byte 10
/raise          raises before start_response
/raise-late     yields a piece, then raises
/exc-info       start_response, then an error page through exc_info
/no-start       returns without calling start_response
/no-headers     calls start_response without its headers
/str-body       yields a str (not allowed)
/bad-status     an invalid status line
/hop            hop-by-hop headers, which the server leaves out
/errors         writes two lines to wsgi.errors
/closed         answers; a later GET /closed-count says how many
                responses' close() ran
"""

import hashlib
import json
import os
import threading
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

CLOSED = []


class Closing:
    """An iterable with close(), counting the calls."""

    def __init__(self, parts, fail_at=None):
        self.parts = parts
        self.fail_at = fail_at

    def __iter__(self):
        for i, p in enumerate(self.parts):
            if i == self.fail_at:
                raise RuntimeError("failed while iterating")
            yield p

    def close(self):
        CLOSED.append(1)


def _json(start_response, value, status="200 OK"):
    data = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


def _read_in(inp, size):
    parts = []
    while True:
        piece = inp.read(size)
        if not piece:
            return b"".join(parts)
        parts.append(piece)


def raw_app(environ, start_response):
    path = environ["PATH_INFO"]
    query = parse_qs(environ["QUERY_STRING"])
    inp = environ["wsgi.input"]
    if path.startswith("/environ"):
        return _json(start_response, {k: v for k, v in environ.items()
                                      if isinstance(v, (str, bool, int, tuple))})
    if path == "/echo":
        body = _read_in(inp, 1000)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/echo-all":
        body = inp.read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/lines":
        lines = []
        while True:
            line = inp.readline()
            if not line:
                break
            lines.append(line.decode())
        return _json(start_response, lines)
    if path == "/iter-lines":
        return _json(start_response, [line.decode() for line in inp])
    if path == "/digest":
        h, n = hashlib.sha256(), 0
        while True:
            piece = inp.read(65536)
            if not piece:
                break
            h.update(piece)
            n += len(piece)
        return _json(start_response, {"sha256": h.hexdigest(), "length": n})
    if path == "/gen":
        n = int(query.get("n", ["5"])[0])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"chunk%d\n" % i for i in range(n))
    if path == "/gen-length":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return (p for p in [b"01234", b"56789"])
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        write(b"pieces")
        return []
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/big":
        mb = int(query.get("mb", ["1"])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(mb << 20))])
        piece = b"x" * 65536
        return Closing([piece] * (mb * 16))
    if path == "/sleep":
        time.sleep(float(query.get("s", ["0.1"])[0]))
        return _json(start_response, {"thread": threading.get_ident()})
    if path == "/spin":
        # Python work holding the GIL (no wait at all) for S seconds.
        end = time.monotonic() + float(query.get("s", ["0.5"])[0])
        n = 0
        while time.monotonic() < end:
            n += 1
        return _json(start_response, {"spins": n})
    if path in ("/file", "/file-offset"):
        f = open(__file__, "rb")
        if path == "/file-offset":
            f.seek(10)
        start_response("200 OK", [("Content-Type", "text/x-python")])
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/raise":
        raise RuntimeError("raised before start_response")
    if path == "/raise-late":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing([b"first piece\n", b"never"], fail_at=1)
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("handled by the app")
        except ValueError:
            import sys
            start_response("500 Internal Server Error",
                           [("Content-Type", "text/plain"), ("X-Error", "1")], sys.exc_info())
            return [b"the app's error page"]
    if path == "/no-start":
        return []
    if path == "/no-headers":
        start_response("200 OK")
        return [b"never"]
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["text"]
    if path == "/bad-status":
        start_response("OK", [("Content-Type", "text/plain")])
        return [b"x"]
    if path == "/hop":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close"),
                                  ("Keep-Alive", "timeout=5"), ("X-Kept", "1")])
        return [b"hop"]
    if path == "/latin1-header":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Name", "caf\u00e9")])
        return [b"latin1"]
    if path == "/wide-header":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Price", "5 \u20ac")])
        return [b"wide"]
    if path == "/errors":
        err = environ["wsgi.errors"]
        err.write("first error line\nsecond ")
        err.write("error line\n")
        err.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"logged"]
    if path == "/closed":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing([b"a", b"b"])
    if path == "/closed-count":
        return _json(start_response, len(CLOSED))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


UNCHECKED = {"/echo-all", "/no-headers", "/file", "/file-offset", "/no-start", "/str-body", "/bad-status",
             "/hop", "/exc-info", "/raise-late", "/wide-header"}


def _pick(raw, checked):
    """The validator for paths where the app keeps PEP 3333; the raw app
    where it breaks it on purpose (the validator would raise first)."""
    def app(environ, start_response):
        use = raw if environ["PATH_INFO"] in UNCHECKED else checked
        return use(environ, start_response)
    return app


app = raw_app if os.environ.get("WSGI_VALIDATE") == "0" else _pick(raw_app, validator(raw_app))
