"""Lifespan with state.

Startup puts values in scope["state"]; each request returns the state it
sees as JSON and then mutates its copy (which must not leak into the next
request). Shutdown writes $CORMORANT_TEST_RESULTS/shutdown.
"""

import asyncio
import json
import os
from pathlib import Path


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.sleep(float(os.environ.get("STARTUP_DELAY", "0")))
                scope["state"]["db"] = "connected"
                scope["state"]["answer"] = 42
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                results = os.environ.get("CORMORANT_TEST_RESULTS")
                if results:
                    (Path(results) / "shutdown").write_text("ok")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    state = scope.get("state")
    seen = dict(state) if state is not None else None
    if state is not None:
        state["mutated"] = True
        state["answer"] = 0
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"state": seen}).encode()})
