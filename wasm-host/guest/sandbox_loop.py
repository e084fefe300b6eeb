"""An asyncio event loop for the sandbox: no sockets, no threads, virtual time.

CPython under WASI has no selector to wait on, so this loop's single wait
step (where a normal loop calls ``select``) asks a ``wake`` callback instead:
it may hand a message from the host to a waiting ``receive()``. When nothing
woke and timers are due, time jumps to the next one, so an app's sleeps and
timeouts cost no wall-clock time and every run is reproducible. When nothing
can ever happen again the loop raises :class:`Stalled`.

Everything else (tasks, futures, timers, cancellation, async generators) is
CPython's own ``BaseEventLoop``, which anyio and Starlette run on unchanged.
"""

import asyncio
import asyncio.base_events


class Stalled(Exception):
    """Every task waits and nothing left can wake one."""


class TimeLimit(Exception):
    """The app's timers ran past the run's time limit (virtual seconds)."""


class _Wait:
    """Stands where ``BaseEventLoop`` keeps its selector: only ``select``,
    the loop's one blocking call, is ever used."""

    def __init__(self, loop):
        self._loop = loop

    def select(self, timeout):
        self._loop._wait(timeout)
        return []

    def close(self):
        pass


class SandboxLoop(asyncio.base_events.BaseEventLoop):
    """``wake(idle)`` is called whenever no callback is ready; it returns
    whether it woke something. ``idle`` is true when no timer is pending
    either, i.e. when the app cannot go on by itself."""

    def __init__(self, wake, time_limit):
        super().__init__()
        self._selector = _Wait(self)
        self._wake = wake
        self._now = 0.0
        self._limit = time_limit

    def time(self):
        return self._now

    def _wait(self, timeout):
        if timeout == 0:
            return
        if self._wake(timeout is None):
            return
        if timeout is None:
            raise Stalled("every task is waiting and nothing can arrive")
        self._now += timeout
        if self._now > self._limit:
            raise TimeLimit(self._now)

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        # Only other threads need waking, and there are none.
        pass

    def run_in_executor(self, executor, func, *args):
        # No threads under WASI: run the call here, between two steps.
        future = self.create_future()
        try:
            future.set_result(func(*args))
        except BaseException as e:  # handed to the awaiting task
            future.set_exception(e)
        return future

