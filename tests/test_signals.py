"""Stop signals as process managers send them: one stop request is one
graceful stop, however many copies of the signal reach a process.

systemd (`KillMode=control-group`), Ctrl+C in a terminal, `timeout` and
`tini -g` signal the whole process group, so each worker gets the signal
directly and once more from its supervisor."""

import os
import signal
import time

import pytest
from test_shutdown import Background


def _start(server_factory, workers, *flags):
    server = server_factory.start("apps.streaming:app", "--workers", str(workers), *flags,
                                  new_session=True)
    deadline = time.monotonic() + 10
    while server.output().count("Cormorant running on") < workers:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.02)
    return server


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_group_signal_lets_the_request_in_flight_finish(server_factory, workers, sig):
    server = _start(server_factory, workers)
    req = Background(server.url("/slow?s=2"))
    time.sleep(0.4)  # the request is running in the app
    os.killpg(server.pid, sig)
    req.join()
    assert req.error is None, req.error
    assert req.response.status_code == 200 and req.response.text == "done"
    assert server.wait_exit(15) == 0
    out = server.output()
    assert "second stop signal" not in out, out
    assert "closing every connection now" not in out, out


@pytest.mark.parametrize("workers", [1, 2])
def test_a_deliberate_second_signal_drops_connections(server_factory, workers):
    # A second Ctrl+C well after the first: the user wants out now.
    server = _start(server_factory, workers)
    req = Background(server.url("/slow?s=30"))
    time.sleep(0.4)
    os.killpg(server.pid, signal.SIGINT)
    time.sleep(1.5)  # more than STOP_SIGNAL_GAP
    assert server.proc.poll() is None, "still draining the slow request"
    started = time.monotonic()
    os.killpg(server.pid, signal.SIGINT)
    assert server.wait_exit(10) == 0
    assert time.monotonic() - started < 5
    req.join()
    assert req.response is None, "the request was cut off"
    assert "second stop signal" in server.output()


@pytest.mark.parametrize("mode", [["--workers", "2"], ["--reload"]], ids=["supervisor", "reloader"])
def test_ctrl_c_to_a_watching_process_exits_cleanly(server_factory, mode):
    # The supervisor and the reloader stop on SIGINT with status 0, not by
    # dying of it (Python's own SIGINT handler must not run afterwards).
    server = server_factory.start("apps.pid:app", *mode, new_session=True)
    req = Background(server.url("/"))
    req.join()
    assert req.response is not None and req.response.status_code == 200
    os.killpg(server.pid, signal.SIGINT)
    assert server.wait_exit(15) == 0, server.output()
