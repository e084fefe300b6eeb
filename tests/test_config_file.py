"""The configuration file: cormorant.toml or [tool.cormorant] in
pyproject.toml, with the flags' names as keys; flags and environment
variables win over it."""

import subprocess
import sys
import time

import httpx

from conftest import TESTS_DIR, can_connect, free_port


def test_config_file_settings_apply(server_factory, tmp_path):
    cfg = tmp_path / "prod.toml"
    cfg.write_text(
        'header = ["x-from-config:1", "x-second:2"]\n'
        "access_log = true\n"
        'root-path = "/mounted"\n'
    )
    server = server_factory.start("apps.scope_echo:app", "--config", str(cfg))
    r = httpx.get(server.url("/p"))
    assert r.headers["x-from-config"] == "1" and r.headers["x-second"] == "2"
    assert r.json()["root_path"] == "/mounted"
    assert "GET /p HTTP/1.1" in server.wait_for_output("GET /p HTTP/1.1")


def test_flags_and_environment_win_over_the_file(server_factory, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('root_path = "/file"\nheader = ["x-a:file"]\n')
    by_flag = server_factory.start("apps.scope_echo:app", "--config", str(cfg), "--root-path", "/flag")
    assert httpx.get(by_flag.url("/")).json()["root_path"] == "/flag"
    by_env = server_factory.start("apps.scope_echo:app", "--config", str(cfg),
                                  env={"CORMORANT_ROOT_PATH": "/env"})
    r = httpx.get(by_env.url("/"))
    assert r.json()["root_path"] == "/env"
    assert r.headers["x-a"] == "file"  # the other keys still apply


def _serve_in(cwd, port):
    with open(cwd / "server.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "cormorant"], cwd=cwd,
                                stdout=log, stderr=subprocess.STDOUT)


def _wait_up(proc, port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited: " + proc.args[-1])
        if can_connect("127.0.0.1", port):
            return
        time.sleep(0.05)
    raise AssertionError("server did not start")


def test_cormorant_toml_in_the_working_directory(tmp_path):
    port = free_port()
    (tmp_path / "cormorant.toml").write_text(
        f'app = "apps.scope_echo:app"\napp-dir = "{TESTS_DIR}"\nport = {port}\n'
        'header = ["x-cwd:yes"]\n'
    )
    proc = _serve_in(tmp_path, port)
    try:
        _wait_up(proc, port)
        assert httpx.get(f"http://127.0.0.1:{port}/").headers["x-cwd"] == "yes"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_pyproject_tool_table(tmp_path):
    port = free_port()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n'
        f'[tool.cormorant]\napp = "apps.scope_echo:app"\napp_dir = "{TESTS_DIR}"\nport = {port}\n'
        'root_path = "/py"\n'
    )
    proc = _serve_in(tmp_path, port)
    try:
        _wait_up(proc, port)
        assert httpx.get(f"http://127.0.0.1:{port}/").json()["root_path"] == "/py"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_unknown_key_and_bad_toml_are_one_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.cormorant]\nbogus = 1\n")
    r = subprocess.run([sys.executable, "-m", "cormorant", "apps.scope_echo:app"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and 'unknown setting "bogus"' in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [\n")
    r = subprocess.run([sys.executable, "-m", "cormorant", "apps.scope_echo:app", "--config", str(bad)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "bad.toml" in r.stderr and r.stderr.count("\n") == 1
