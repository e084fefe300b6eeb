"""Fixtures that run real Cormorant server processes.

Every server is started as ``python -m cormorant <app> --port <free port>``
with ``tests/`` as its working directory (so apps are ``apps.<module>:app``),
its stdout and stderr captured in a temporary file, and stopped by PID with
SIGTERM (then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest

TESTS_DIR = Path(__file__).resolve().parent
APPS_DIR = TESTS_DIR / "apps"
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
READY_LINE = "Cormorant running on"
# Flags that make a server speak TLS (the readiness probe is a plain TCP
# connect, which works for TLS too).
TLS_CERT_FLAGS = frozenset({"--ssl-certfile", "--ssl-certificate"})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_connect(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_ready(port: int, proc: subprocess.Popen, log: Path, timeout: float = 10.0) -> None:
    """Waits until a server spawned by hand accepts on `port` and logged
    its ready line; fails with its log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while not (can_connect("127.0.0.1", port) and READY_LINE in log.read_text()):
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError("not ready: " + log.read_text())
        time.sleep(0.02)


def wait_text(path: Path, timeout: float = 5.0) -> str:
    """The text of a file an app writes, once it has some: the file exists
    a moment before its text is written."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} not written")
        time.sleep(0.005)
    return path.read_text()


def can_connect_unix(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class ServerProcess:
    """A running (or finished) server process and its captured output."""

    def __init__(
        self,
        proc: subprocess.Popen,
        log_path: Path,
        host: str,
        port: Optional[int],
        uds: Optional[str] = None,
        results_dir: Optional[Path] = None,
        scheme: str = "http",
    ) -> None:
        self.proc = proc
        self.scheme = scheme  # "https" when started with a TLS certificate
        self.log_path = log_path
        self.host = host
        self.port = port
        self.uds = uds
        self.results_dir = results_dir

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            out = self.output()
            if text in out:
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in server output:\n{out}")
            time.sleep(0.02)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def wait_failed(self, timeout: float = STOP_TIMEOUT) -> str:
        """Waits for a server that must fail to start; returns its output."""
        code = self.wait_exit(timeout)
        out = self.output()
        assert code != 0, out
        return out

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        return self.proc.returncode


class ServerFactory:
    """Starts servers and stops every one it started."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.servers: list[ServerProcess] = []

    def spawn(
        self,
        args: Sequence[str],
        env: Optional[dict] = None,
        cwd: Optional[Path] = None,
        new_session: bool = False,
    ) -> tuple[subprocess.Popen, Path]:
        """Starts `python <args>` with output captured; does not wait.
        `new_session`: in a process group of its own (for group signals)."""
        fd, name = tempfile.mkstemp(prefix="server-", suffix=".log", dir=self.tmp_dir)
        log_path = Path(name)
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.pop("CORMORANT_WORKER_CONFIG", None)
        if env:
            full_env.update(env)
        with os.fdopen(fd, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, *args],
                cwd=str(cwd or TESTS_DIR),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=new_session,
            )
        return proc, log_path

    def start(
        self,
        app: str,
        *flags: str,
        env: Optional[dict] = None,
        wait: bool = True,
        uds: Optional[str] = None,
        ready_line: Optional[str] = READY_LINE,
        new_session: bool = False,
    ) -> ServerProcess:
        """Starts ``python -m cormorant APP --port <free> FLAGS`` and waits
        until it accepts connections (and has logged that it is ready)."""
        results_dir = Path(tempfile.mkdtemp(prefix="results-", dir=self.tmp_dir))
        full_env = {"CORMORANT_TEST_RESULTS": str(results_dir)}
        if env:
            full_env.update(env)
        host = "127.0.0.1"
        port: Optional[int] = None
        if uds is not None:
            args = ["-m", "cormorant", app, "--uds", uds, *flags]
        else:
            port = free_port()
            args = ["-m", "cormorant", app, "--host", host, "--port", str(port), *flags]
        proc, log_path = self.spawn(args, env=full_env, new_session=new_session)
        tls = any(f.split("=", 1)[0] in TLS_CERT_FLAGS for f in flags)
        scheme = "https" if tls else "http"
        server = ServerProcess(proc, log_path, host, port, uds, results_dir, scheme)
        self.servers.append(server)
        if wait:
            self.wait_ready(server, ready_line)
        return server

    def wait_ready(self, server: ServerProcess, ready_line: Optional[str] = READY_LINE) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if server.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {server.proc.returncode} before it was ready:\n"
                    + server.output()
                )
            if server.uds is not None:
                up = os.path.exists(server.uds) and can_connect_unix(server.uds)
            else:
                up = can_connect(server.host, server.port)
            if up and (ready_line is None or ready_line in server.output()):
                return
            if time.monotonic() > deadline:
                server.stop(timeout=2)
                raise AssertionError("server did not start in time:\n" + server.output())
            time.sleep(0.02)

    def stop_all(self) -> None:
        for s in self.servers:
            try:
                s.stop()
            except Exception:  # pragma: no cover - best effort cleanup
                if s.proc.poll() is None:
                    s.proc.kill()
        self.servers.clear()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Starts servers for one test; all are stopped afterwards."""
    f = ServerFactory(tmp_path)
    try:
        yield f
    finally:
        f.stop_all()


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Starts servers shared by the tests of one module."""
    f = ServerFactory(tmp_path_factory.mktemp("servers"))
    try:
        yield f
    finally:
        f.stop_all()
