"""`/hang` blocks the worker's event loop for good (a blocking call in
async code); anything else answers with the worker's pid."""

import os
import time


def block_the_loop_forever():
    while True:
        time.sleep(0.05)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/hang":
        block_the_loop_forever()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
