"""One worker process: import the app, run its lifespan, serve until stopped.

The hot path (sockets, HTTP parsing, scope building, receive/send) is in the
Rust extension; this module only orchestrates startup and shutdown.
"""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import gc
import importlib
import json
import logging
import os
import signal
import sys
from typing import Any, Callable, Dict, TextIO

from . import _cormorant, _wsgi

logger = logging.getLogger("cormorant.error")

_LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


class AppLoadError(Exception):
    """The application target could not be imported."""


def setup_logging(level: str, log_config: str | None = None, log_json: bool = False,
                  use_colors: bool | None = None) -> None:
    """Give the cormorant loggers handlers unless the host app configured them.

    `log_config` is a JSON, YAML or INI file for `logging.config`; it replaces
    our handlers. `log_json` writes one JSON object per line; `use_colors`
    colours level names (None: when stderr is a terminal)."""
    logging.addLevelName(5, "TRACE")
    root = logging.getLogger("cormorant")
    root.setLevel(_LOG_LEVELS.get(level.lower(), logging.INFO))
    if not logging.getLogger().handlers:
        # (An embedding program that configured logging keeps its handlers.)
        _default_handlers(root, log_json, use_colors)
    if log_config:
        # What the file configures replaces our defaults.
        _apply_log_config(log_config)


def _default_handlers(root: logging.Logger, log_json: bool, use_colors: bool | None) -> None:
    """Our handlers: errors to stderr, access lines to a batched stdout."""
    if use_colors is None:
        use_colors = sys.stderr.isatty() and os.environ.get("NO_COLOR") is None
    if log_json:
        formatter: logging.Formatter = _JsonFormatter()
    elif use_colors:
        formatter = _ColorFormatter("%(levelname)s %(message)s")
    else:
        formatter = logging.Formatter("%(levelname)-8s %(message)s")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        root.addHandler(handler)
        root.propagate = False
    access = logging.getLogger("cormorant.access")
    if not access.handlers:
        handler = _BatchedStreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s")
                             if not log_json else _JsonFormatter())
        access.addHandler(handler)
        access.propagate = False


def _apply_log_config(path: str) -> None:
    """dictConfig from JSON or YAML, fileConfig from INI; raises
    AppLoadError with one readable line on failure."""
    import logging.config

    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                logging.config.dictConfig(json.load(f))
        elif path.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                raise AppLoadError(f"--log-config {path}: YAML needs PyYAML (pip install pyyaml)") from None
            with open(path, encoding="utf-8") as f:
                logging.config.dictConfig(yaml.safe_load(f))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except AppLoadError:
        raise
    except Exception as exc:
        raise AppLoadError(f"--log-config {path}: {exc}") from None


class _JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the
    traceback when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _ColorFormatter(logging.Formatter):
    """Level names in colour, padded like the plain format."""

    COLORS = {"TRACE": "34", "DEBUG": "36", "INFO": "32", "WARNING": "33",
              "ERROR": "31", "CRITICAL": "1;31"}

    def format(self, record: logging.LogRecord) -> str:
        name = record.levelname
        color = self.COLORS.get(name)
        pad = " " * max(0, 8 - len(name))
        saved = record.levelname
        if color:
            record.levelname = f"\x1b[{color}m{name}\x1b[0m{pad}"
        try:
            return super().format(record)
        finally:
            record.levelname = saved


def load_env_file(path: str) -> None:
    """Loads KEY=VALUE lines (dotenv syntax: comments, `export`, quotes) into
    os.environ without overriding variables already set, as uvicorn does."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise AppLoadError(f"cannot read --env-file {path}: {exc.strerror}") from None
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.encode("utf-8").decode("unicode_escape")
        else:
            value = value.split(" #", 1)[0].rstrip()
        os.environ.setdefault(key, value)


class _BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The default access-log handler: writes into a large buffer over stdout
    that `serve` flushes every FLUSH_INTERVAL seconds and at exit, instead of
    one write syscall per request."""

    FLUSH_INTERVAL = 0.1

    def __init__(self) -> None:
        stream: TextIO
        try:
            stream = open(sys.stdout.fileno(), "w", buffering=256 * 1024,
                          encoding="utf-8", errors="replace", closefd=False)
        except (AttributeError, OSError, ValueError):
            stream = sys.stdout  # no real file descriptor (embedded, captured)
        super().__init__(stream)

    def flush(self) -> None:
        pass  # batched: see flush_now

    def flush_now(self) -> None:
        self.acquire()
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass
        finally:
            self.release()


def _probe_loop_lag(loop: asyncio.AbstractEventLoop, worker: Any, every: float = 0.5) -> None:
    """Publishes, every `every` seconds, how late the loop ran this timer:
    the time a request waits before the app even sees it."""
    def probe(expected: float) -> None:
        now = loop.time()
        worker.report_loop_lag(max(0.0, now - expected))
        loop.call_at(now + every, probe, now + every)

    loop.call_at(loop.time() + every, probe, loop.time() + every)


def _access_log_mode(cfg: Dict[str, Any]) -> str:
    """off, native (the I/O thread writes the lines our default handler would),
    or python (the logger was configured: every line goes through logging)."""
    access = logging.getLogger("cormorant.access")
    if not cfg.get("access_log") or not access.isEnabledFor(logging.INFO):
        return "off"
    handlers = access.handlers
    if (len(handlers) == 1 and type(handlers[0]) is _BatchedStreamHandler
            and not access.filters and not handlers[0].filters
            and handlers[0].level <= logging.INFO):
        return "native"
    return "python"


def _flush_access_log() -> None:
    for handler in logging.getLogger("cormorant.access").handlers:
        if isinstance(handler, _BatchedStreamHandler):
            handler.flush_now()


def load_app(target: str, factory: bool = False, app_dir: str = ".") -> Any:
    """Import `module:attribute` and return the application."""
    module_name, sep, attrs = target.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(f'app {target!r} must be in the form "module:attribute"')
    if app_dir:
        sys.path.insert(0, os.path.abspath(app_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppLoadError(f'could not import module "{module_name}"') from exc
        logger.debug("import of %s failed", module_name, exc_info=True)
        raise AppLoadError(f'error while importing "{module_name}": {exc}') from exc
    except Exception as exc:
        logger.debug("import of %s failed", module_name, exc_info=True)
        raise AppLoadError(
            f'error while importing "{module_name}": {type(exc).__name__}: {exc}'
        ) from exc
    app: Any = module
    for attr in attrs.split("."):
        try:
            app = getattr(app, attr)
        except AttributeError:
            raise AppLoadError(
                f'attribute "{attrs}" not found in module "{module_name}"'
            ) from None
    if factory:
        try:
            app = app()
        except Exception as exc:
            raise AppLoadError(f"app factory {target!r} raised {type(exc).__name__}: {exc}") from exc
    if not callable(app):
        raise AppLoadError(f"{target!r} is not callable, so it is not an ASGI or WSGI application")
    return app


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise AppLoadError("--loop uvloop: uvloop is not installed") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


#: The name of every application task: given, so that asyncio does not
#: format a "Task-N" name for each request (a measurable share of a small
#: request's cost on 3.11).
_TASK_NAME = "cormorant: ASGI application"


def _make_spawn(loop: asyncio.AbstractEventLoop) -> tuple[Any, bool]:
    """How app calls get their tasks: `(spawn, pooled)`. Pooled, each app
    call's first step runs at once under a pooled task's identity, and
    `spawn` makes the pool's tasks only (see the worker's task pool)."""
    # A task factory the app installed (during lifespan startup, say) is
    # honoured: it makes a task for every app call.
    if loop.get_task_factory() is not None:
        return (lambda coro: loop.create_task(coro, name=_TASK_NAME)), False
    # A C-level partial: no Python frame per task.
    task = functools.partial(asyncio.Task, loop=loop, name=_TASK_NAME)
    if os.environ.get("CORMORANT_POOLED_TASKS", "1") != "0":
        return task, True
    # Eager tasks (3.12+) run the app at once, inside the drain, and only
    # become scheduled tasks if they really suspend.
    if sys.version_info >= (3, 12):
        return functools.partial(task, eager_start=True), False
    return task, False


class _Ticker:
    """Runs the timers of a server the loop drives: its poller is readable
    only for I/O, so the loop also steps it every `worker.tick` seconds,
    often while connections are open and seldom while there are none."""

    def __init__(self, loop: asyncio.AbstractEventLoop, worker: Any) -> None:
        self.loop = loop
        self.worker = worker
        self.interval = worker.tick
        self.handle = loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self.worker.tick_drain()
        self._arm()

    def _arm(self) -> None:
        self.interval = self.worker.tick
        self.handle = self.loop.call_later(self.interval, self._tick)

    def on_ready(self) -> None:
        """The poller is readable: step, and tick often again if a
        connection opened while idle."""
        self.worker.drain()
        if self.worker.tick < self.interval:
            self.handle.cancel()
            self._arm()

    def stop(self) -> None:
        self.handle.cancel()


class _Heartbeat:
    """Calls `beat` every `every` seconds from a timer of the event loop, so
    that an app that blocks the loop (a handler that never awaits) stops the
    beats: WATCHDOG=1 to systemd at half its period (`WatchdogSec=`), or
    ALIVE to the supervisor (`--timeout-worker-healthcheck`). Whoever
    listens replaces what fell silent."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float,
                 beat: Callable[[], object]) -> None:
        self.loop = loop
        self.every = every
        self.beat = beat
        self.handle = loop.call_soon(self._beat)

    def _beat(self) -> None:
        self.beat()
        self.handle = self.loop.call_later(self.every, self._beat)

    def stop(self) -> None:
        self.handle.cancel()


def _notify_systemd(state: str) -> None:
    """Tells systemd, when it asked this process (`Type=notify`); a worker
    under a supervisor never does: the supervisor speaks for the service."""
    if _CONTROL_FD is None:
        _cormorant.sd_notify(state)


class _Lifespan:
    def __init__(self, loop: asyncio.AbstractEventLoop, app: Any, mode: str) -> None:
        self.ctx = _cormorant.LifespanCtx(loop)
        self.mode = mode
        self.state: Dict[str, Any] = {}
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.loop = loop
        self.app = app

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.ctx.receive, self.ctx.send)
        except BaseException as exc:
            self.error = exc
            self.ctx.app_exit(f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, Exception):
                raise
        else:
            self.ctx.app_exit(None)

    async def startup(self) -> bool | None:
        """True: started; None: the app has no lifespan; False: failed."""
        self.task = self.loop.create_task(self._main())
        while self.ctx.phase == "starting":
            await self.ctx.wait_phase()
        phase = self.ctx.phase
        if phase == "unsupported":
            if self.mode == "on":
                logger.error("the application does not support the lifespan protocol",
                             exc_info=self.error)
                return False
            if self.error is not None:
                logger.warning(
                    "ASGI 'lifespan' protocol appears unsupported (the app raised %s); "
                    "serving without it", type(self.error).__name__)
            else:
                logger.info("ASGI 'lifespan' protocol appears unsupported; serving without it")
            return None
        if phase == "startup_failed":
            if self.error is not None:
                logger.error("Application startup failed", exc_info=self.error)
            else:
                logger.error("Application startup failed: %s", self.ctx.message or "(no message)")
            return False
        logger.info("Application startup complete.")
        return True

    async def shutdown(self) -> None:
        assert self.task is not None
        if self.task.done():
            return
        self.ctx.shutdown()
        while self.ctx.phase in ("started", "shutting_down") and not self.task.done():
            waiter = asyncio.ensure_future(self.ctx.wait_phase())
            await asyncio.wait([waiter, self.task], return_when=asyncio.FIRST_COMPLETED)
        if self.ctx.phase == "shutdown_failed":
            logger.error("Application shutdown failed: %s", self.ctx.message)
        else:
            logger.info("Application shutdown complete.")


async def serve(worker: Any, app: Any, cfg: Dict[str, Any]) -> int:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    first_stop_at: float | None = None
    drain_delay = cfg.get("drain_delay") or 0.0
    delay: asyncio.TimerHandle | None = None

    def stop_now() -> None:
        nonlocal delay
        if delay is not None:
            delay.cancel()
            delay = None
            _notify_systemd("STATUS=stopping: finishing the requests in flight")
        if not stop.done():
            stop.set_result(None)

    def request_stop(sig: int = signal.SIGINT) -> None:
        # One stop request is one graceful stop, however many copies of the
        # signal arrive (a group signal reaches a worker directly and again
        # through its supervisor). SIGTERM first waits --drain-delay, with
        # the health path answering 503; SIGINT does not, and ends a delay
        # under way. With a supervisor, only its SIGQUIT drops connections;
        # alone, a second signal STOP_SIGNAL_GAP or more after the first
        # does.
        nonlocal first_stop_at, delay
        if first_stop_at is None:
            first_stop_at = loop.time()
            worker.begin_drain()
            if sig == signal.SIGTERM and drain_delay > 0:
                _notify_systemd(f"STOPPING=1\nSTATUS=draining for {drain_delay:g}s, then stopping")
                logger.info("Draining: the health path answers 503; stopping in %gs",
                            drain_delay)
                delay = loop.call_later(drain_delay, stop_now)
            else:
                _notify_systemd("STOPPING=1\nSTATUS=stopping: finishing the requests in flight")
                stop_now()
        elif sig == signal.SIGINT and delay is not None:
            logger.info("SIGINT: ending the drain delay")
            stop_now()
        elif _CONTROL_FD is None and loop.time() - first_stop_at >= _cormorant.STOP_SIGNAL_GAP:
            abort_now()

    def abort_now() -> None:
        logger.warning("second stop signal: closing every connection now")
        stop_now()
        worker.abort()

    stop_signals = [signal.SIGINT, signal.SIGTERM]
    for sig in stop_signals:
        loop.add_signal_handler(sig, request_stop, sig)
    if _CONTROL_FD is not None:
        loop.add_signal_handler(signal.SIGQUIT, abort_now)
        stop_signals.append(signal.SIGQUIT)

    def on_limit() -> None:
        # --limit-max-requests: under a supervisor, keep serving until the
        # replacement is ready (the supervisor then sends SIGTERM).
        if _CONTROL_FD is None or not _tell_supervisor(_MSG_RECYCLE):
            # Soon, not now: this runs inside the worker's drain.
            loop.call_soon(request_stop)
        else:
            logger.info("reached --limit-max-requests; waiting for a replacement")

    wsgi = cfg.get("interface") == "wsgi"
    lifespan = None
    if cfg["lifespan"] != "off" and not wsgi:
        lifespan = _Lifespan(loop, app, cfg["lifespan"])
        started = await lifespan.startup()
        if started is False:
            return 3
        if started is None:
            lifespan = None

    # Everything loaded so far (the app, its imports, startup state) lives
    # as long as the worker: keep it out of every later garbage collection,
    # which then only walks what requests allocate.
    gc.collect()
    gc.freeze()
    timed = cfg.get("metrics") or cfg.get("max_queue_time")
    spawn, pooled = _make_spawn(loop)
    worker.start(loop, app, spawn, on_limit,
                 lifespan.state if lifespan is not None else None,
                 access_log=_access_log_mode(cfg), timed=bool(timed), pooled=pooled,
                 wsgi=(_wsgi.ErrorStream(), _wsgi.FileWrapper, _CONTROL_FD is not None)
                 if wsgi else None)
    ticker = _Ticker(loop, worker) if worker.tick is not None else None
    loop.add_reader(worker.fd, worker.drain if ticker is None else ticker.on_ready)
    if cfg.get("metrics"):
        _probe_loop_lag(loop, worker)
    if wsgi:
        threads = cfg.get("blocking_threads", 4)
        interface = f"WSGI, {threads} thread{'s' if threads != 1 else ''}"
    else:
        interface = "ASGI"
    logger.info("Cormorant running on %s (%s; %s; pid %d; press CTRL+C to quit)",
                worker.url, worker.protocols, interface, os.getpid())
    _tell_supervisor(_MSG_READY)
    _notify_systemd(f"READY=1\nSTATUS=serving on {worker.url}")
    period = _cormorant.watchdog_period() if _CONTROL_FD is None else None
    watchdog = None
    if period is not None:
        watchdog = _Heartbeat(loop, period / 2, lambda: _cormorant.sd_notify("WATCHDOG=1"))
    healthcheck = cfg.get("timeout_worker_healthcheck")
    alive = None
    if healthcheck and _CONTROL_FD is not None:
        # Several beats per timeout, so one late timer is not a hang.
        alive = _Heartbeat(loop, healthcheck / 4, lambda: _tell_supervisor(_MSG_ALIVE))
    flusher = None
    if cfg.get("access_log"):
        def flush_periodically() -> None:
            nonlocal flusher
            _flush_access_log()
            flusher = loop.call_later(_BatchedStreamHandler.FLUSH_INTERVAL, flush_periodically)

        flush_periodically()

    await stop
    logger.info("Shutting down")
    worker.shutdown()
    timeout = cfg.get("timeout_graceful_shutdown")
    deadline = None if timeout is None else loop.time() + timeout
    while worker.connections > 0:
        if deadline is not None and loop.time() >= deadline:
            logger.warning("graceful shutdown timed out; closing %d connection(s)",
                           worker.connections)
            worker.abort()
            break
        await asyncio.sleep(0.01)
    fd = worker.fd
    await loop.run_in_executor(None, worker.join)
    # What the server queued as it ended (access and error lines).
    worker.drain()
    if ticker is not None:
        ticker.stop()
    loop.remove_reader(fd)
    if flusher is not None:
        flusher.cancel()
    _flush_access_log()
    if lifespan is not None:
        await lifespan.shutdown()
    for sig in stop_signals:
        loop.remove_signal_handler(sig)
    for heartbeat in (watchdog, alive):
        if heartbeat is not None:
            heartbeat.stop()
    return 0


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def run(config_json: str, app: Any = None, listen_fds: list[int] | None = None) -> int:
    """Serve in this process. Returns the exit code. `listen_fds`: the
    sockets a supervisor passed (socket activation), instead of the
    configuration's."""
    cfg = json.loads(config_json)
    # Serving as another user (--user/--group): bind first, become that
    # user, and only then import the application, so none of its code runs
    # as the user who started the server.
    become = cfg.get("user") is not None or cfg.get("group") is not None

    def load() -> Any:
        loaded = app if app is not None else load_app(
            cfg["target"], cfg.get("factory", False), cfg.get("app_dir", "."))
        if cfg.get("interface", "auto") == "auto":
            cfg["interface"] = _wsgi.detect_interface(loaded)
        return loaded

    try:
        setup_logging(cfg.get("log_level", "info"), cfg.get("log_config"),
                      cfg.get("log_json", False), cfg.get("use_colors"))
        if cfg.get("env_file"):
            load_env_file(cfg["env_file"])
        if not become:
            app = load()
        loop = new_event_loop(cfg.get("loop", "auto"))
    except AppLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        worker = _cormorant.Worker(config_json, listen_fds)
        if become:
            _cormorant.become_user(cfg.get("user"), cfg.get("group"))
            app = load()
    except (_cormorant.StartupError, AppLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        loop.close()
        return 1
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve(worker, app, cfg))
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


#: The worker protocol is the extension's (native/python/src/worker_protocol.rs):
#: the exit code of a worker that could not boot (the supervisor stops
#: instead of respawning it), the control bytes, the environment names.
WORKER_BOOT_ERROR = _cormorant.WORKER_BOOT_ERROR


#: The write end of the pipe to the supervisor (``ENV_READY_FD``): one byte
#: READY once accepting, RECYCLE at --limit-max-requests.
_CONTROL_FD: int | None = None
_MSG_READY = _cormorant.MSG_READY
_MSG_RECYCLE = _cormorant.MSG_RECYCLE
_MSG_ALIVE = _cormorant.MSG_ALIVE


def _tell_supervisor(msg: bytes) -> bool:
    if _CONTROL_FD is None:
        return False
    try:
        os.write(_CONTROL_FD, msg)
        return True
    except OSError:  # the supervisor is gone
        return False


def worker_main() -> None:
    """Entry point of a worker process started by the supervisor."""
    global _CONTROL_FD
    config_json = os.environ.pop(_cormorant.ENV_WORKER_CONFIG)
    ready_fd = os.environ.pop(_cormorant.ENV_READY_FD, None)
    worker_id = os.environ.pop(_cormorant.ENV_WORKER_ID, "?")
    passed = os.environ.pop(_cormorant.ENV_LISTEN_FDS, None)
    listen_fds = [int(fd) for fd in passed.split(",")] if passed else None
    if ready_fd is not None:
        _CONTROL_FD = int(ready_fd)
        os.set_inheritable(_CONTROL_FD, False)  # not for the app's subprocesses
    # Job-control and hangup signals are for the supervisor; a terminal
    # sending them to the whole process group must not stop the workers.
    for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    # The supervisor stops a worker it replaces with SIGINT: before the
    # loop's handler is in place, that ends it quietly, as SIGTERM would,
    # not with a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    cfg = json.loads(config_json)
    if cfg.get("timeout_worker_healthcheck"):
        # A hung worker is asked for its stacks before it is killed: the C
        # handler writes every thread's, even while the loop is blocked.
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    try:
        target = cfg.get("target") or ""
        _cormorant.set_proc_title(f"cormorant: worker {worker_id} {target}",
                                  f"cormorant-w{worker_id}")
    except Exception:  # a title is cosmetic
        pass
    code = run(config_json, listen_fds=listen_fds)
    sys.exit(WORKER_BOOT_ERROR if code in (1, 3) else code)
