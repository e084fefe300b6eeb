"""Request body tests.

/            echoes the body in one response message (gets content-length)
/count       JSON: number of http.request messages, total length, more_body flags;
             ?work=S makes the app spend S seconds (awaiting) after each message,
             like an app that parses what it reads
/noread      answers at once without reading the body
/stream-echo echoes each received chunk as its own response chunk (chunked)
/cancelled-receive
             a receive() cancelled while it waits (wait_for timing out after
             50 ms), then a 0.5 s pause, then the body read and echoed
"""

import asyncio
import hashlib
import json
from urllib.parse import parse_qs


async def _read_all(receive, work=0.0):
    chunks = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks
        if work:
            await asyncio.sleep(work)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/noread":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"not read"})
        return
    if path == "/stream-echo":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        while True:
            message = await receive()
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if not more:
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/cancelled-receive":
        try:
            early = [await asyncio.wait_for(receive(), 0.05)]
        except asyncio.TimeoutError:
            early = []
        await asyncio.sleep(0.5)
        if early and not early[0].get("more_body", False):
            chunks = [early[0].get("body", b"")]
        else:
            chunks = [m.get("body", b"") for m in early] + await _read_all(receive)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.body", "body": b"".join(chunks)})
        return
    query = parse_qs(scope["query_string"].decode())
    chunks = await _read_all(receive, float(query.get("work", ["0"])[0]))
    body = b"".join(chunks)
    if path == "/count":
        out = json.dumps({
            "messages": len(chunks),
            "sizes": [len(c) for c in chunks],
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    await send({"type": "http.response.body", "body": body})
