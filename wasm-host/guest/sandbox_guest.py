"""The guest side of cormorant-sandbox: each ``run`` call runs the ASGI app
once on a fresh :class:`sandbox_loop.SandboxLoop`, with ``receive`` and
``send`` answered by the host, which checks every message.

``sandbox_target`` is written at build time and imports the user's app.
"""

import asyncio
import json
import traceback

import sandbox_loop
import sandbox_wasi
from componentize_py_types import Err
from wit_world import WitWorld as _WitWorld
from wit_world.imports import asgi as host

sandbox_wasi.apply()

from sandbox_target import app  # noqa: E402 (after the stand-ins)


class ClientDisconnected(OSError):
    """``send()`` after the client went away (ASGI spec 2.4)."""


def encode(value):
    """A Python value as the host's JSON (see the WIT file)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(value).decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: encode(v) for k, v in value.items()}
    return {"$type": type(value).__name__}


def decode(value):
    """The host's JSON as Python values."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$bytes" in value:
            return value["$bytes"].encode("latin-1")
        return {k: decode(v) for k, v in value.items()}
    return value


class _Connection:
    """One ASGI scope's two callables, backed by the host functions
    ``host_receive`` and ``host_send``, and the loop's wake hook for them.
    ``changed`` is set after every message the app sends."""

    def __init__(self, loop, host_receive, host_send):
        self.loop = loop
        self.host_receive = host_receive
        self.host_send = host_send
        self.waiters = []
        self.changed = asyncio.Event()

    async def receive(self):
        message = self.host_receive(False)
        if message is None:
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                message = await waiter
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
        return decode(json.loads(message))

    async def send(self, message):
        try:
            text = json.dumps(encode(message))
        except (TypeError, ValueError) as e:
            raise TypeError(f"ASGI message cannot be sent: {e}") from None
        try:
            self.host_send(text)
        except Err as e:
            error = e.value
            if isinstance(error, host.SendError_Disconnected):
                raise ClientDisconnected("the client disconnected") from None
            if isinstance(error, host.SendError_Invalid):
                raise TypeError(error.value) from None
            raise RuntimeError(error.value) from None
        finally:
            self.changed.set()

    def wake(self, idle):
        if not self.waiters:
            return False
        message = self.host_receive(idle)
        if message is None:
            return False
        self.waiters.pop(0).set_result(message)
        return True


def _scope(text):
    scope = decode(json.loads(text))
    for key in ("client", "server"):
        if scope.get(key) is not None:
            scope[key] = tuple(scope[key])
    scope["headers"] = [tuple(h) for h in scope.get("headers", [])]
    scope.setdefault("extensions", {})
    return scope


class StartupFailed(Exception):
    """Lifespan startup failed; the request is not served."""


def _lifespan_ended(task):
    if task.cancelled():
        host.lifespan_exit("the lifespan task was cancelled")
    elif task.exception() is not None:
        error = task.exception()
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        host.lifespan_exit(text)
    else:
        host.lifespan_exit(None)


async def _serve(scope, conn, lifespan):
    """The request, inside a lifespan cycle when ``lifespan`` is given."""
    if lifespan is None:
        scope["state"] = {}
        await app(scope, conn.receive, conn.send)
        return
    state = {}
    lifespan_scope = {
        "type": "lifespan",
        "asgi": {"version": "3.0", "spec_version": "2.0"},
        "state": state,
    }
    task = asyncio.ensure_future(app(lifespan_scope, lifespan.receive, lifespan.send))
    task.add_done_callback(_lifespan_ended)
    task.add_done_callback(lambda _: lifespan.changed.set())
    while (started := host.lifespan_started()) is None:
        lifespan.changed.clear()
        await lifespan.changed.wait()
    if isinstance(started, Err):
        raise StartupFailed(started.value)
    scope["state"] = dict(state)
    await app(scope, conn.receive, conn.send)
    host.lifespan_shutdown()
    if not task.done():
        await asyncio.wait([task])


class WitWorld(_WitWorld):
    def run(self, scope, lifespan, time_limit):
        connections = []
        loop = sandbox_loop.SandboxLoop(
            lambda idle: any(c.wake(idle) for c in connections), time_limit
        )
        asyncio.set_event_loop(loop)
        conn = _Connection(loop, host.receive, host.send)
        connections.append(conn)
        lifespan_conn = None
        if lifespan:
            lifespan_conn = _Connection(loop, host.lifespan_receive, host.lifespan_send)
            connections.append(lifespan_conn)
        try:
            loop.run_until_complete(_serve(_scope(scope), conn, lifespan_conn))
        except StartupFailed as e:
            raise Err(host.Failure_StartupFailed(str(e))) from None
        except sandbox_loop.Stalled as e:
            raise Err(host.Failure_Stalled(str(e))) from None
        except sandbox_loop.TimeLimit as e:
            raise Err(host.Failure_Timeout(float(e.args[0]))) from None
        except BaseException:
            raise Err(host.Failure_Exception(traceback.format_exc())) from None
        finally:
            # Tasks the app left running die with this loop.
            asyncio.set_event_loop(None)
            loop.close()
