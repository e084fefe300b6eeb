"""Answers with the value of the environment variable named by the path
(`/CORMORANT_TEST_VALUE`), or 404 when it is not set."""

import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    value = os.environ.get(scope["path"].lstrip("/"))
    status = 200 if value is not None else 404
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": (value or "").encode()})
