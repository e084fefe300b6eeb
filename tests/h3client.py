"""An HTTP/3 client for the tests, on aioquic (an independent QUIC and
HTTP/3 implementation): requests with bodies both ways, streamed responses,
trailers, interim responses and stream resets.

Use it inside asyncio code (`async with connect(port, ca) as c: ...`), or
through the `get` helper for a single request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import AsyncIterator, Optional

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived, StreamReset


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # 1xx heads, in order: (status, headers).
    interim: list[tuple[int, list[tuple[bytes, bytes]]]] = field(default_factory=list)
    # The server reset the stream: its error code.
    reset: Optional[int] = None
    ended: bool = False

    def header(self, name: bytes) -> Optional[bytes]:
        return next((v for n, v in self.headers if n == name), None)


FRAME_DATA = 0x0
FRAME_HEADERS = 0x1


class _Stream:
    def __init__(self) -> None:
        self.response = Response()
        self.done = asyncio.Event()
        # Bytes of a frame not complete yet.
        self.received = bytearray()


class Client(QuicConnectionProtocol):
    """One QUIC connection speaking HTTP/3."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.streams: dict[int, _Stream] = {}
        self.goaway: Optional[int] = None
        self.closed = asyncio.Event()
        self.close_error: Optional[int] = None
        self._control: dict[int, bytearray] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived) and event.stream_id in self.streams:
            # Request streams are read here, not by aioquic's HTTP/3 layer:
            # aioquic before 1.7 (the last on CPython 3.9 and 3.10) refuses
            # 1xx responses.
            self._read_response(event)
        elif isinstance(event, StreamReset) and event.stream_id in self.streams:
            s = self.streams[event.stream_id]
            s.response.reset = event.error_code
            s.done.set()
        else:
            self._watch_control(event)
            self.http.handle_event(event)
        if isinstance(event, ConnectionTerminated):
            self.close_error = event.error_code
            self.closed.set()
            for s in self.streams.values():
                s.done.set()
        self.transmit()

    def _read_response(self, event: StreamDataReceived) -> None:
        s = self.streams[event.stream_id]
        s.received += event.data
        r = s.response
        buf = Buffer(data=bytes(s.received))
        while not buf.eof():
            try:
                kind, length = buf.pull_uint_var(), buf.pull_uint_var()
                payload = buf.pull_bytes(length)
            except BufferReadError:
                break  # the rest of the frame has not arrived yet
            del s.received[:buf.tell()]
            buf = Buffer(data=bytes(s.received))
            if kind == FRAME_DATA:
                r.body += payload
            elif kind == FRAME_HEADERS:
                _, fields = self.http._decoder.feed_header(event.stream_id, payload)
                status = dict(fields).get(b":status")
                fields = [(n, v) for n, v in fields if not n.startswith(b":")]
                if status is not None and 100 <= int(status) < 200:
                    r.interim.append((int(status), fields))
                elif status is not None:
                    r.status, r.headers = int(status), fields
                else:
                    r.trailers = fields
            # Other frame types are ignored (RFC 9114 §9).
        if event.end_stream:
            r.ended = True
            s.done.set()

    def _watch_control(self, event: QuicEvent) -> None:
        """aioquic does not report a GOAWAY: read it off the server's
        control stream (its first unidirectional stream of type 0)."""
        if not isinstance(event, StreamDataReceived) or event.stream_id % 4 != 3:
            return
        data = self._control.setdefault(event.stream_id, bytearray())
        data += event.data
        buf = Buffer(data=bytes(data))
        try:
            if buf.pull_uint_var() != 0:  # not the control stream
                return
            while not buf.eof():
                kind, length = buf.pull_uint_var(), buf.pull_uint_var()
                payload = buf.pull_bytes(length)
                if kind == 0x7:
                    self.goaway = Buffer(data=payload).pull_uint_var()
        except BufferReadError:
            pass  # the rest has not arrived yet

    def send_request(self, method: str, path: str, authority: str,
                     headers: Optional[list[tuple[bytes, bytes]]] = None,
                     body: Optional[bytes] = None, end: bool = True) -> int:
        """Sends a request head, and `body` if given; leaves the stream
        open unless `end`. Returns the stream ID."""
        sid = self._quic.get_next_available_stream_id()
        self.streams[sid] = _Stream()
        fields = [(b":method", method.encode()), (b":scheme", b"https"),
                  (b":authority", authority.encode()), (b":path", path.encode()),
                  *(headers or [])]
        self.http.send_headers(sid, fields, end_stream=end and body is None)
        if body is not None:
            self.http.send_data(sid, body, end_stream=end)
        self.transmit()
        return sid

    def send_raw(self, data: bytes, end: bool = True) -> int:
        """Writes `data` as they are on a new request stream (frames made
        by hand); the response is read as any other. Returns the stream ID."""
        sid = self._quic.get_next_available_stream_id()
        self.streams[sid] = _Stream()
        self._quic.send_stream_data(sid, data, end_stream=end)
        self.transmit()
        return sid

    def send_body(self, sid: int, data: bytes, end: bool = False) -> None:
        self.http.send_data(sid, data, end_stream=end)
        self.transmit()

    def reset(self, sid: int, code: int = 0x10C) -> None:
        """Cancels a request: H3_REQUEST_CANCELLED both ways."""
        self._quic.reset_stream(sid, code)
        self._quic.stop_stream(sid, code)
        self.transmit()

    async def response(self, sid: int, timeout: float = 5.0) -> Response:
        await asyncio.wait_for(self.streams[sid].done.wait(), timeout)
        return self.streams[sid].response

    async def request(self, method: str, path: str, authority: str, **kw) -> Response:
        return await self.response(self.send_request(method, path, authority, **kw))


def configuration(ca: Optional[str] = None, **kw) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, **kw)
    if ca:
        config.load_verify_locations(ca)
    else:
        config.verify_mode = ssl.CERT_NONE
    return config


@contextlib.asynccontextmanager
async def connect(port: int, ca: Optional[str] = None, host: str = "127.0.0.1",
                  server_name: str = "localhost", **kw) -> AsyncIterator[Client]:
    config = configuration(ca, server_name=server_name, **kw)
    async with quic_connect(host, port, configuration=config, create_protocol=Client,
                            wait_connected=True) as client:
        yield client


def get(port: int, path: str = "/", ca: Optional[str] = None, **kw) -> Response:
    """One GET over a new connection."""
    async def run() -> Response:
        async with connect(port, ca) as c:
            return await c.request("GET", path, f"localhost:{port}", **kw)
    return asyncio.run(run())


def frame(kind: int, payload: bytes) -> bytes:
    """An HTTP/3 frame."""
    return encode_uint_var(kind) + encode_uint_var(len(payload)) + payload


def _prefixed_int(n: int, bits: int, first: int) -> bytes:
    """An integer with an N-bit prefix (RFC 9204 §4.1.1)."""
    limit = (1 << bits) - 1
    if n < limit:
        return bytes([first | n])
    out = [first | limit]
    n -= limit
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def literal_headers_frame(authority: str, extra: list[tuple[bytes, bytes]]) -> bytes:
    """A GET / HEADERS frame QPACK-encoded by hand, without the dynamic
    table: static entries for the pseudo-headers, literals for the rest."""
    block = bytearray(b"\x00\x00")  # Required Insert Count 0, Base 0
    block += bytes([0xC0 | 17, 0xC0 | 23, 0xC0 | 1])  # GET, https, /
    block += _prefixed_int(0, 4, 0x50) + _prefixed_int(len(authority), 7, 0) + authority.encode()
    for name, value in extra:
        block += _prefixed_int(len(name), 3, 0x20) + name
        block += _prefixed_int(len(value), 7, 0) + value
    return frame(FRAME_HEADERS, bytes(block))
