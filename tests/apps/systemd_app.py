"""For the systemd tests: a lifespan startup that takes
`CORMORANT_TEST_STARTUP_DELAY` seconds, `/block?s=N`, which blocks the
event loop for N seconds (time.sleep in an async endpoint), and otherwise
the PID of the process that served the request."""

import os
import time
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                time.sleep(float(os.environ.get("CORMORANT_TEST_STARTUP_DELAY", "0")))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/block":
        time.sleep(float(parse_qs(scope["query_string"].decode())["s"][0]))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
