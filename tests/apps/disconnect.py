"""Client disconnects.

/wait?id=ID[&start=1][&send_after=1][&raise=1]
    reads the whole body, optionally starts a streamed response (so the
    client knows the app reached its waiting point), writes
    $CORMORANT_TEST_RESULTS/ID.waiting, then awaits receive() in a task while
    the handler itself awaits a long sleep. When receive() yields, it writes
    ID.json: {"type": message type, "t": time.monotonic()}.
    With send_after=1 it then calls send() and records what it raised
    (caught), or with raise=1 lets the exception propagate.
"""

import asyncio
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs


def _results() -> Path:
    return Path(os.environ["CORMORANT_TEST_RESULTS"])


def _write(name, data):
    path = _results() / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.rename(path)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    ident = q["id"]
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if q.get("start"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"waiting\n", "more_body": True})

    got = asyncio.get_running_loop().create_future()

    async def watch():
        message = await receive()
        got.set_result((message, time.monotonic()))

    task = asyncio.create_task(watch())
    _write(f"{ident}.waiting", {"t": time.monotonic()})
    # Await something else entirely; the watcher wakes us.
    sleeper = asyncio.ensure_future(asyncio.sleep(30))
    await asyncio.wait([sleeper, got], return_when=asyncio.FIRST_COMPLETED)
    sleeper.cancel()
    await task
    message, t = got.result()
    result = {"type": message["type"], "t": t}
    if q.get("raise"):
        _write(f"{ident}.json", result)
        await send({"type": "http.response.body", "body": b"more", "more_body": True}
                   if q.get("start") else
                   {"type": "http.response.start", "status": 200, "headers": []})
        return
    if q.get("send_after"):
        try:
            if q.get("start"):
                await send({"type": "http.response.body", "body": b"late", "more_body": False})
            else:
                await send({"type": "http.response.start", "status": 200, "headers": []})
        except BaseException as exc:
            result["send_exc"] = type(exc).__name__
            result["send_exc_is_oserror"] = isinstance(exc, OSError)
        else:
            result["send_exc"] = None
    _write(f"{ident}.json", result)
