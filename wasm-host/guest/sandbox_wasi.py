"""Stand-ins for what CPython under WASI lacks, so that common libraries
import and run in the sandbox. Applied before the app is imported."""

import sys
import types


def _ssl_stand_in():
    """A module for ``import ssl``: WASI CPython has no ``_ssl``, yet anyio's
    asyncio backend (and so Starlette) imports ``ssl``. There is no network
    in the sandbox, so TLS has nothing to do: every name is an ``OSError``
    subclass, which keeps ``except ssl.SSLError:`` clauses valid."""
    module = types.ModuleType("ssl", "TLS is not available in the sandbox.")
    names = {}

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in names:
            names[name] = type(name, (OSError,), {"__module__": "ssl"})
        return names[name]

    module.__getattr__ = __getattr__
    return module


def _run_worker_threads_inline():
    """anyio runs blocking calls (Starlette's sync endpoints, file
    responses) in worker threads, which WASI cannot start: run them on the
    loop instead, after a checkpoint as a thread hop would give."""
    try:
        import anyio  # noqa: F401
    except ImportError:
        return
    import asyncio

    from anyio._backends import _asyncio as backend

    async def run_sync_inline(cls, func, args, abandon_on_cancel=False, limiter=None):
        await asyncio.sleep(0)
        return func(*args)

    backend.AsyncIOBackend.run_sync_in_worker_thread = classmethod(run_sync_inline)


def apply():
    try:
        import ssl  # noqa: F401
    except ImportError:
        sys.modules["ssl"] = _ssl_stand_in()
    _run_worker_threads_inline()
