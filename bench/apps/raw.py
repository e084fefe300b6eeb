"""Plain ASGI workloads: the same app for every server under test."""

HELLO = b"Hello, world!"
TEN_K = b"x" * 10 * 1024
CHUNK = b"y" * 100

_TEXT = [(b"content-type", b"text/plain")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    path = scope["path"]
    if path == "/10k":
        await send({"type": "http.response.start", "status": 200, "headers": _TEXT})
        await send({"type": "http.response.body", "body": TEN_K})
    elif path == "/echo":
        body = b""
        more = True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": _TEXT})
        await send({"type": "http.response.body", "body": body})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": _TEXT})
        for _ in range(100):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.start", "status": 200, "headers": _TEXT})
        await send({"type": "http.response.body", "body": HELLO})
