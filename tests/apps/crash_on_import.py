"""Answers with its PID, but once the file `crash` exists in the test's
results directory every new worker dies while importing the app."""

import os

if os.path.exists(os.path.join(os.environ.get("CORMORANT_TEST_RESULTS", "."), "crash")):
    os._exit(1)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
