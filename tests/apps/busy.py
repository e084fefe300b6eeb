"""A CPU-bound app: each request holds the event loop for `?ms=` (default
20) milliseconds, as a slow synchronous handler would. `/raise` fails;
`/own-id` answers with its own `x-request-id: app-1`."""

import time
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/raise":
        raise RuntimeError("boom")
    q = parse_qs(scope["query_string"].decode())
    ms = float(q.get("ms", ["20"])[0])
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass
    headers = [(b"content-type", b"text/plain")]
    if scope["path"] == "/own-id":
        headers.append((b"X-Request-Id", b"app-1"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})
