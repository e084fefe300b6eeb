"""Answers with its PID; /grow?mb=N first keeps N MiB more alive (touched,
so they are resident)."""

import os

_kept = []


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/grow":
        mb = int(scope["query_string"].decode().partition("=")[2] or "100")
        _kept.append(b"x" * (mb * 1024 * 1024))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
