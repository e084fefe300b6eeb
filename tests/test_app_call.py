"""How the server calls the application in each request's task: whatever
the app returns is awaited, and how the app ended decides the answer."""

import sys

import httpx
import pytest


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory.start("apps.awaitables:app")


def test_an_awaitable_that_is_not_a_coroutine_is_awaited(server):
    r = httpx.get(server.url("/future"))
    assert r.status_code == 200
    assert r.content == b"later"


def test_the_app_runs_in_its_task_and_its_awaits_are_visible(server):
    r = httpx.get(server.url("/coroutine"))
    assert r.status_code == 200
    report = r.json()
    assert report["in_task"] is True
    # The task's coroutine shows what it waits on while suspended, as a
    # coroutine's `cr_await` does (the app's own coroutine; before 3.10 its
    # `__await__` iterator, which is what is stepped there), and nothing
    # while it runs.
    assert report["awaits"] == ("coroutine" if sys.version_info >= (3, 10) else "coroutine_wrapper")
    assert report["running"] == "NoneType"


def test_an_app_that_returns_no_awaitable_gets_500_and_a_logged_error(server):
    r = httpx.get(server.url("/not-awaitable"))
    assert r.status_code == 500
    out = server.wait_for_output("not awaitable")
    assert "Exception in ASGI application" in out
    assert "the ASGI application returned NoneType, which is not awaitable" in out
    # The server goes on serving.
    assert httpx.get(server.url("/future")).status_code == 200
