"""An app whose request raises SystemExit, which is not an Exception.

/exit   raises SystemExit before it answers
/       answers 200
"""


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("HTTP only")  # lifespan: unsupported
    if scope["path"] == "/exit":
        raise SystemExit(3)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
