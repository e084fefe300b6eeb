"""Logging options: the access-log format and its atoms, JSON lines, colours,
--log-config files (JSON, INI) and --env-file."""

import json
import signal
import subprocess
import sys
import threading
import time

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import TESTS_DIR


def test_access_log_format_atoms(server_factory):
    fmt = ('%(client)s|%(method)s|%(path)s|%(query)s|%(protocol)s|%(scheme)s|%(status)d|%(bytes)d'
           '|%({user-agent}i)s|%({x-none}i)s|%(duration).1fms')
    server = server_factory.start("apps.streaming:app", "--access-log", "--access-log-format", fmt)
    httpx.get(server.url("/single?x=1"), headers={"user-agent": "probe/1"})
    out = server.wait_for_output("|GET|/single|")
    line = next(line for line in out.splitlines() if "|GET|/single|" in line)
    fields = line.split("INFO", 1)[1].strip().split("|")
    assert fields[0].startswith("127.0.0.1:")
    assert fields[1:10] == ["GET", "/single", "x=1", "HTTP/1.1", "http", "200", fields[7], "probe/1", "-"]
    assert int(fields[7]) > 0
    assert fields[10].endswith("ms") and float(fields[10][:-2]) >= 0


def test_access_log_format_on_http2(server_factory):
    server = server_factory.start("apps.streaming:app", "--access-log",
                                  "--access-log-format", "h2 %(request)s %(status)s")
    with httpx.Client(http1=False, http2=True) as c:
        c.get(server.url("/single"))
    assert "h2 GET /single HTTP/2 200" in server.wait_for_output("h2 GET /single")


def test_access_log_format_through_python_logging(server_factory):
    # apps.access_custom configures the cormorant.access logger itself, so
    # every line goes through logging: the format applies there too.
    server = server_factory.start("apps.access_custom:app", "--access-log",
                                  "--access-log-format", "custom %(method)s %(path)s %(status)s")
    httpx.get(server.url("/custom?q=2"))
    out = server.wait_for_output("custom GET /custom 200")
    assert "cormorant.access [tagged] custom GET /custom 200" in out


def test_bad_access_log_format_is_one_line():
    r = subprocess.run([sys.executable, "-m", "cormorant", "apps.streaming:app",
                        "--access-log-format", "%(nope)s"],
                       cwd=TESTS_DIR, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "unknown access log atom" in lines[0]


def test_log_json(server_factory):
    server = server_factory.start("apps.streaming:app", "--access-log", "--log-json")
    httpx.get(server.url("/single?a=b"))
    out = server.wait_for_output('"path":"/single"')
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = next(r for r in records if r.get("logger") == "cormorant.access")
    assert access["method"] == "GET" and access["query"] == "a=b" and access["status"] == 200
    started = next(r for r in records
                   if r.get("logger") == "cormorant.error" and "running on" in r["message"])
    assert started["level"] == "INFO" and started["time"]


def test_use_colors(server_factory):
    server = server_factory.start("apps.streaming:app", "--use-colors")
    out = server.wait_for_output("running on")
    assert "\x1b[32mINFO\x1b[0m" in out
    plain = server_factory.start("apps.streaming:app", "--no-use-colors")
    assert "\x1b[" not in plain.wait_for_output("running on")


def test_log_config_json(server_factory, tmp_path):
    log_file = tmp_path / "access.log"
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"f": {"format": "CFG %(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log_file),
                              "formatter": "f"}},
        "loggers": {"cormorant.access": {"handlers": ["file"], "level": "INFO",
                                         "propagate": False}},
    }
    path = tmp_path / "log.json"
    path.write_text(json.dumps(config))
    server = server_factory.start("apps.streaming:app", "--access-log", "--log-config", str(path))
    httpx.get(server.url("/single"))
    server.stop()
    text = log_file.read_text()
    assert "CFG cormorant.access" in text and "GET /single HTTP/1.1" in text


def test_log_config_ini(server_factory, tmp_path):
    ini = tmp_path / "log.ini"
    ini.write_text(
        "[loggers]\nkeys=root,error\n\n"
        "[handlers]\nkeys=h\n\n"
        "[formatters]\nkeys=f\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=h\n\n"
        "[logger_error]\nlevel=INFO\nhandlers=h\nqualname=cormorant.error\npropagate=0\n\n"
        "[handler_h]\nclass=StreamHandler\nformatter=f\nargs=(sys.stderr,)\n\n"
        "[formatter_f]\nformat=INI-%(levelname)s %(message)s\n"
    )
    server = server_factory.start("apps.streaming:app", "--log-config", str(ini))
    assert "INI-INFO Cormorant running on" in server.wait_for_output("INI-INFO")


def test_bad_log_config_is_one_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    r = subprocess.run([sys.executable, "-m", "cormorant", "apps.streaming:app",
                        "--log-config", str(path)],
                       cwd=TESTS_DIR, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "--log-config" in r.stderr


def test_env_file(server_factory, tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text(
        "# a comment\n"
        "CORMORANT_TEST_VALUE=from file\n"
        'export CORMORANT_TEST_QUOTED="quoted # not a comment"\n'
        "CORMORANT_TEST_KEPT=file\n"
    )
    monkeypatch.setenv("CORMORANT_TEST_KEPT", "environment")
    server = server_factory.start("apps.env_echo:app", "--env-file", str(env))
    assert httpx.get(server.url("/CORMORANT_TEST_VALUE")).text == "from file"
    assert httpx.get(server.url("/CORMORANT_TEST_QUOTED")).text == "quoted # not a comment"
    # The environment wins over the file, as with uvicorn.
    assert httpx.get(server.url("/CORMORANT_TEST_KEPT")).text == "environment"


def test_access_log_shows_the_client_a_trusted_proxy_names(server_factory):
    server = server_factory.start("apps.streaming:app", "--access-log")
    httpx.get(server.url("/single?fwd=1"), headers={"x-forwarded-for": "203.0.113.7"})
    with httpx.Client(http1=False, http2=True) as c:
        c.get(server.url("/single?fwd=2"), headers={"x-forwarded-for": "203.0.113.8"})
    out = server.wait_for_output("fwd=2")
    assert '203.0.113.7:0 - "GET /single?fwd=1 HTTP/1.1" 200' in out
    assert '203.0.113.8:0 - "GET /single?fwd=2 HTTP/2" 200' in out


def _access_via_logging(tmp_path):
    """A --log-config file that sends cormorant.access through a Python
    logging handler, each line tagged VIA-LOGGING."""
    config = tmp_path / "log.json"
    config.write_text(json.dumps({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"f": {"format": "VIA-LOGGING %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                             "formatter": "f"}},
        "loggers": {"cormorant.access": {"handlers": ["out"], "level": "INFO",
                                         "propagate": False}},
    }))
    return config


def test_websocket_sessions_are_access_logged(server_factory, tmp_path):
    # Logged when the session ends, as 101 with the message bytes sent, or
    # with the status of the denial; the same line through Python logging.
    config = _access_via_logging(tmp_path)
    for extra in ([], ["--log-config", str(config)]):
        server = server_factory.start("apps.ws:app", "--access-log", "--access-log-format",
                                      "ws %(request)s %(status)s %(bytes)s", *extra)
        url = f"ws://{server.host}:{server.port}"
        with connect(url + "/echo?n=1") as ws:
            ws.send("twelve bytes")
            assert ws.recv() == "twelve bytes"
        try:
            connect(url + "/deny")
        except InvalidStatus as e:
            assert e.response.status_code == 403
        else:
            raise AssertionError("/deny was accepted")
        out = server.wait_for_output("ws GET /deny HTTP/1.1 403 0")
        assert "ws GET /echo?n=1 HTTP/1.1 101 12" in out
        if extra:
            assert "VIA-LOGGING ws GET /echo?n=1 HTTP/1.1 101 12" in out
        server.stop()


def test_access_line_of_a_request_finished_during_shutdown(server_factory, tmp_path):
    # Through Python logging: the line of a request that completes while the
    # worker stops still reaches the logger before the worker exits.
    config = _access_via_logging(tmp_path)
    server = server_factory.start("apps.streaming:app", "--access-log", "--log-config",
                                  str(config))
    result = {}

    def slow():
        result["r"] = httpx.get(server.url("/slow?s=0.5"), timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    server.signal(signal.SIGTERM)
    t.join(10)
    assert result["r"].status_code == 200
    assert server.wait_exit() == 0
    assert 'VIA-LOGGING 127.0.0.1' in server.output()
    assert '"GET /slow?s=0.5 HTTP/1.1" 200' in server.output()
