"""Answers with the PID of the process that served the request."""

import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    # The body is read, so that what the metrics count of it does not
    # depend on whether it arrived before the answer.
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
