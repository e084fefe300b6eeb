"""The command line and the Python API."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

import httpx
import pytest

import cormorant

from conftest import TESTS_DIR, free_port, wait_ready


def run_cli(*args, timeout=10):
    return subprocess.run(
        [sys.executable, "-m", "cormorant", *args],
        cwd=TESTS_DIR, capture_output=True, text=True, timeout=timeout,
    )


def assert_one_error_line(result, *needles):
    assert result.returncode != 0
    out = (result.stdout + result.stderr).strip()
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert "Traceback" not in out
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"cormorant {cormorant.__version__}"


def test_help():
    r = run_cli("--help")
    assert r.returncode == 0
    for flag in ("--port", "--uds", "--workers", "--loop", "--root-path",
                 "--limit-concurrency", "--timeout-graceful-shutdown"):
        assert flag in r.stdout


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["-h"]])
def test_output_into_a_closed_pipe_exits_quietly(args):
    # `cormorant --help | head -1`: the reader is gone before the output is
    # written. Like `ls | head`, no panic and no traceback.
    proc = subprocess.Popen(
        [sys.executable, "-m", "cormorant", *args],
        cwd=TESTS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=10) == 0, err
    assert err == ""


def test_error_into_a_closed_pipe_keeps_its_exit_code():
    # `cormorant --no-such-flag 2>&1 | true`: the one error line cannot be
    # written, and the exit code still says what happened.
    proc = subprocess.Popen(
        [sys.executable, "-m", "cormorant", "apps.pid:app", "--no-such-flag"],
        cwd=TESTS_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    proc.stdout.close()
    assert proc.wait(timeout=10) == 2


def test_check_config_validates_without_importing_the_app():
    # The module does not exist: it is not imported.
    r = run_cli("no_such_module_xyz:app", "--check-config", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration is valid\n"
    line = assert_one_error_line(
        run_cli("no_such_module_xyz:app", "--check-config", "--timeout-request-body=-1"),
        "timeout-request-body",
    )
    assert "no_such_module_xyz" not in line


def test_print_config_names_where_each_value_came_from(tmp_path):
    settings = tmp_path / "cormorant.toml"
    settings.write_text('workers = 3\naccess-log = true\nssl-keyfile-password = "hunter2"\n')
    r = subprocess.run(
        [sys.executable, "-m", "cormorant", "apps.pid:app", "--config", str(settings),
         "--host", "0.0.0.0", "--print-config"],
        cwd=TESTS_DIR, capture_output=True, text=True, timeout=10,
        env={**os.environ, "CORMORANT_PORT": "9123"},
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert 'app = "apps.pid:app"  # command line' in lines
    assert 'host = "0.0.0.0"  # command line' in lines
    assert "port = 9123  # environment CORMORANT_PORT" in lines
    assert f"workers = 3  # file {settings}" in lines
    assert f"access-log = true  # file {settings}" in lines
    assert "backlog = 2048  # default" in lines
    assert f'ssl-keyfile-password = "***"  # file {settings}' in lines
    assert "hunter2" not in r.stdout


def test_bad_flag():
    assert_one_error_line(run_cli("apps.pid:app", "--no-such-flag"), "--no-such-flag")


def test_bad_flag_value():
    assert_one_error_line(run_cli("apps.pid:app", "--port", "not-a-port"), "--port")


def test_bad_workers_value():
    assert_one_error_line(run_cli("apps.pid:app", "--workers", "lots"), "lots")


def test_workers_auto_is_shown_as_auto():
    r = run_cli("apps.pid:app", "--workers", "auto", "--print-config")
    assert r.returncode == 0, r.stderr
    assert 'workers = "auto"  # command line' in r.stdout.splitlines()


def test_bad_loop_value():
    assert_one_error_line(run_cli("apps.pid:app", "--loop", "trio"), "trio")


def test_missing_app_argument():
    r = run_cli()
    assert r.returncode != 0
    assert "Traceback" not in r.stderr


def test_missing_module():
    assert_one_error_line(run_cli("no_such_module_xyz:app", "--port", str(free_port())),
                          "no_such_module_xyz")


def test_missing_attribute():
    assert_one_error_line(run_cli("apps.pid:nope", "--port", str(free_port())),
                          "nope", "apps.pid")


def test_target_without_colon():
    assert_one_error_line(run_cli("apps.pid", "--port", str(free_port())), "module:attribute")


def test_module_raising_on_import():
    assert_one_error_line(run_cli("apps.broken_import:app", "--port", str(free_port())),
                          "broken on purpose")


def test_invalid_header_option():
    assert_one_error_line(run_cli("apps.pid:app", "--header", "no-colon"), "no-colon")


def test_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("apps.pid:app", "--port", str(port))
        line = assert_one_error_line(r, str(port))
        assert "in use" in line


def test_port_in_use_with_workers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("apps.pid:app", "--port", str(port), "--workers", "2")
        assert_one_error_line(r, str(port))


def test_app_dir_option(server_factory):
    server = server_factory.start("pid:app", "--app-dir", str(TESTS_DIR / "apps"))
    assert httpx.get(server.url("/")).text == str(server.pid)


def test_factory_option(server_factory, tmp_path):
    server = server_factory.start("apps.factory:create_app", "--factory")
    assert httpx.get(server.url("/")).text == "made by factory"


def test_environment_variables_configure_server(server_factory):
    port = free_port()
    proc, log = server_factory.spawn(["-m", "cormorant"], env={
        "CORMORANT_APP": "apps.pid:app",
        "CORMORANT_PORT": str(port),
        "CORMORANT_NO_SERVER_HEADER": "true",
    })
    try:
        wait_ready(port, proc, log)
        r = httpx.get(f"http://127.0.0.1:{port}/")
        assert r.text == str(proc.pid)
        assert "server" not in r.headers
    finally:
        _stop(proc)


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


def _python_api(server_factory, code):
    port = free_port()
    proc, log = server_factory.spawn(["-c", textwrap.dedent(code).replace("PORT", str(port))])
    try:
        wait_ready(port, proc, log)
        r = httpx.get(f"http://127.0.0.1:{port}/")
        assert r.status_code == 200
        assert r.text == str(proc.pid)
    finally:
        assert _stop(proc) == 0, log.read_text()
    return log.read_text()


def test_python_api_server_serve(server_factory):
    _python_api(server_factory, """
        import cormorant
        cormorant.Server("apps.pid:app", address="127.0.0.1", port=PORT).serve()
    """)


def test_python_api_run_with_app_object(server_factory):
    _python_api(server_factory, """
        import cormorant
        from apps.pid import app
        cormorant.run(app, host="127.0.0.1", port=PORT)
    """)


def test_python_api_granian_style_keywords(server_factory):
    _python_api(server_factory, """
        import cormorant
        cormorant.Server("apps.pid:app", address="127.0.0.1", port=PORT,
                         interface="asgi", log_access=False, url_path_prefix="").serve()
    """)


def test_python_api_rejects_unknown_keyword():
    with pytest.raises(TypeError):
        cormorant.Server("apps.pid:app", no_such_option=1)


def test_python_api_rejects_app_object_with_workers():
    async def app(scope, receive, send):
        pass

    with pytest.raises(ValueError):
        cormorant.Server(app, workers=2)


def test_serve_on_inherited_fd(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    log = tmp_path / "fd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cormorant", "apps.pid:app", "--fd", str(sock.fileno())],
            cwd=TESTS_DIR, stdout=out, stderr=subprocess.STDOUT, pass_fds=[sock.fileno()],
        )
    sock.close()
    try:
        wait_ready(port, proc, log)
        assert httpx.get(f"http://127.0.0.1:{port}/").text == str(proc.pid)
    finally:
        assert _stop(proc) == 0


def test_python_api_granian_constructor_keywords(server_factory):
    # A Granian(...) call moved over by changing the import.
    out = _python_api(server_factory, """
        import cormorant
        cormorant.Server("apps.pid:app", address="127.0.0.1", port=PORT, interface="asgi",
                         workers=1, runtime_threads=2, runtime_mode="st", blocking_threads=1,
                         loop="auto", http="auto", websockets=False, backlog=128,
                         log_enabled=True, log_level="info", log_access=True,
                         url_path_prefix="", respawn_interval=3.5, workers_kill_timeout=5,
                         ssl_cert=None, ssl_key=None, reload=False, factory=False).serve()
    """)
    assert "runtime_threads has no effect in Cormorant" in out


def test_python_api_uvicorn_run_keywords(server_factory):
    _python_api(server_factory, """
        import cormorant
        from apps.pid import app
        cormorant.run(app, host="127.0.0.1", port=PORT, loop="auto", http="h11", ws="wsproto",
                      lifespan="auto", interface="asgi3", log_level="info", access_log=True,
                      use_colors=False, server_header=True, date_header=True, root_path="",
                      timeout_keep_alive=5, timeout_graceful_shutdown=5, limit_concurrency=100,
                      backlog=2048, headers=[("x-a", "1")], h11_max_incomplete_event_size=65536,
                      timeout_notify=30, env_file=None, reload=False)
    """)


def test_python_api_names_unknown_keywords():
    with pytest.raises(TypeError, match="no_such_option"):
        cormorant.Server("apps.pid:app", no_such_option=1)
