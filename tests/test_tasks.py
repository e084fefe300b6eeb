"""The asyncio task each request's application runs in."""

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
