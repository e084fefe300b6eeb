"""Streaming and timing.

/stream?n=N&size=S   N body messages with more_body, no content-length
/single              one body message
/empty               start then one empty final body
/slow?s=SECONDS      sleeps, then answers 200 "done"
/pid                 the worker's PID
"""

import asyncio
import os
from urllib.parse import parse_qs


def _query(scope):
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    q = _query(scope)
    if path == "/stream":
        n = int(q.get("n", "10"))
        size = int(q.get("size", "0"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(n):
            chunk = f"chunk-{i}\n".encode()
            if size:
                chunk = chunk.ljust(size, b".")
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/single":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"all at once"})
        return
    if path == "/empty":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/slow":
        await asyncio.sleep(float(q.get("s", "1")))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"done"})
        return
    if path == "/pid":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"not found"})
