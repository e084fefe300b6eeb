"""An application that is a plain function returning an awaitable, as
ASGI allows: the server awaits whatever the call returns.

/future        an object whose __await__ waits on a future a timer
               completes, then responds
/coroutine     a coroutine made by a helper, which awaits a sleep and
               reports the request's task and what it awaits
/not-awaitable returns None
"""

import asyncio
import json


class _Later:
    """Responds after `delay` seconds, waiting on a plain future."""

    def __init__(self, send, delay):
        self.send = send
        self.delay = delay

    def __await__(self):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.call_later(self.delay, fut.set_result, b"later")
        body = yield from fut
        yield from _respond(self.send, body).__await__()


async def _respond(send, body):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _report(send):
    task = asyncio.current_task()
    seen = {}

    async def look():
        # Runs while the request's task is suspended in its sleep.
        seen["awaits"] = type(task.get_coro().cr_await).__name__

    looker = asyncio.get_running_loop().create_task(look())
    running = type(task.get_coro().cr_await).__name__
    await asyncio.sleep(0.01)
    await looker
    report = {"in_task": task is not None, "awaits": seen["awaits"], "running": running}
    await _respond(send, json.dumps(report).encode())


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return _lifespan(receive, send)
    path = scope["path"]
    if path == "/future":
        return _Later(send, 0.02)
    if path == "/coroutine":
        return _report(send)
    return None
