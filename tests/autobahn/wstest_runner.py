# -*- coding: utf-8 -*-
"""`wstest -m fuzzingclient`, made interruptible (runs on wstest's Python 2.7).

run.py starts this with the virtualenv's python instead of the `wstest` script,
with the same arguments, and gets two signals on top of plain wstest:

  SIGUSR1  abort the TCP connection of the case in progress. The case ends with
           whatever verdict the suite gives it (it is usually FAILED) and the run
           goes on with the next case. run.py sends it when one case has made no
           progress for --case-timeout seconds, so a server that hangs on one case
           does not eat the whole time budget.
  SIGTERM  abort the case in progress, write the reports (index.json and the
           per-case files) for the cases done so far, including that one, and
           stop with exit status 3. run.py sends it when --timeout runs out, so
           a run that is cut short still reports what it has (run.py then
           relabels the interrupted case TIMEOUT).

Everything else is autobahntestsuite's own code, unchanged.
"""
from __future__ import print_function

import signal
import sys

# wstest first: it picks the Twisted reactor (choosereactor) before importing it.
from autobahntestsuite import fuzzing, wstest  # isort: skip
from twisted.internet import reactor  # isort: skip

PARTIAL_EXIT = 3
_state = {"factory": None, "proto": None, "partial": False, "reported": False}

_orig_init = fuzzing.FuzzingClientFactory.__init__
_orig_build = fuzzing.FuzzingClientFactory.buildProtocol


def _init(self, *args, **kwargs):
    _state["factory"] = self
    _orig_init(self, *args, **kwargs)


def _build(self, addr):
    proto = _orig_build(self, addr)
    _state["proto"] = proto
    return proto


fuzzing.FuzzingClientFactory.__init__ = _init
fuzzing.FuzzingClientFactory.buildProtocol = _build


def _abort_current():
    proto = _state["proto"]
    transport = getattr(proto, "transport", None) if proto is not None else None
    if transport is None:
        print("wstest_runner: no connection to abort", file=sys.stderr)
        return
    print("wstest_runner: aborting the connection of the case in progress", file=sys.stderr)
    sys.stdout.flush()
    transport.abortConnection()


def _write_reports_and_stop():
    if _state.get("reported"):
        return
    _state["reported"] = True
    factory = _state["factory"]
    try:
        if factory is not None:
            factory.createReports()
    finally:
        if reactor.running:
            reactor.stop()


def _finish_partial():
    """Stop after the case in progress: abort its connection, and once the
    factory hears of the loss, write the reports instead of starting the next case."""
    if _state["partial"]:
        return
    _state["partial"] = True
    print("wstest_runner: stopping early; writing reports for the cases done so far", file=sys.stderr)
    proto = _state["proto"]
    transport = getattr(proto, "transport", None) if proto is not None else None
    if transport is not None and getattr(proto, "runCase", None) is not None and not transport.disconnected:
        transport.abortConnection()
        reactor.callLater(10, _write_reports_and_stop)  # in case the loss is never reported
    else:
        _write_reports_and_stop()


def _stop_or(orig):
    def handler(self, connector, reason):
        if _state["partial"]:
            _write_reports_and_stop()
        else:
            orig(self, connector, reason)

    return handler


fuzzing.FuzzingClientFactory.clientConnectionLost = _stop_or(fuzzing.FuzzingClientFactory.clientConnectionLost)
fuzzing.FuzzingClientFactory.clientConnectionFailed = _stop_or(fuzzing.FuzzingClientFactory.clientConnectionFailed)


def _install_handlers():
    # After reactor startup, so these replace Twisted's own SIGTERM handler.
    signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(_abort_current))
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(_finish_partial))


def main():
    sys.argv[0] = "wstest"
    reactor.callWhenRunning(_install_handlers)
    wstest.run()
    sys.stdout.flush()
    sys.exit(PARTIAL_EXIT if _state["partial"] else 0)


if __name__ == "__main__":
    main()
