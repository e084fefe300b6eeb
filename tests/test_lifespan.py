"""The lifespan protocol: startup/shutdown, state, failure, unsupported."""

import httpx


def test_state_from_startup_is_visible_in_requests(server_factory):
    server = server_factory.start("apps.lifespan_state:app")
    out = server.output()
    assert "Application startup complete" in out
    r = httpx.get(server.url("/"))
    assert r.status_code == 200
    assert r.json()["state"] == {"db": "connected", "answer": 42}


def test_request_state_mutation_does_not_leak(server_factory):
    server = server_factory.start("apps.lifespan_state:app")
    with httpx.Client(base_url=server.base_url) as client:
        for _ in range(3):
            # Each request mutated its copy; the next one sees the original.
            assert client.get("/").json()["state"] == {"db": "connected", "answer": 42}


def test_shutdown_runs_on_sigterm(server_factory):
    server = server_factory.start("apps.lifespan_state:app")
    assert httpx.get(server.url("/")).status_code == 200
    assert server.stop() == 0
    assert (server.results_dir / "shutdown").read_text() == "ok"
    assert "Application shutdown complete" in server.output()


def test_lifespan_off_gives_no_state(server_factory):
    server = server_factory.start("apps.lifespan_state:app", "--lifespan", "off")
    assert httpx.get(server.url("/")).json()["state"] in (None, {})
    assert server.stop() == 0
    assert not (server.results_dir / "shutdown").exists()


def test_startup_failure_exits_nonzero_with_message(server_factory):
    server = server_factory.start("apps.lifespan_fail:app", wait=False)
    out = server.wait_failed(10)
    assert "database is unreachable" in out
    assert "Cormorant running on" not in out


def test_startup_exception_with_lifespan_on_exits_nonzero(server_factory):
    server = server_factory.start("apps.lifespan_raise:app", "--lifespan", "on", wait=False)
    out = server.wait_failed(10)
    assert "startup exploded" in out
    assert "Cormorant running on" not in out


def test_startup_exception_in_auto_mode_serves_without_lifespan(server_factory):
    # Like uvicorn: with --lifespan auto, an app that raises in its lifespan
    # is taken not to support it.
    server = server_factory.start("apps.lifespan_raise:app")
    assert httpx.get(server.url("/")).status_code == 200
    assert "lifespan' protocol appears unsupported" in server.output()


def test_unsupported_lifespan_serves_with_one_warning(server_factory):
    server = server_factory.start("apps.lifespan_unsupported:app")
    r = httpx.get(server.url("/"))
    assert r.status_code == 200
    assert r.text == "served without lifespan"
    httpx.get(server.url("/"))
    assert server.stop() == 0
    out = server.output()
    warnings = [line for line in out.splitlines() if "lifespan" in line.lower()]
    assert len(warnings) == 1, out
    assert "WARNING" in warnings[0]
    assert "unsupported scope type" not in out  # the exception is not dumped
    assert "Traceback" not in out


def test_lifespan_on_with_unsupported_app_fails(server_factory):
    server = server_factory.start("apps.lifespan_unsupported:app", "--lifespan", "on", wait=False)
    code = server.wait_exit(10)
    assert code != 0
    assert "lifespan" in server.output().lower()


def test_no_request_served_before_startup_completes(server_factory):
    server = server_factory.start("apps.lifespan_state:app", env={"STARTUP_DELAY": "0.7"},
                                  ready_line=None)
    # The port accepts connections (the listener is bound) while startup
    # still runs; the request waits for it and then sees its state.
    r = httpx.get(server.url("/"), timeout=10)
    assert r.json()["state"] == {"db": "connected", "answer": 42}
    out = server.output()
    assert "Application startup complete" in out


def test_lifespan_state_in_every_worker(server_factory):
    server = server_factory.start("apps.lifespan_state:app", "--workers", "2")
    for _ in range(10):
        with httpx.Client() as client:
            assert client.get(server.url("/")).json()["state"] == {
                "db": "connected", "answer": 42}
    assert server.stop() == 0


def test_app_returning_on_lifespan_is_noted_without_warning(server_factory):
    # `if scope["type"] != "http": return` is the common way to opt out of
    # lifespan: an INFO line, not a WARNING.
    server = server_factory.start("apps.pid:app")
    assert httpx.get(server.url("/")).status_code == 200
    lines = [line for line in server.output().splitlines() if "lifespan" in line.lower()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("INFO")
