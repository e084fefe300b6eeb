"""Which asyncio task a request's app runs in, across its awaits.

/same       the current task before and after an await (`?sleep=0` for
            none): whether it stayed the same task, and that it is a task
/scope      an anyio cancel scope whose deadline passes while the app
            awaits: the scope catches the cancellation, and the app goes on
/cancel     the app cancels its own task, then answers without awaiting
/cancel-await  the app cancels its own task, then awaits: the
            cancellation arrives there, and the app answers
/hold?n=N   waits until N requests hold here, then all answer
/tasks      how many asyncio tasks the loop has that are not done
/keep       keeps the current task; /cancel-kept cancels it later, from
            another request
"""

import asyncio
import json

import anyio

_kept = []
_holding = {"count": 0, "event": None}


async def _answer(send, report):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(report).encode()})


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("HTTP only")  # lifespan: unsupported
    path = scope["path"]
    task = asyncio.current_task()
    if path == "/same":
        if scope["query_string"] != b"sleep=0":
            await asyncio.sleep(0.01)
        await _answer(send, {"same": asyncio.current_task() is task,
                             "is_task": isinstance(task, asyncio.Task),
                             "done": task.done()})
    elif path == "/scope":
        with anyio.move_on_after(0.01) as cancel_scope:
            await anyio.sleep(5)
        await asyncio.sleep(0)
        await _answer(send, {"caught": cancel_scope.cancelled_caught,
                             "same": asyncio.current_task() is task})
    elif path == "/cancel":
        task.cancel()
        await _answer(send, {"cancelled": True})
    elif path == "/cancel-await":
        task.cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            await _answer(send, {"cancelled_at_await": True})
            raise
        await _answer(send, {"cancelled_at_await": False})
    elif path == "/hold":
        n = int(scope["query_string"].decode().split("=")[1])
        if _holding["event"] is None:
            _holding["event"] = asyncio.Event()
        _holding["count"] += 1
        if _holding["count"] >= n:
            _holding["event"].set()
        await _holding["event"].wait()
        await _answer(send, {"held": True})
    elif path == "/tasks":
        pending = [t for t in asyncio.all_tasks() if not t.done()]
        await _answer(send, {"tasks": len(pending)})
    elif path == "/keep":
        _kept.append(task)
        await _answer(send, {"kept": True})
    elif path == "/cancel-kept":
        for kept in _kept:
            kept.cancel()
        await _answer(send, {"cancelled": len(_kept)})
