"""Runs Autobahn's cases through WebSocket over HTTP/2 (RFC 8441).

wstest speaks only HTTP/1.1. This relay takes each of its connections,
reads the upgrade request, opens the same WebSocket on the server as an
extended CONNECT on a new HTTP/2 cleartext connection (prior knowledge,
the `h2` package), answers wstest's upgrade with the server's verdict (the
accept key computed here, the subprotocol and permessage-deflate parameters
the server chose), and then carries the frame bytes unchanged both ways:
WebSocket framing is the same over an HTTP/2 stream. So every case checks
the server's WebSocket through its HTTP/2 tunnel.

    python tests/autobahn/h2_relay.py LISTEN_PORT SERVER_PORT
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions

HOST = "127.0.0.1"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Fields of wstest's upgrade request that go on to the server.
FORWARDED = (b"sec-websocket-protocol", b"sec-websocket-extensions", b"origin")


async def read_head(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    target = lines[0].split(b" ")[1]
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            name = name.strip().lower()
            fields[name] = fields[name] + b", " + value.strip() if name in fields else value.strip()
    return target, fields


class Tunnel:
    """One WebSocket: wstest's TCP connection and its HTTP/2 stream."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.sid = 1
        self.pending = bytearray()  # to the server, waiting for window
        self.end_pending = False
        self.response: asyncio.Future = asyncio.get_running_loop().create_future()
        self.window = asyncio.Event()

    async def run(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        target, fields = await read_head(client_r)
        server_r, server_w = await asyncio.open_connection(HOST, self.server_port)
        self.conn.initiate_connection()
        server_w.write(self.conn.data_to_send())
        pump = asyncio.create_task(self.from_server(server_r, server_w, client_w))
        try:
            # The server's SETTINGS must allow the extended CONNECT first.
            while not self.conn.remote_settings.enable_connect_protocol:
                await asyncio.wait_for(self.window.wait(), 5)
                self.window.clear()
            headers = [(b":method", b"CONNECT"), (b":protocol", b"websocket"),
                       (b":scheme", b"http"), (b":path", target),
                       (b":authority", fields.get(b"host", b"localhost")),
                       (b"sec-websocket-version", b"13")]
            headers += [(n, fields[n]) for n in FORWARDED if n in fields]
            self.conn.send_headers(self.sid, headers)
            server_w.write(self.conn.data_to_send())
            status, answer = await asyncio.wait_for(self.response, 10)
            if status != 200:
                client_w.write(b"HTTP/1.1 %d Refused\r\ncontent-length: 0\r\n\r\n" % status)
                await client_w.drain()
                return
            accept = base64.b64encode(
                hashlib.sha1(fields[b"sec-websocket-key"] + GUID).digest())
            reply = [b"HTTP/1.1 101 Switching Protocols", b"upgrade: websocket",
                     b"connection: Upgrade", b"sec-websocket-accept: " + accept]
            reply += [n + b": " + v for n, v in answer if n in FORWARDED]
            client_w.write(b"\r\n".join(reply) + b"\r\n\r\n")
            await client_w.drain()
            while True:
                data = await client_r.read(65536)
                self.pending += data
                self.end_pending = not data
                self.flush(server_w)
                if not data:
                    break
                # Wait for window when the server holds back (backpressure).
                while self.pending and not pump.done():
                    await self.window.wait()
                    self.window.clear()
                    self.flush(server_w)
            await pump
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            pump.cancel()
            server_w.close()
            client_w.close()

    def flush(self, server_w: asyncio.StreamWriter) -> None:
        while self.pending:
            n = min(len(self.pending), self.conn.local_flow_control_window(self.sid),
                    self.conn.max_outbound_frame_size)
            if n <= 0:
                break
            self.conn.send_data(self.sid, bytes(self.pending[:n]))
            del self.pending[:n]
        if self.end_pending and not self.pending:
            self.end_pending = False
            try:
                self.conn.end_stream(self.sid)
            except h2.exceptions.ProtocolError:
                pass
        server_w.write(self.conn.data_to_send())

    async def from_server(self, server_r, server_w, client_w) -> None:
        while True:
            data = await server_r.read(65536)
            if not data:
                break
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[b":status"])
                    self.response.set_result((status, ev.headers))
                elif isinstance(ev, h2.events.DataReceived):
                    client_w.write(ev.data)
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    if not self.response.done():
                        self.response.set_result((502, []))
                    await client_w.drain()
                    client_w.close()
                elif isinstance(ev, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                    self.window.set()
            server_w.write(self.conn.data_to_send())
            await client_w.drain()
        if not self.response.done():
            self.response.set_result((502, []))
        client_w.close()
        self.window.set()


async def main(listen_port: int, server_port: int) -> None:
    async def handle(r, w):
        try:
            await Tunnel(server_port).run(r, w)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            # A connection that closed before its upgrade request (run.py's
            # check that the relay listens).
            w.close()

    server = await asyncio.start_server(handle, HOST, listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
