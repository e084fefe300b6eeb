"""systemd without systemd: the notification protocol against a datagram
socket of our own standing in for systemd's (it learns each sender's pid
as systemd does, with SO_PASSCRED), and socket activation through the real
`systemd-socket-activate`."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import h3client
import httpx
import pytest
from test_shutdown import Background

import certs
from conftest import TESTS_DIR, ServerProcess, free_port, wait_ready
from procs import children

SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate"
# Runs argv[1] with the remaining arguments in place of this process (same
# pid), so that ServerFactory.spawn can start any program.
EXEC = "import os, sys; os.execv(sys.argv[1], sys.argv[1:])"
# What systemd does for a socket unit, with /dev/null as descriptor 3:
# LISTEN_PID is argv[1] (empty: this process), then `python -m cormorant`
# with the remaining arguments.
FAKE_ACTIVATION = """
import os, sys
fd = os.open("/dev/null", os.O_RDONLY)
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ["LISTEN_PID"] = sys.argv[1] or str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.executable, [sys.executable, "-m", "cormorant", *sys.argv[2:]])
"""


@dataclass(frozen=True)
class Message:
    at: float  # time.monotonic() when it arrived
    pid: int  # the sender, from the kernel (SCM_CREDENTIALS)
    lines: tuple  # its assignments, "READY=1", "STATUS=..."


class NotifySocket:
    """A stand-in for systemd's notification socket: messages collected
    on a thread, each with its sender's pid and the time it arrived."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="sd-")  # a socket path is short
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages: list = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        ucred = struct.calcsize("3i")
        while not self.closed:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
            except socket.timeout:
                continue
            pid = 0
            for level, kind, payload in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS):
                    pid = struct.unpack("3i", payload[:ucred])[0]
            message = Message(time.monotonic(), pid, tuple(data.decode().split("\n")))
            with self.lock:
                self.messages.append(message)

    def all(self) -> list:
        with self.lock:
            return list(self.messages)

    def wait_for(self, line: str, after: int = 0, timeout: float = 10.0, startswith=False):
        """The first message from index `after` on with this line (or a
        line that starts with it), and its index."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.all()[after:], after):
                if any(x.startswith(line) if startswith else x == line for x in m.lines):
                    return i, m
            assert time.monotonic() < deadline, f"no {line!r} in {self.all()}"
            time.sleep(0.01)

    def with_line(self, line: str) -> list:
        return [m for m in self.all() if line in m.lines]

    def close(self) -> None:
        self.closed = True
        self.thread.join(5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    try:
        yield n
    finally:
        n.close()


def _status(message) -> str:
    return next(x for x in message.lines if x.startswith("STATUS="))


def _start(server_factory, notify, app, *flags, env=None, wait=True):
    return server_factory.start(app, *flags, env={"NOTIFY_SOCKET": notify.path, **(env or {})},
                                wait=wait)


def test_ready_once_the_server_accepts_connections(server_factory, notify):
    # The app's lifespan startup takes a second: not ready before it ends.
    server = _start(server_factory, notify, "apps.systemd_app:app",
                    env={"CORMORANT_TEST_STARTUP_DELAY": "1"}, wait=False)
    started = time.monotonic()
    _, ready = notify.wait_for("READY=1")
    assert ready.at - started >= 1.0
    assert ready.pid == server.pid
    assert _status(ready) == f"STATUS=serving on {server.base_url}"
    assert "Cormorant running on" in server.output()
    # Accepting right away.
    assert httpx.get(server.url("/"), timeout=1).text == str(server.pid)
    assert notify.all() == [ready]


@pytest.mark.parametrize("workers", [1, 2])
def test_only_the_main_process_notifies_ready_once_every_worker_is(server_factory, notify,
                                                                   workers):
    server = _start(server_factory, notify, "apps.env_echo:app", "--workers", str(workers))
    _, ready = notify.wait_for("READY=1")
    out = server.output()
    assert out.count("Cormorant running on") == workers, out
    assert ready.pid == server.pid
    if workers == 2:
        assert _status(ready) == f"STATUS=serving on {server.base_url} with 2 workers"
    time.sleep(0.5)
    assert notify.with_line("READY=1") == [ready]
    assert {m.pid for m in notify.all()} == {server.pid}
    # The app (a worker's, or the one process's) never sees the socket.
    assert httpx.get(server.url("/NOTIFY_SOCKET")).status_code == 404
    assert server.stop() == 0


def test_sighup_is_a_reload_until_every_replacement_is_ready(server_factory, notify):
    server = _start(server_factory, notify, "apps.pid:app", "--workers", "2")
    i, _ = notify.wait_for("READY=1")
    server.signal(signal.SIGHUP)
    sent_at = time.monotonic()
    i, reloading = notify.wait_for("RELOADING=1", after=i + 1)
    assert reloading.pid == server.pid
    assert _status(reloading) == "STATUS=replacing workers (SIGHUP)"
    # CLOCK_MONOTONIC, which time.monotonic() reads too.
    usec = next(int(x.split("=")[1]) for x in reloading.lines if x.startswith("MONOTONIC_USEC="))
    assert abs(usec / 1e6 - sent_at) < 1.0
    assert "replaced by pid" not in server.output()
    _, ready = notify.wait_for("READY=1", after=i + 1, timeout=20)
    assert ready.pid == server.pid
    assert server.output().count("replaced by pid") == 2
    assert server.stop() == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_stopping_as_soon_as_sigterm_arrives_before_the_drain_delay(server_factory, notify,
                                                                    workers):
    server = _start(server_factory, notify, "apps.pid:app", "--workers", str(workers),
                    "--drain-delay", "1")
    i, _ = notify.wait_for("READY=1")
    server.signal(signal.SIGTERM)
    sent_at = time.monotonic()
    i, stopping = notify.wait_for("STOPPING=1", after=i + 1)
    assert stopping.at - sent_at < 0.5
    assert stopping.pid == server.pid
    assert _status(stopping) == "STATUS=draining for 1s, then stopping"
    # Still serving during the delay.
    assert httpx.get(server.url("/"), timeout=2).status_code == 200
    _, stopped = notify.wait_for("STATUS=stopping", after=i + 1, startswith=True)
    assert stopped.at - sent_at >= 0.9
    assert server.wait_exit() == 0
    assert len(notify.with_line("STOPPING=1")) == 1
    assert len(notify.with_line("READY=1")) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_the_watchdog_is_pinged_at_half_its_period(server_factory, notify, workers):
    server = _start(server_factory, notify, "apps.env_echo:app", "--workers", str(workers),
                    env={"WATCHDOG_USEC": "200000"})
    notify.wait_for("READY=1")
    time.sleep(1.0)
    pings = notify.with_line("WATCHDOG=1")
    assert len(pings) >= 6, pings
    assert {m.pid for m in pings} == {server.pid}
    for name in ("WATCHDOG_USEC", "WATCHDOG_PID"):
        assert httpx.get(server.url(f"/{name}")).status_code == 404, name


def test_a_watchdog_meant_for_another_process_is_not_pinged(server_factory, notify):
    server = _start(server_factory, notify, "apps.pid:app",
                    env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    notify.wait_for("READY=1")
    time.sleep(0.5)
    assert notify.with_line("WATCHDOG=1") == []
    assert server.stop() == 0


def test_a_blocked_event_loop_stops_the_watchdog_pings(server_factory, notify):
    # One process: the pings come from its event loop, which the app
    # blocks for 1.5 s (time.sleep in an async endpoint).
    server = _start(server_factory, notify, "apps.systemd_app:app",
                    env={"WATCHDOG_USEC": "200000"})
    notify.wait_for("READY=1")
    time.sleep(0.5)
    asked = time.monotonic()
    req = Background(server.url("/block?s=1.5"))
    req.join()
    answered = time.monotonic()
    assert req.response is not None and req.response.status_code == 200
    time.sleep(0.5)
    pings = [m.at for m in notify.with_line("WATCHDOG=1")]
    gaps = [b - a for a, b in zip(pings, pings[1:]) if b > asked]
    assert max(gaps) >= 1.2, gaps
    # Before and after, every 0.1 s or so.
    assert sum(1 for t in pings if t < asked) >= 3
    assert sum(1 for t in pings if t > answered) >= 3
    assert server.stop() == 0


def _wait(cond, what, server, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{server.output()}"
        time.sleep(0.02)


def _activated(server_factory, ports, *flags, env=()):
    """`systemd-socket-activate -l 127.0.0.1:P ... python -m cormorant
    FLAGS`, ready: it starts the server at the first connection, which
    wait_ready makes."""
    listen = [f"--listen=127.0.0.1:{p}" for p in ports]
    setenv = [f"--setenv={e}" for e in ("PYTHONUNBUFFERED=1", *env)]
    proc, log = server_factory.spawn(["-c", EXEC, SOCKET_ACTIVATE, *listen, *setenv,
                                      sys.executable, "-m", "cormorant", *flags])
    server = ServerProcess(proc, log, "127.0.0.1", ports[0])
    server_factory.servers.append(server)
    wait_ready(ports[0], proc, log)
    workers = int(flags[flags.index("--workers") + 1]) if "--workers" in flags else 1
    _wait(lambda: server.output().count("Cormorant running on") >= workers, "workers", server)
    return server


def _listening_inode(port):
    """The inode of the socket listening on 127.0.0.1:port (/proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[3] == "0A":
                return fields[9]
    raise AssertionError(f"nothing listens on {port}")


def _socket_inodes(pid):
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[len("socket:["):-1])
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_socket_activation_serves_every_passed_socket(server_factory, workers):
    ports = [free_port(), free_port()]
    server = _activated(server_factory, ports, "apps.pid:app", "--workers", str(workers))
    served_by = {httpx.get(f"http://127.0.0.1:{p}/", timeout=5).text for p in ports for _ in range(3)}
    out = server.output()
    assert f"http://127.0.0.1:{ports[0]} and http://127.0.0.1:{ports[1]}" in out, out
    if workers == 1:
        assert served_by == {str(server.pid)}
    else:
        # The supervisor adopted them and every worker serves both.
        pids = children(server.pid)
        assert len(pids) == 2 and served_by <= {str(p) for p in pids}, (served_by, pids)
        wanted = {_listening_inode(p) for p in ports}
        for pid in pids:
            assert wanted <= _socket_inodes(pid), pid
    assert server.stop() == 0, server.output()


def test_http3_on_every_passed_socket_and_a_prompt_stop(server_factory, tmp_path):
    pki = certs.make_pki(tmp_path / "pki")
    ports = [free_port(), free_port()]
    server = _activated(server_factory, ports, "apps.pid:app", "--http3",
                        "--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key))
    for p in ports:
        r = h3client.get(p, "/", ca=str(pki.ca_cert))
        assert (r.status, bytes(r.body)) == (200, str(server.pid).encode())
    # Each socket's QUIC endpoint waits for its own connections only.
    started = time.monotonic()
    assert server.stop() == 0, server.output()
    assert time.monotonic() - started < 5


def test_the_app_does_not_see_the_activation_variables(server_factory):
    ports = [free_port()]
    server = _activated(server_factory, ports, "apps.env_echo:app")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        assert httpx.get(f"http://127.0.0.1:{ports[0]}/{name}", timeout=5).status_code == 404, name
    assert server.stop() == 0, server.output()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_passed_descriptor_that_is_not_a_socket_is_one_error_line(server_factory, workers):
    proc, log = server_factory.spawn(["-c", FAKE_ACTIVATION, "", "apps.pid:app",
                                      "--workers", str(workers)])
    assert proc.wait(timeout=10) != 0
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines == ["error: LISTEN_FDS: file descriptor 3 is not a socket"], lines


def test_listen_fds_for_another_process_are_ignored(server_factory):
    # LISTEN_PID names another process: descriptor 3 is not ours to serve
    # (it would fail as not a socket), so the server binds its own port.
    port = free_port()
    proc, log = server_factory.spawn(["-c", FAKE_ACTIVATION, "1", "apps.env_echo:app",
                                      "--port", str(port)])
    server = ServerProcess(proc, log, "127.0.0.1", port)
    server_factory.servers.append(server)
    wait_ready(port, proc, log)
    # Removed all the same, as libsystemd does.
    assert httpx.get(server.url("/LISTEN_FDS"), timeout=5).status_code == 404
    assert server.stop() == 0, server.output()


EXAMPLES = TESTS_DIR.parent / "examples" / "systemd"


def _unit(path):
    """A unit file's settings: {section: [(key, value), ...]}, keys in
    order and repeated as written (a socket's ListenStream=)."""
    sections: dict = {}
    section = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        section.append((key.strip(), value.strip()))
    return sections


def test_the_example_unit_files_say_what_the_readme_says():
    service = dict(_unit(EXAMPLES / "cormorant.service")["Service"])
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillMode"] in ("mixed", "control-group")
    assert "ExecStop" not in service
    assert int(service["WatchdogSec"]) > 0
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/cormorant")
    # The stop is the server's: TimeoutStopSec exceeds the drain delay, the
    # graceful timeout and the supervisor's 5 s for lifespan shutdown.
    drain = float(argv[argv.index("--drain-delay") + 1])
    graceful = float(argv[argv.index("--timeout-graceful-shutdown") + 1])
    assert int(service["TimeoutStopSec"]) > drain + graceful + 5
    assert int(argv[argv.index("--workers") + 1]) > 1, "ExecReload needs a supervisor"
    socket_unit = _unit(EXAMPLES / "cormorant.socket")["Socket"]
    assert len([v for k, v in socket_unit if k == "ListenStream"]) == 2


def test_the_example_command_line_is_valid():
    service = dict(_unit(EXAMPLES / "cormorant.service")["Service"])
    argv = shlex.split(service["ExecStart"])
    done = subprocess.run([sys.executable, "-m", "cormorant", *argv[1:], "--check-config"],
                          cwd=TESTS_DIR, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "configuration is valid\n"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_systemd_reads_the_example_units_without_a_warning(tmp_path):
    # ExecStart must name an executable that exists here.
    for name in ("cormorant.service", "cormorant.socket"):
        text = (EXAMPLES / name).read_text()
        text = text.replace("/srv/myapp/.venv/bin/cormorant", sys.executable + " -m cormorant")
        (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "cormorant.socket", "cormorant.service"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
