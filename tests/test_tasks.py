"""The asyncio task each request's application runs in."""

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


@pytest.mark.parametrize("factory", ["0", "1"])
def test_each_request_has_its_own_named_task_and_context(server_factory, factory):
    server = server_factory.start("apps.task_factory:app", env={"TASK_FACTORY": factory})
    with httpx.Client() as client:
        reports = [client.get(server.url(f"/r{i}")).json() for i in range(20)]
    # A task factory the app installs at startup makes every request's task.
    assert {r["factory"] for r in reports} == {factory == "1"}
    # The given name, not a "Task-N" formatted per request.
    assert {r["name"] for r in reports} == {"cormorant: ASGI application"}
    # A context variable set by one request is not seen by the next.
    assert {r["seen"] for r in reports} == {None}


@pytest.fixture(scope="module")
def identity_server(module_server_factory):
    return module_server_factory.start("apps.task_identity:app")


@pytest.mark.parametrize("sleep", ["0", "1"])
def test_a_request_runs_in_one_task_from_start_to_end(identity_server, sleep):
    """The first step runs at once, under a pooled task; an app that then
    awaits goes on in that same task (anyio and asyncio.timeout rely on
    it)."""
    with httpx.Client() as client:
        reports = [client.get(identity_server.url(f"/same?sleep={sleep}")).json()
                   for _ in range(10)]
    assert reports == [{"same": True, "is_task": True, "done": False}] * 10


def test_concurrent_requests_that_wait_each_keep_their_task(identity_server):
    with ThreadPoolExecutor(16) as pool:
        reports = list(pool.map(lambda _: httpx.get(identity_server.url("/same")).json(),
                                range(64)))
    assert reports == [{"same": True, "is_task": True, "done": False}] * 64


def test_a_cancel_scope_deadline_cancels_the_awaiting_app(identity_server):
    for _ in range(3):
        r = httpx.get(identity_server.url("/scope"))
        assert r.json() == {"caught": True, "same": True}


@pytest.mark.parametrize("first", ["/cancel", "/cancel-await"])
def test_an_app_that_cancels_its_own_task_does_not_cancel_the_next(identity_server, first):
    with httpx.Client() as client:
        r = client.get(identity_server.url(first))
        assert r.status_code == 200
        if first == "/cancel-await":
            assert r.json() == {"cancelled_at_await": True}
        for sleep in ("0", "1", "0"):
            r = client.get(identity_server.url(f"/same?sleep={sleep}"))
            assert r.json() == {"same": True, "is_task": True, "done": False}


def test_a_task_kept_by_an_app_and_cancelled_later_spares_other_requests(identity_server):
    with httpx.Client() as client:
        assert client.get(identity_server.url("/keep")).status_code == 200
        assert client.get(identity_server.url("/cancel-kept")).json()["cancelled"] >= 1
        for sleep in ("0", "1", "0", "1"):
            r = client.get(identity_server.url(f"/same?sleep={sleep}"))
            assert r.json() == {"same": True, "is_task": True, "done": False}


def test_tasks_left_idle_after_a_burst_of_waiting_apps_are_bounded(identity_server):
    """300 apps suspended at once each keep a task; once they end, at most
    256 of those tasks stay pooled and the rest end."""
    n = 300
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", identity_server.port), timeout=10)
        s.sendall(f"GET /hold?n={n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        conns.append(s)
    for s in conns:
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 200"), data
    deadline = time.monotonic() + 5
    while True:
        tasks = httpx.get(identity_server.url("/tasks")).json()["tasks"]
        if tasks <= 256 + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert tasks <= 256 + 1
