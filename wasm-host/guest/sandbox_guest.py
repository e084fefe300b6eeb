"""The guest side of cormorant-sandbox: each ``run`` call runs the ASGI app
once on a fresh :class:`sandbox_loop.SandboxLoop`, with ``receive`` and
``send`` answered by the host, which checks every message.

``sandbox_target`` is written at build time and imports the user's app.
"""

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
    """One ASGI connection: the two callables and the loop's wake hook."""

    def __init__(self):
        self.loop = None
        self.waiters = []

    async def receive(self):
        message = host.receive(False)
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
            host.send(text)
        except Err as e:
            error = e.value
            if isinstance(error, host.SendError_Disconnected):
                raise ClientDisconnected("the client disconnected") from None
            if isinstance(error, host.SendError_Invalid):
                raise TypeError(error.value) from None
            raise RuntimeError(error.value) from None

    def wake(self, idle):
        if not self.waiters:
            return False
        message = host.receive(idle)
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
    scope.setdefault("state", {})
    scope.setdefault("extensions", {})
    return scope


class WitWorld(_WitWorld):
    def run(self, scope, time_limit):
        conn = _Connection()
        loop = sandbox_loop.SandboxLoop(conn.wake, time_limit)
        conn.loop = loop
        try:
            loop.run_until_complete(app(_scope(scope), conn.receive, conn.send))
        except sandbox_loop.Stalled as e:
            raise Err(host.Failure_Stalled(str(e))) from None
        except sandbox_loop.TimeLimit as e:
            raise Err(host.Failure_Timeout(float(e.args[0]))) from None
        except BaseException:
            raise Err(host.Failure_Exception(traceback.format_exc())) from None
        finally:
            # Tasks the app left running die with this loop.
            loop.close()
