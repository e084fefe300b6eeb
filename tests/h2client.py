"""Small HTTP/2 clients over raw sockets, for protocol-level tests.

`H2Client` drives the `h2` state machine (cleartext, prior knowledge): it
sends the preface and SETTINGS, acknowledges the server's SETTINGS and
collects events per stream.

`RawH2` writes hand-made frames (anything, valid or not) and parses what
comes back into `RawFrame`s, for cases the `h2` state machine
refuses to produce or to accept (garbage frames, CONTINUATION floods,
thousands of streams opened and reset in a burst).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4

# Error codes.
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB


@dataclass
class StreamResult:
    """Everything one stream received."""

    stream_id: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    body: bytes = b""
    trailers: Optional[list[tuple[bytes, bytes]]] = None
    ended: bool = False
    reset: Optional[int] = None  # error code of a RST_STREAM from the server
    data_frames: int = 0

    @property
    def status(self) -> Optional[int]:
        for n, v in self.headers:
            if n == b":status":
                return int(v)
        return None

    def header(self, name: bytes) -> Optional[bytes]:
        for n, v in self.headers:
            if n == name:
                return v
        return None

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


class H2Client:
    """One h2c (prior knowledge) connection driven by the `h2` package."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = 5.0,
        validate: bool = True,
        local_settings: Optional[dict] = None,
        handshake: bool = True,
        sock: Optional[socket.socket] = None,
    ) -> None:
        # `sock`: a connection already open (after a PROXY protocol header).
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
            validate_inbound_headers=True,
        )
        self.conn = h2.connection.H2Connection(config=config)
        if local_settings:
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values=local_settings)
        self.streams: dict[int, StreamResult] = {}
        self.events: list = []
        self.goaway: Optional[h2.events.ConnectionTerminated] = None
        self.remote_settings_received = False
        self.closed = False
        self.window_updates: list[tuple[float, int, int]] = []  # (t, stream, delta)
        if handshake:
            self.conn.initiate_connection()
            self.flush()
            self.wait_for(lambda: self.remote_settings_received, timeout)

    # --- plumbing ---------------------------------------------------------

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True

    def stream(self, stream_id: int) -> StreamResult:
        return self.streams.setdefault(stream_id, StreamResult(stream_id))

    def _handle(self, ev) -> None:
        self.events.append(ev)
        sid = getattr(ev, "stream_id", None)
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.remote_settings_received = True
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            self.stream(sid).informational.append(list(ev.headers))
        elif isinstance(ev, h2.events.ResponseReceived):
            self.stream(sid).headers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            st = self.stream(sid)
            st.body += ev.data
            st.data_frames += 1
            # Hand the bytes back to the flow-control windows at once.
            if ev.flow_controlled_length:
                try:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                except h2.exceptions.StreamClosedError:
                    pass
        elif isinstance(ev, h2.events.TrailersReceived):
            self.stream(sid).trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self.stream(sid).ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self.stream(sid).reset = ev.error_code
        elif isinstance(ev, h2.events.WindowUpdated):
            self.window_updates.append((time.monotonic(), ev.stream_id, ev.delta))
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def read_once(self, timeout: float) -> bool:
        """Reads what arrives within `timeout` and processes it; False on
        EOF or timeout."""
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except (ConnectionResetError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        for ev in self.conn.receive_data(data):
            self._handle(ev)
        self.flush()
        return True

    def wait_for(self, cond: Callable[[], bool], timeout: Optional[float] = None) -> bool:
        """Reads until `cond()` is true; raises TimeoutError otherwise (or
        AssertionError if the connection closed first)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("condition not met in time")
            if not self.read_once(min(left, 0.25)) and self.closed:
                if cond():
                    return True
                raise AssertionError("connection closed by the server")
        return True

    def pump(self, seconds: float) -> None:
        """Processes whatever arrives during `seconds`."""
        deadline = time.monotonic() + seconds
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.read_once(min(left, 0.1))

    def wait_closed(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.read_once(min(0.25, deadline - time.monotonic()))
        return self.closed

    # --- requests ---------------------------------------------------------

    def send_headers(
        self,
        method: str = "GET",
        path: str = "/",
        headers: Iterable[tuple] = (),
        end_stream: bool = True,
        authority: str = "localhost",
        scheme: str = "http",
        raw: Optional[list[tuple[bytes, bytes]]] = None,
    ) -> int:
        """Opens a stream; `raw` replaces the whole header list (pseudo
        headers included) as given."""
        sid = self.conn.get_next_available_stream_id()
        if raw is None:
            hs = [(b":method", method.encode()), (b":path", path.encode()),
                  (b":scheme", scheme.encode()), (b":authority", authority.encode())]
            hs += [(_b(n), _b(v)) for n, v in headers]
        else:
            hs = raw
        self.conn.send_headers(sid, hs, end_stream=end_stream)
        self.stream(sid)
        self.flush()
        return sid

    def send_data(self, sid: int, data: bytes, end_stream: bool = False) -> None:
        """Sends `data`, waiting for window updates as needed."""
        view = memoryview(data)
        while True:
            n = min(len(view), self.sendable(sid))
            if n or (not view and end_stream):
                last = end_stream and n == len(view)
                self.conn.send_data(sid, bytes(view[:n]), end_stream=last)
                self.flush()
                view = view[n:]
                if not view:
                    return
            else:
                if not view:
                    return
                self.wait_for(lambda: self.sendable(sid) > 0 or self.stream(sid).done)
                if self.stream(sid).done:
                    return

    def sendable(self, sid: int) -> int:
        return min(self.conn.local_flow_control_window(sid),
                   self.conn.max_outbound_frame_size)

    def reset(self, sid: int, code: int = CANCEL) -> None:
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def response(self, sid: int, timeout: Optional[float] = None) -> StreamResult:
        st = self.stream(sid)
        self.wait_for(lambda: st.done, timeout)
        return st

    def request(self, method: str = "GET", path: str = "/", headers: Iterable[tuple] = (),
                body: Optional[bytes] = None, timeout: Optional[float] = None) -> StreamResult:
        sid = self.send_headers(method, path, headers, end_stream=body is None)
        if body is not None:
            self.send_data(sid, body, end_stream=True)
        return self.response(sid, timeout)


def _b(x) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode("latin-1")


# --- raw frames ---------------------------------------------------------------


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(
        ">I", stream_id & 0x7FFFFFFF) + payload


def settings_frame(values: Optional[dict] = None, ack: bool = False) -> bytes:
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (values or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def rst_frame(stream_id: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def window_update_frame(stream_id: int, delta: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", delta))


def header_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    """An HPACK block that never touches the dynamic table, so the same bytes
    can be sent any number of times."""
    enc = hpack.Encoder()
    return enc.encode([hpack.NeverIndexedHeaderTuple(n, v) for n, v in headers],
                      huffman=True)


def request_headers(method: str = "GET", path: str = "/", authority: str = "localhost",
                    extra: Iterable[tuple[bytes, bytes]] = ()) -> list[tuple[bytes, bytes]]:
    return [(b":method", method.encode()), (b":scheme", b"http"), (b":path", path.encode()),
            (b":authority", authority.encode()), *extra]


@dataclass
class RawFrame:
    type: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def error_code(self) -> Optional[int]:
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    @property
    def last_stream_id(self) -> Optional[int]:
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF
        return None

    def settings(self) -> dict[int, int]:
        assert self.type == SETTINGS
        return {k: v for k, v in (struct.unpack(">HI", self.payload[i:i + 6])
                                  for i in range(0, len(self.payload), 6))}

    def hpack_block(self) -> bytes:
        """The header block fragment of a HEADERS frame (padding and priority
        stripped)."""
        p = self.payload
        if self.flags & 0x8:  # PADDED
            pad = p[0]
            p = p[1:len(p) - pad]
        if self.flags & 0x20:  # PRIORITY
            p = p[5:]
        return p


class RawH2:
    """A socket that speaks HTTP/2 frames written by hand."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.closed = False
        self.frames: list[RawFrame] = []
        self.decoder = hpack.Decoder()

    def __enter__(self) -> RawH2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> bool:
        """False if the server already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
            return False

    def handshake(self, settings: Optional[dict] = None) -> dict[int, int]:
        """Preface + SETTINGS; waits for the server's SETTINGS, acks them and
        returns their values."""
        self.send(PREFACE + settings_frame(settings))
        f = self.wait_frame(lambda f: f.type == SETTINGS and not f.flags & ACK)
        self.send(settings_frame(ack=True))
        return f.settings()

    def _fill(self, timeout: float) -> bool:
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def _parse(self) -> Optional[RawFrame]:
        if len(self.buf) < 9:
            return None
        length = int.from_bytes(self.buf[:3], "big")
        if len(self.buf) < 9 + length:
            return None
        f = RawFrame(self.buf[3], self.buf[4],
                     int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                     self.buf[9:9 + length])
        self.buf = self.buf[9 + length:]
        if f.type == PING and not f.flags & ACK:
            self.send(frame(PING, ACK, 0, f.payload))
        if f.type in (HEADERS, CONTINUATION):
            try:
                f.decoded = self.decoder.decode(f.hpack_block(), raw=True)  # type: ignore
            except Exception:
                f.decoded = None  # type: ignore
        self.frames.append(f)
        return f

    def next_frame(self, timeout: Optional[float] = None) -> Optional[RawFrame]:
        """The next frame, or None on EOF/timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self._parse()
            if f is not None:
                return f
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                return None

    def wait_frame(self, pred: Callable[[RawFrame], bool],
                   timeout: Optional[float] = None) -> RawFrame:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            f = self.next_frame(max(left, 0))
            if f is None:
                raise AssertionError(
                    f"frame not received (closed={self.closed}); got "
                    f"{[(x.type, x.flags, x.stream_id) for x in self.frames]}")
            if pred(f):
                return f

    def drain(self, timeout: float) -> list[RawFrame]:
        """Frames that arrive until EOF or `timeout` of silence."""
        out = []
        while True:
            f = self.next_frame(timeout)
            if f is None:
                return out
            out.append(f)

    def wait_closed(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._parse() is None:
                self._fill(min(left, 0.25))
        return True


# --- WebSocket over an HTTP/2 stream (RFC 8441) -------------------------------

SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8


@dataclass
class WsMessage:
    """One complete message or control frame received over the tunnel."""

    opcode: int  # 1 text, 2 binary, 8 close, 9 ping, 10 pong
    payload: bytes | str

    @property
    def close_code(self) -> Optional[int]:
        """The code of a close frame (wsproto gives its payload as (code,
        reason))."""
        return int(self.payload[0]) if self.opcode == 8 else None


class H2WebSocket:
    """A WebSocket opened with an extended CONNECT on a stream of `client`,
    framed by wsproto's client-side `FrameProtocol` (an implementation
    independent of the server's), with permessage-deflate when `deflate`."""

    def __init__(
        self,
        client: H2Client,
        path: str = "/echo",
        protocols: Iterable[str] = (),
        deflate: bool = False,
        headers: Iterable[tuple] = (),
        raw: Optional[list[tuple[bytes, bytes]]] = None,
    ) -> None:
        from wsproto.extensions import PerMessageDeflate

        self.client = client
        self.deflate = PerMessageDeflate() if deflate else None
        hs = [(b":method", b"CONNECT"), (b":protocol", b"websocket"),
              (b":scheme", b"http"), (b":path", path.encode()),
              (b":authority", b"localhost"), (b"sec-websocket-version", b"13")]
        protocols = list(protocols)
        if protocols:
            hs.append((b"sec-websocket-protocol", ", ".join(protocols).encode()))
        if self.deflate is not None:
            hs.append((b"sec-websocket-extensions",
                       b"permessage-deflate; " + self.deflate.offer().encode()))
        hs += [(_b(n), _b(v)) for n, v in headers]
        self.sid = client.send_headers(raw=raw or hs, end_stream=False)
        self.proto = None
        self.consumed = 0
        self.inbox: list[WsMessage] = []
        self._parts: list = []

    @property
    def result(self) -> StreamResult:
        return self.client.stream(self.sid)

    def answer(self, timeout: float = 5.0) -> StreamResult:
        """Waits for the response head (or the stream's end)."""
        st = self.result
        self.client.wait_for(lambda: bool(st.headers) or st.done, timeout)
        if st.status == 200 and self.proto is None:
            from wsproto.frame_protocol import FrameProtocol

            extensions = []
            accepted = st.header(b"sec-websocket-extensions")
            if self.deflate is not None and accepted:
                self.deflate.finalize(accepted.decode())
                extensions.append(self.deflate)
            self.proto = FrameProtocol(client=True, extensions=extensions)
        return st

    def send(self, message) -> None:
        self.client.send_data(self.sid, bytes(self.proto.send_data(message)))

    def send_raw(self, data: bytes) -> None:
        self.client.send_data(self.sid, data)

    def ping(self, payload: bytes = b"") -> None:
        self.client.send_data(self.sid, bytes(self.proto.ping(payload)))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.client.send_data(self.sid, bytes(self.proto.close(code, reason)))

    def _take(self) -> None:
        body = self.result.body
        if len(body) > self.consumed:
            self.proto.receive_bytes(body[self.consumed:])
            self.consumed = len(body)
        for frame in self.proto.received_frames():
            op = int(frame.opcode)
            if op in (0, 1, 2):
                self._parts.append((op, frame.payload))
                if frame.message_finished:
                    first = self._parts[0][0]
                    data = self._parts[0][1][:0].join(p for _, p in self._parts)
                    self.inbox.append(WsMessage(first, data))
                    self._parts = []
            else:
                self.inbox.append(WsMessage(op, frame.payload))

    def receive(self, timeout: float = 5.0) -> WsMessage:
        """The next message or control frame; TimeoutError if none comes."""
        def ready() -> bool:
            self._take()
            return bool(self.inbox) or self.result.done
        self.client.wait_for(ready, timeout)
        if not self.inbox:
            raise EOFError(f"stream ended: reset={self.result.reset}")
        return self.inbox.pop(0)
