"""A tiny HTTP/1.x client over raw sockets, for protocol-level tests.

It parses exactly what is on the wire and keeps the framing details
(chunked or not, the raw chunks, whether the last chunk arrived), so tests
can assert on them.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Optional


class IncompleteResponse(Exception):
    """The connection closed (or timed out) in the middle of a response."""

    def __init__(self, msg: str, partial: bytes) -> None:
        super().__init__(msg)
        self.partial = partial


@dataclass
class RawResponse:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes
    chunked: bool = False
    chunks: list[bytes] = field(default_factory=list)

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None


class RawConnection:
    """One TCP (or Unix) connection with a read buffer, over TLS when given
    a client context."""

    def __init__(self, host: str, port: int, timeout: float = 5.0,
                 tls: Optional[ssl.SSLContext] = None) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.closed_by_peer = False

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        """Reads more bytes; False at EOF."""
        if self.closed_by_peer:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed_by_peer = True
            return False
        self.buf += data
        return True

    def read_until(self, marker: bytes) -> bytes:
        """Returns bytes up to and including `marker` (consumed)."""
        while marker not in self.buf:
            if not self._fill():
                raise IncompleteResponse(f"EOF before {marker!r}", self.buf)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise IncompleteResponse(f"EOF before {n} bytes", self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def seconds_until_closed(self) -> float:
        """Waits for the peer to close an idle connection, which must send
        nothing meanwhile; returns how long that took."""
        started = time.monotonic()
        assert self.read_until_close() == b"", "an idle connection gets no response"
        return time.monotonic() - started

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """True if the peer closes the connection within `timeout` (any
        pending bytes are discarded)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if not self._fill():
                        return True
                except socket.timeout:
                    return False
            return False
        finally:
            self.sock.settimeout(old)

    def peek(self, timeout: float) -> bytes:
        """Returns what arrives within `timeout` without consuming it."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            try:
                self._fill()
            except socket.timeout:
                pass
            return self.buf
        finally:
            self.sock.settimeout(old)

    def read_response(self, head_request: bool = False) -> RawResponse:
        """Reads and parses one response (skipping nothing: a 1xx response
        is returned as is)."""
        raw_head = self.read_until(b"\r\n\r\n")
        lines = raw_head[:-4].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        status_s, _, reason = rest.partition(b" ")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        resp = RawResponse(
            status=int(status_s),
            reason=reason.decode("latin-1"),
            version=version.decode("latin-1"),
            headers=headers,
            body=b"",
            raw_head=raw_head,
        )
        if head_request or resp.status < 200 or resp.status in (204, 304):
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None and "chunked" in te.lower():
            resp.chunked = True
            body = b""
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    # Trailers (if any) end with an empty line.
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                chunk = self.read_exact(size)
                if self.read_exact(2) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
                resp.chunks.append(chunk)
                body += chunk
            resp.body = body
        elif cl is not None:
            resp.body = self.read_exact(int(cl))
        else:
            resp.body = self.read_until_close()
        return resp


def request_bytes(
    method: str = "GET",
    target: str = "/",
    headers: Optional[list[tuple[str, str]]] = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: str = "localhost",
) -> bytes:
    """Builds a request; adds Host (for 1.1) and Content-Length for a body."""
    hs = list(headers or [])
    names = {n.lower() for n, _ in hs}
    if version == "HTTP/1.1" and "host" not in names:
        hs.insert(0, ("Host", host))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hs.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in hs)
    return head.encode("latin-1") + b"\r\n" + body


def exchange(host: str, port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends `data` and returns everything the server sends until it closes."""
    with RawConnection(host, port, timeout) as c:
        c.send(data)
        return c.read_until_close()


def one_response(
    host: str, port: int, data: bytes, timeout: float = 5.0
) -> tuple[RawResponse, bool]:
    """Sends `data`, reads one response, and reports whether the server then
    closed the connection."""
    with RawConnection(host, port, timeout) as c:
        c.send(data)
        resp = c.read_response()
        closed = c.wait_closed(timeout)
        return resp, closed


def fetch(host: str, port: int, data: bytes, timeout: float = 5.0) -> RawResponse:
    """Sends `data` and reads one response (the connection is then closed
    by us)."""
    with RawConnection(host, port, timeout) as c:
        c.send(data)
        return c.read_response()


def chunked(*parts: bytes) -> bytes:
    """Encodes `parts` as a chunked body (with the last chunk)."""
    out = b""
    for p in parts:
        if p:
            out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"
