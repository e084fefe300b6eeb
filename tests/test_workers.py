"""Several worker processes, and Unix domain sockets."""

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from procs import children
from rawhttp import RawConnection, request_bytes


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_workers(server, n, timeout=10):
    deadline = time.monotonic() + timeout
    while server.output().count("Cormorant running on") < n:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.02)


def test_two_workers_serve_from_two_pids_and_sigterm_stops_all(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_workers(server, 2)
    workers = children(server.pid)
    assert len(workers) == 2, workers
    assert f"supervisor (pid {server.pid})" in server.output()
    pids = set()
    deadline = time.monotonic() + 10
    while len(pids) < 2 and time.monotonic() < deadline:
        with httpx.Client() as client:  # a new connection each time
            pids.add(int(client.get(server.url("/")).text))
    assert pids == set(workers)
    assert server.pid not in pids
    assert server.stop() == 0
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(_alive(p) for p in workers)


def _cpus_allowed():
    """What --workers auto should count, worked out here on its own: the
    affinity mask, bounded by every cgroup v2 cpu.max on this process's
    path (rounded up)."""
    n = len(os.sched_getaffinity(0))
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    if path is None:
        return n
    root = Path("/sys/fs/cgroup")
    d = root / path.lstrip("/")
    while True:
        f = d / "cpu.max"
        if f.exists():
            quota, period = (f.read_text().split() + ["100000"])[:2]
            if quota != "max":
                n = min(n, max(1, -(-int(quota) // int(period))))
        if d == root or root not in d.parents:
            return n
        d = d.parent


def test_workers_auto_starts_one_per_usable_cpu(server_factory):
    expected = _cpus_allowed()
    server = server_factory.start("apps.pid:app", "--workers", "auto")
    if expected == 1:
        # One worker needs no supervisor: the process serves itself.
        assert children(server.pid) == []
        assert httpx.get(server.url("/")).text == str(server.pid)
        return
    _wait_workers(server, expected)
    assert f"with {expected} workers" in server.output()
    assert len(children(server.pid)) == expected


def test_workers_auto_is_bounded_by_the_affinity_mask(server_factory):
    # The server inherits this process's affinity: one CPU, one worker.
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})
    try:
        server = server_factory.start("apps.pid:app", "--workers", "auto")
    finally:
        os.sched_setaffinity(0, saved)
    assert children(server.pid) == []
    assert httpx.get(server.url("/")).text == str(server.pid)


def test_new_connections_are_spread_over_workers(server_factory):
    # One SO_REUSEPORT socket per worker: the kernel spreads connections by
    # hash, so 40 fresh connections all landing on one worker would be a
    # 1-in-10^11 event, where a shared socket sends nearly all to one.
    server = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_workers(server, 2)
    counts: dict = {}
    for _ in range(40):
        with httpx.Client() as client:  # a new connection each time
            pid = int(client.get(server.url("/")).text)
        counts[pid] = counts.get(pid, 0) + 1
    assert len(counts) == 2, counts
    assert min(counts.values()) >= 5, counts


def test_port_held_by_another_server_is_reported(server_factory):
    first = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_workers(first, 2)
    # Even though our own sockets use SO_REUSEPORT, a second server must not
    # silently share the port.
    proc, log_path = server_factory.spawn(
        ["-m", "cormorant", "apps.pid:app", "--host", "127.0.0.1",
         "--port", str(first.port), "--workers", "2"]
    )
    try:
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code != 0
    assert "address already in use" in log_path.read_text()


def test_dead_worker_is_replaced(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2")
    _wait_workers(server, 2)
    workers = children(server.pid)
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:
        now = children(server.pid)
        if len(now) == 2 and workers[0] not in now:
            break
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    _wait_workers(server, 3)
    assert httpx.get(server.url("/")).status_code == 200
    assert "died" in server.output()
    assert server.stop() == 0


def test_workers_finish_in_flight_requests_on_sigterm(server_factory):
    server = server_factory.start("apps.streaming:app", "--workers", "2")
    _wait_workers(server, 2)
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/slow?s=0.8"))
        time.sleep(0.3)
        server.signal(signal.SIGTERM)
        resp = c.read_response()
    assert resp.status == 200 and resp.body == b"done"
    assert server.wait_exit(10) == 0


@pytest.fixture
def uds_path(tmp_path):
    return str(tmp_path / "cormorant.sock")


def test_unix_socket(server_factory, uds_path):
    server = server_factory.start("apps.scope_echo:app", uds=uds_path)
    transport = httpx.HTTPTransport(uds=uds_path)
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        r = client.get("/over/uds?x=1")
        assert r.status_code == 200
        scope = r.json()
        r2 = client.post("/post", content=b"body")
        assert r2.status_code == 200
    assert scope["path"] == "/over/uds"
    assert scope["query_string"] == "x=1"
    assert scope["type"] == "http"
    # No TCP peer: client is None (or a placeholder); server names the path.
    assert scope["client"] is None
    assert scope["server"][0] == uds_path
    assert server.stop() == 0
    # Like uvicorn, the server removes the socket file it created.
    assert not os.path.exists(uds_path)


def test_stale_unix_socket_file_is_replaced(server_factory, uds_path):
    import socket as _socket

    stale = _socket.socket(_socket.AF_UNIX)
    stale.bind(uds_path)
    stale.close()  # the file stays behind, nobody listens
    server = server_factory.start("apps.pid:app", uds=uds_path)
    transport = httpx.HTTPTransport(uds=uds_path)
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        assert client.get("/").text == str(server.pid)


def test_unix_socket_streaming(server_factory, uds_path):
    server_factory.start("apps.streaming:app", uds=uds_path)
    transport = httpx.HTTPTransport(uds=uds_path)
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        r = client.get("/stream?n=50")
    assert r.text == "".join(f"chunk-{i}\n" for i in range(50))


def test_unix_socket_with_workers(server_factory, uds_path):
    server = server_factory.start("apps.pid:app", "--workers", "2", uds=uds_path)
    _wait_workers(server, 2)
    transport = httpx.HTTPTransport(uds=uds_path)
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        pid = int(client.get("/").text)
    assert pid in children(server.pid)
    assert server.stop() == 0
    assert not os.path.exists(uds_path)


def test_limit_max_requests_recycles_workers(server_factory):
    server = server_factory.start("apps.pid:app", "--workers", "2",
                                  "--limit-max-requests", "5")
    _wait_workers(server, 2)
    pids = []
    deadline = time.monotonic() + 20
    while len(set(pids)) < 6 and time.monotonic() < deadline:
        with httpx.Client() as client:
            r = client.get(server.url("/"))
        assert r.status_code == 200
        pids.append(int(r.text))
        time.sleep(0.01)
    # A worker that reached the limit keeps serving until its replacement
    # is ready, then stops.
    assert len(set(pids)) >= 6, pids
    assert "(max requests)" in server.output()
    assert server.stop() == 0


def test_workers_that_cannot_start_stop_the_server(server_factory):
    server = server_factory.start("apps.lifespan_fail:app", "--workers", "2", wait=False)
    out = server.wait_failed(20)
    assert "database is unreachable" in out
    assert "failed to boot; stopping the server" in out


def test_workers_missing_module_exits_nonzero(server_factory):
    server = server_factory.start("apps.no_such_module:app", "--workers", "2", wait=False)
    out = server.wait_failed(20)
    assert 'could not import module "apps.no_such_module"' in out
    assert "Traceback" not in out
