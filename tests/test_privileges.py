"""--umask, --user and --group: the files the server makes, and who it
serves as once its sockets are bound."""

import os
import pwd
import socket
import stat
import time

import httpx
import pytest
from test_cli import assert_one_error_line, run_cli

from procs import children


def _ids(pid):
    """The real, effective, saved and filesystem uid and gid of `pid`."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                fields[key] = [int(v) for v in value.split()]
    return fields


def _free_privileged_port():
    for port in range(1000, 1024):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below 1024")


@pytest.fixture
def uds_path(tmp_path):
    return str(tmp_path / "cormorant.sock")


def _wait_running(server, n=1, timeout=10):
    deadline = time.monotonic() + timeout
    while server.output().count("Cormorant running on") < n:
        assert server.proc.poll() is None, server.output()
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.02)


@pytest.mark.parametrize("mask, mode", [("077", 0o700), ("027", 0o750)])
def test_umask_sets_the_unix_socket_mode(server_factory, uds_path, mask, mode):
    server_factory.start("apps.pid:app", "--umask", mask, uds=uds_path)
    assert stat.S_IMODE(os.stat(uds_path).st_mode) == mode


def test_bad_umask_is_one_error_line():
    assert_one_error_line(run_cli("apps.pid:app", "--umask", "999"), "999")


def test_unknown_user_is_one_error_line():
    assert_one_error_line(run_cli("apps.pid:app", "--user", "no-such-user-xq"), "no-such-user-xq")


if os.geteuid() == 0:
    NOBODY = pwd.getpwnam("nobody")

    def test_serves_as_the_user_on_a_port_it_could_not_bind(server_factory):
        # Port < 1024: only root binds it, so serving from it as nobody shows
        # the socket was bound before the server became nobody.
        port = _free_privileged_port()
        server = server_factory.start("apps.pid:app", "--user", "nobody", "--port", str(port),
                                      wait=False)
        _wait_running(server)
        ids = _ids(server.pid)
        assert ids["Uid"] == [NOBODY.pw_uid] * 4
        assert ids["Gid"] == [NOBODY.pw_gid] * 4
        assert ids["Groups"] == [NOBODY.pw_gid]
        r = httpx.get(f"http://127.0.0.1:{port}/")
        assert r.text == str(server.pid)

    def test_workers_serve_as_the_user_and_the_supervisor_stays(server_factory):
        server = server_factory.start("apps.pid:app", "--workers", "2", "--user", "nobody",
                                      "--group", "nogroup")
        _wait_running(server, 2)
        workers = children(server.pid)
        assert len(workers) == 2
        for pid in workers:
            assert _ids(pid)["Uid"] == [NOBODY.pw_uid] * 4
        # The supervisor keeps its user: it binds sockets for new workers.
        assert _ids(server.pid)["Uid"][0] == 0
        assert int(httpx.get(server.url("/")).text) in workers

    def test_the_app_is_imported_as_the_user(server_factory):
        server = server_factory.start("apps.import_uid:app", "--user", "nobody")
        assert httpx.get(server.url("/")).text == str(NOBODY.pw_uid)
else:
    def test_becoming_another_user_without_the_right_fails_clearly(server_factory):
        r = run_cli("apps.pid:app", "--user", "root", "--port", "0")
        assert r.returncode != 0
        assert "--user" in r.stderr and "Traceback" not in r.stderr
