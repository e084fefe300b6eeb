"""Which task a request runs in.

With TASK_FACTORY=1, lifespan startup installs a task factory that marks
the tasks it makes. Each request answers, as JSON, whether its task has
that mark, the task's name, and the value of a context variable it then
sets (a request must never see another request's value).
"""

import asyncio
import contextvars
import json
import os

seen = contextvars.ContextVar("seen", default=None)


def _factory(loop, coro, **kwargs):
    task = asyncio.Task(coro, loop=loop, **kwargs)
    task.made_by_factory = True
    return task


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.environ.get("TASK_FACTORY") == "1":
                    asyncio.get_running_loop().set_task_factory(_factory)
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    task = asyncio.current_task()
    report = {
        "factory": getattr(task, "made_by_factory", False),
        "name": task.get_name(),
        "seen": seen.get(),
    }
    seen.set(scope["path"])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(report).encode()})
