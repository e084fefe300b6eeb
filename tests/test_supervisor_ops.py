"""Operations on a running server: rolling restarts (SIGHUP), recycling
(--limit-max-requests, --workers-lifetime, --workers-max-rss), scaling
(SIGTTIN/SIGTTOU), crashes, --pid-file and process titles.

Each zero-loss test runs a small load generator during the operation and
counts every request that did not get a 200: connection refused or reset,
EOF before a response, timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx

from procs import children

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


def _wait(cond, timeout, server, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{server.output()}"
        time.sleep(0.05)


def _wait_count(server, text, n, timeout=15):
    _wait(lambda: server.output().count(text) >= n, timeout, server, f"{n} x {text!r}")


def _read_response(sock):
    """Reads one response; returns (status, body). Raises on EOF or bad data."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF before the response" if not buf else "EOF in the head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError("no content-length")
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF in the body")
        rest += chunk
    return status, rest[:length]


@dataclass
class Load:
    """`clients` threads sending GET / at about `rate` requests per second
    in all. Even-numbered clients open a connection per request; odd ones
    keep theirs alive. A request on a reused keep-alive connection that the
    server closed before sending a byte is retried once on a new connection,
    as RFC 9112 section 9.3.1 allows for idempotent requests (counted in
    `retried`); every other failure counts."""

    host: str
    port: int
    clients: int = 8
    rate: float = 300.0
    timeout: float = 10.0
    ok: int = 0
    retried: int = 0
    failures: list = field(default_factory=list)
    pids: dict = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list = field(default_factory=list)

    def __enter__(self) -> Load:
        for i in range(self.clients):
            t = threading.Thread(target=self._client, args=(i % 2 == 1,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)

    def _connect(self):
        s = socket.create_connection((self.host, self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def _one(self, sock, keep_alive):
        sock.sendall(REQUEST if keep_alive else REQUEST_CLOSE)
        return _read_response(sock)

    def _record(self, status, body):
        with self._lock:
            if status == 200:
                self.ok += 1
                pid = int(body)
                self.pids[pid] = self.pids.get(pid, 0) + 1
            else:
                self.failures.append(f"status {status}")

    def _client(self, keep_alive):
        interval = self.clients / self.rate
        sock = None
        reused = False
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += interval
            try:
                if sock is None:
                    sock, reused = self._connect(), False
                try:
                    status, body = self._one(sock, keep_alive)
                except (ConnectionError, OSError) as e:
                    if not (reused and isinstance(e, (ConnectionError, BrokenPipeError))):
                        raise
                    # The server closed the idle connection first: retry.
                    sock.close()
                    sock, reused = self._connect(), False
                    with self._lock:
                        self.retried += 1
                    status, body = self._one(sock, keep_alive)
                self._record(status, body)
                if keep_alive:
                    reused = True
                else:
                    sock.close()
                    sock = None
            except Exception as e:  # every failure is recorded, none escapes
                with self._lock:
                    self.failures.append(f"{type(e).__name__}: {e}")
                if sock is not None:
                    sock.close()
                sock = None
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()
        if sock is not None:
            sock.close()

    def summary(self) -> str:
        return f"ok={self.ok} retried={self.retried} failures={self.failures[:10]}"


def test_sighup_replaces_every_worker_without_losing_a_request(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_count(server, "Cormorant running on", 2)
    before = children(server.pid)
    assert len(before) == 2
    with Load(server.host, server.port) as load:
        time.sleep(0.5)
        server.signal(signal.SIGHUP)
        _wait_count(server, "(SIGHUP)", 2)
        time.sleep(0.5)
    print(load.summary())
    assert load.failures == [], load.summary()
    assert load.ok > 200, load.summary()
    _wait(lambda: len(children(server.pid)) == 2, 10, server, "old workers to exit")
    after = children(server.pid)
    assert not set(after) & set(before), (before, after)
    # Both new workers served requests during the run.
    assert set(after) <= set(load.pids), (after, load.pids)
    assert server.stop() == 0


def test_limit_max_requests_recycles_without_losing_a_request(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2",
                                  "--limit-max-requests", "50",
                                  "--limit-max-requests-jitter", "10")
    _wait_count(server, "Cormorant running on", 2)
    with Load(server.host, server.port, rate=250) as load:
        _wait_count(server, "(max requests)", 4, timeout=20)
    print(load.summary(), len(load.pids), "pids")
    assert load.failures == [], load.summary()
    assert len(load.pids) >= 5, load.pids
    assert "reached --limit-max-requests" in server.output()
    assert server.stop() == 0


def test_ttin_then_ttou_without_losing_a_request(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_count(server, "Cormorant running on", 2)
    with Load(server.host, server.port) as load:
        time.sleep(0.3)
        server.signal(signal.SIGTTIN)
        _wait_count(server, "Cormorant running on", 3)
        _wait(lambda: len(children(server.pid)) == 3, 10, server, "a third worker")
        third = (set(children(server.pid)) - set(load.pids)) or set(children(server.pid))
        time.sleep(1.0)
        seen_three = len(load.pids)
        server.signal(signal.SIGTTOU)
        _wait_count(server, ") stopped (", 1)
        time.sleep(0.5)
    print(load.summary(), load.pids)
    assert load.failures == [], load.summary()
    assert seen_three >= 3, load.pids  # the added worker served requests
    assert "SIGTTIN: adding worker 3" in server.output()
    assert "SIGTTOU: removing worker 3" in server.output()
    assert len(children(server.pid)) == 2
    assert third
    assert server.stop() == 0


def test_ttou_never_goes_below_one_worker(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_count(server, "Cormorant running on", 2)
    server.signal(signal.SIGTTOU)
    _wait_count(server, ") stopped (", 1)
    server.signal(signal.SIGTTOU)
    server.wait_for_output("already down to one worker")
    assert len(children(server.pid)) == 1
    assert httpx.get(server.url("/")).status_code == 200
    assert server.stop() == 0


def test_killed_worker_loses_at_most_its_in_flight_requests(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_count(server, "Cormorant running on", 2)
    with Load(server.host, server.port) as load:
        time.sleep(0.5)
        victim = children(server.pid)[0]
        os.kill(victim, signal.SIGKILL)
        _wait_count(server, "Cormorant running on", 3)
        time.sleep(0.7)
    print(load.summary())
    assert len(load.failures) <= load.clients, load.summary()
    new = set(children(server.pid)) - {victim}
    assert len(new) == 2
    assert new <= set(load.pids), (new, load.pids)
    assert "(crashed)" in server.output()
    assert server.stop() == 0


def test_crash_loop_stops_the_server(server_factory):
    server = server_factory.start("apps.crash_on_import:app", "--workers", "2")
    _wait_count(server, "Cormorant running on", 2)
    (server.results_dir / "crash").touch()
    os.kill(children(server.pid)[0], signal.SIGKILL)
    code = server.wait_exit(15)
    out = server.output()
    assert code == 1, out
    assert "workers keep dying right after they start" in out


def test_no_respawn_stops_the_server_when_a_worker_dies(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2",
                                  "--respawn-failed-workers", "false")
    _wait_count(server, "Cormorant running on", 2)
    os.kill(children(server.pid)[0], signal.SIGKILL)
    assert server.wait_exit(10) == 1
    assert "--respawn-failed-workers is off" in server.output()


def test_pid_file(server_factory, tmp_path):
    path = tmp_path / "server.pid"
    server = server_factory.start("apps.pid:app", "--workers", "2", "--pid-file", str(path))
    assert path.read_text().strip() == str(server.pid)
    assert server.stop() == 0
    assert not path.exists()
    # One worker: that process is the server.
    server = server_factory.start("apps.pid:app", "--pid-file", str(path))
    assert path.read_text().strip() == str(server.pid)
    assert httpx.get(server.url("/")).text == str(server.pid)
    assert server.stop() == 0
    assert not path.exists()


def test_workers_max_rss_replaces_a_big_worker(server_factory):
    server = server_factory.start("apps.memory:app", "--workers", "2",
                                  "--workers-max-rss", "150")
    _wait_count(server, "Cormorant running on", 2)
    with httpx.Client() as client:
        big = int(client.get(server.url("/grow?mb=200")).text)
    _wait_count(server, "(max rss)", 1, timeout=10)
    out = server.output()
    assert "WARNING  worker " in out and "above --workers-max-rss 150" in out
    assert f"(pid {big}) replaced by" in out
    _wait(lambda: big not in children(server.pid), 10, server, "the big worker to exit")
    assert len(children(server.pid)) == 2
    assert server.stop() == 0


def test_workers_lifetime_recycles_without_losing_a_request(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2",
                                  "--workers-lifetime", "1.5")
    _wait_count(server, "Cormorant running on", 2)
    with Load(server.host, server.port, rate=150) as load:
        _wait_count(server, "(lifetime)", 3, timeout=15)
    print(load.summary())
    assert load.failures == [], load.summary()
    assert len(load.pids) >= 4, load.pids
    assert server.stop() == 0


def test_one_worker_with_a_lifetime_runs_under_a_supervisor(server_factory):
    server = server_factory.start("apps.pid:app", "--workers-lifetime", "1")
    first = int(httpx.get(server.url("/")).text)
    assert first != server.pid
    _wait_count(server, "(lifetime)", 1)
    _wait(lambda: first not in children(server.pid), 10, server, "the first worker to exit")
    assert int(httpx.get(server.url("/")).text) not in (first, server.pid)
    assert server.stop() == 0


def test_sigterm_stops_workers_after_the_graceful_timeout(server_factory):
    server = server_factory.start("apps.streaming:app", "--workers", "2",
                                  "--timeout-graceful-shutdown", "1")
    _wait_count(server, "Cormorant running on", 2)
    s = socket.create_connection((server.host, server.port))
    s.sendall(b"GET /slow?s=30 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.3)
    start = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait_exit(10) == 0
    elapsed = time.monotonic() - start
    s.close()
    assert 0.9 < elapsed < 1.0 + 5.0, elapsed
    assert "graceful shutdown timed out" in server.output()


def test_process_titles(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_count(server, "Cormorant running on", 2)

    def cmdline(pid):
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").strip().decode()

    def comm(pid):
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()

    assert cmdline(server.pid) == "cormorant: supervisor apps.pid:app"
    assert comm(server.pid) == "cormorant-sup"
    titles = sorted(cmdline(p) for p in children(server.pid))
    assert titles == ["cormorant: worker 1 apps.pid:app", "cormorant: worker 2 apps.pid:app"]
    assert sorted(comm(p) for p in children(server.pid)) == ["cormorant-w1", "cormorant-w2"]


def test_python_api_names(server_factory, tmp_path):
    from conftest import ServerProcess, free_port

    path = tmp_path / "api.pid"
    port = free_port()
    code = (
        "from cormorant import Server; "
        f"Server('apps.pid:app', address='127.0.0.1', port={port}, workers=2, "
        f"pid_file={str(path)!r}, respawn_failed_workers=True, workers_lifetime=60, "
        "workers_max_rss=1024, max_requests_before_restart=1000).serve()"
    )
    proc, log = server_factory.spawn(["-c", code])
    server = ServerProcess(proc, log, "127.0.0.1", port)
    server_factory.servers.append(server)
    server_factory.wait_ready(server)
    _wait_count(server, "Cormorant running on", 2)
    assert path.read_text().strip() == str(proc.pid)
    assert httpx.get(server.url("/")).status_code == 200
    assert server.stop() == 0
    assert not path.exists()
