"""systemd without systemd: socket activation through the real
`systemd-socket-activate`."""

from __future__ import annotations

import os
import sys
import time

import httpx
import pytest

from conftest import ServerProcess, free_port, wait_ready
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
