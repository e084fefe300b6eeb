"""--reload: the worker is replaced when a watched file changes; an app that
no longer imports is reported and the server waits for the next change."""

import time

import httpx

APP = '''
import os

VERSION = "{version}"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": f"{{VERSION}} {{os.getpid()}}".encode()}})
'''


def write_app(path, version):
    path.write_text(APP.format(version=version))


def wait_for_version(server, version, timeout=15.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(server.url("/"), timeout=1).text
            if last.startswith(version + " "):
                return last
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise AssertionError(f"never saw {version!r}; last answer {last!r}\n" + server.output())


def start(server_factory, tmp_path, *flags):
    return server_factory.start("reload_app:app", "--app-dir", str(tmp_path), "--reload",
                                "--reload-dir", str(tmp_path), "--reload-delay", "0.1", *flags)


def test_reload_on_change(server_factory, tmp_path):
    write_app(tmp_path / "reload_app.py", "v1")
    server = start(server_factory, tmp_path)
    first = wait_for_version(server, "v1")
    write_app(tmp_path / "reload_app.py", "v2")
    second = wait_for_version(server, "v2")
    assert first.split()[1] != second.split()[1], "a new worker process serves"
    assert "reloading" in server.output()


def test_broken_app_waits_for_the_next_change(server_factory, tmp_path):
    write_app(tmp_path / "reload_app.py", "v1")
    server = start(server_factory, tmp_path)
    wait_for_version(server, "v1")
    (tmp_path / "reload_app.py").write_text("def broken(:\n")
    server.wait_for_output("waiting for a change", timeout=15)
    assert server.proc.poll() is None, "the reloader keeps running"
    write_app(tmp_path / "reload_app.py", "v3")
    wait_for_version(server, "v3")


def test_unwatched_files_do_not_reload(server_factory, tmp_path):
    write_app(tmp_path / "reload_app.py", "v1")
    server = start(server_factory, tmp_path, "--reload-exclude", "ignored_*.py")
    pid = wait_for_version(server, "v1").split()[1]
    (tmp_path / "notes.md").write_text("not python")
    (tmp_path / "ignored_helper.py").write_text("x = 1\n")
    time.sleep(1.0)
    assert httpx.get(server.url("/")).text.split()[1] == pid
    (tmp_path / "templates.html").write_text("<p>")
    time.sleep(0.5)
    assert httpx.get(server.url("/")).text.split()[1] == pid


def test_reload_include_pattern(server_factory, tmp_path):
    write_app(tmp_path / "reload_app.py", "v1")
    server = start(server_factory, tmp_path, "--reload-include", "*.html")
    pid = wait_for_version(server, "v1").split()[1]
    (tmp_path / "page.html").write_text("<p>changed</p>")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url("/"), timeout=1).text.split()[1] != pid:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("an included .html change did not reload")
