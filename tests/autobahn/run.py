#!/usr/bin/env python3
"""Run the Autobahn|Testsuite fuzzing client against a server serving echo_app.

    .venv/bin/python tests/autobahn/run.py --server cormorant            # all 517 cases
    .venv/bin/python tests/autobahn/run.py --server uvicorn --cases '1.*,2.*,5.*'
    .venv/bin/python tests/autobahn/run.py --cases ci                      # CI's subset

Starts the server on a free 127.0.0.1 port, writes a fuzzingclient spec, runs
`wstest -m fuzzingclient` (through wstest_runner.py) from the Python 2.7
virtualenv made by setup.sh (run here first unless --wstest or --no-setup is
given), reads index.json from the report directory and prints the verdicts.

Passing verdicts are OK, NON-STRICT and INFORMATIONAL. Exit status 1 when any
case is FAILED or UNIMPLEMENTED, or TIMEOUT (no progress for --case-timeout
seconds: its connection was aborted and the run went on), or MISSING (the run
hit --timeout first: the cases done by then are still reported), or when the
server or wstest failed; 2 on a usage error. The closing-handshake verdict
(behaviorClose) is reported but only fails the run with --strict-close.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import html
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
APP = "tests.autobahn.echo_app:app"
HOST = "127.0.0.1"
MAX_SIZE = 16 * 1024 * 1024  # 9.1.6/9.2.6 send 16 MiB messages

# The representative subset CI runs: framing, pings, reserved bits, opcodes,
# fragmentation, UTF-8, close handling, and the first group of each
# permessage-deflate family (12.1: deflate with default parameters;
# 13.1: with client/server_no_context_takeover and max_window_bits offers).
CI_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "12.1.*", "13.1.*"]
PRESETS = {"ci": CI_CASES, "all": ["*"]}

PASSING = ("OK", "NON-STRICT", "INFORMATIONAL")
CLOSE_PASSING = ("OK", "INFORMATIONAL")
ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "TIMEOUT", "MISSING"]


def log(msg: str) -> None:
    print(f"autobahn: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, name: str, grace: float = 10.0) -> None:
    """SIGTERM the process we started, then SIGKILL it and its session if needed.

    Every child here is started with start_new_session=True, so its process
    group id is its own pid and holds only what it spawned (workers).
    """
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {proc.pid}) still running {grace:.0f}s after SIGTERM: SIGKILL")
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    # Anything the child left behind in its own group (e.g. worker processes).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def wait_ready(proc: subprocess.Popen, port: int, timeout: float) -> str | None:
    """Wait until the server answers HTTP on the port; return an error or None."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"server exited with status {proc.returncode} before it was ready"
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/", headers={"Connection": "close"})
            status = conn.getresponse().status
            conn.close()
            if status == 404:
                return None
            return f"GET / answered {status}, expected the echo app's 404"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    return f"server not ready after {timeout:.0f}s ({last})"


def wait_listening(port: int, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def server_command(args, port: int) -> list[str]:
    # Keepalive pings are off: autobahn counts an unsolicited ping as a frame the
    # case did not expect, so a ping landing inside a long case would fail it at
    # random. Ping handling is what cases 2.* test.
    py = args.python
    if args.server == "cormorant":
        cmd = [py, "-m", "cormorant", APP, "--host", HOST, "--port", str(port), "--log-level", "warning"]
        help_text = cormorant_help(py)
        for option, value in (("--ws-max-size", str(MAX_SIZE)), ("--ws-ping-interval", "0")):
            if any(a == option or a.startswith(option + "=") for a in args.server_arg):
                continue  # --server-arg sets it
            if help_text is None or option in help_text:
                cmd += [option, value]
            else:
                log(f"warning: this cormorant has no {option} option; running with its default")
    else:
        cmd = [
            py, "-m", "uvicorn", APP, "--ws", "websockets", "--host", HOST, "--port", str(port),
            "--ws-max-size", str(MAX_SIZE), "--ws-ping-interval", "3600", "--log-level", "warning",
        ]
    return cmd + args.server_arg


def cormorant_help(py: str) -> str | None:
    try:
        return subprocess.run(
            [py, "-m", "cormorant", "--help"], cwd=REPO, capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None  # let the real start report the problem


def agent_name(args) -> str:
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    if args.agent:
        return args.agent
    if args.server == "cormorant":
        return f"Cormorant-{version('cormorant')}"
    return f"uvicorn-{version('uvicorn')}-websockets-{version('websockets')}"


def find_wstest(args) -> str:
    if args.wstest:
        return args.wstest
    if args.no_setup:
        venv = os.environ.get("AUTOBAHN_VENV") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cormorant", "autobahn-venv"
        )
        return os.path.join(venv, "bin", "wstest")
    res = subprocess.run(["sh", os.path.join(HERE, "setup.sh")], stdout=subprocess.PIPE, text=True, timeout=900)
    if res.returncode != 0:
        raise SystemExit(f"autobahn: setup.sh failed with status {res.returncode}")
    return res.stdout.strip().splitlines()[-1]


def wstest_version(wstest: str) -> str:
    try:
        out = subprocess.run([wstest, "-a"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    return ", ".join(line.strip() for line in out.splitlines() if line.strip())


class WstestRun:
    """Outcome of one wstest run."""

    def __init__(self):
        self.rc: int | None = None
        self.seconds = 0.0
        self.timed_out = False
        self.aborted: dict[str, float] = {}  # case id -> seconds it had run when aborted
        self.last_case: str | None = None


def run_wstest(wstest: str, spec_path: str, log_path: str, args, total: int) -> WstestRun:
    """Run the fuzzing client under wstest_runner.py, watching the time limits.

    Each case gets --case-timeout seconds: past that, SIGUSR1 makes the runner
    abort that case's connection and wstest goes on with the next case. The
    whole run gets --timeout seconds: past that, SIGTERM makes it write the
    reports of the cases done so far and stop.
    """
    run = WstestRun()
    python = os.path.join(os.path.dirname(wstest), "python")
    cmd = [python, os.path.join(HERE, "wstest_runner.py"), "-m", "fuzzingclient", "-s", spec_path]
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    lock = threading.Lock()
    progress = {"case": None, "since": time.monotonic(), "done": 0}
    start = time.monotonic()
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(
            cmd, cwd=os.path.dirname(spec_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", env=env, start_new_session=True,
        )

        def pump():
            for line in proc.stdout:
                logf.write(line)
                logf.flush()
                if args.verbose:
                    sys.stderr.write(line)
                m = re.match(r"Running test case ID (\S+)", line)
                if m:
                    with lock:
                        progress.update(case=m.group(1), since=time.monotonic(), done=progress["done"] + 1)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        next_report = start + 30
        term_sent = None
        try:
            while True:
                try:
                    run.rc = proc.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                with lock:
                    case, since, done = progress["case"], progress["since"], progress["done"]
                if term_sent is not None:
                    if now - term_sent > 120:
                        log("wstest did not stop within 120s of SIGTERM")
                        break  # stop_process below kills it
                    continue
                if now - start > args.timeout:
                    log(f"time limit of {args.timeout:.0f}s reached during case {case}: stopping wstest, "
                        "which reports the cases done so far")
                    run.timed_out = True
                    os.kill(proc.pid, signal.SIGTERM)
                    term_sent = now
                    continue
                if case is not None and now - since > args.case_timeout:
                    if case in run.aborted:
                        # The abort did not end the case (it should at once): give up on the run.
                        if now - since > args.case_timeout + 60:
                            log(f"case {case} still running after its connection was aborted: stopping wstest")
                            os.kill(proc.pid, signal.SIGTERM)
                            term_sent = now
                    else:
                        log(f"case {case} made no progress for {args.case_timeout:.0f}s: aborting its connection")
                        run.aborted[case] = now - since
                        os.kill(proc.pid, signal.SIGUSR1)
                if not args.verbose and now >= next_report:
                    log(f"{done}/{total or '?'} cases after {now - start:.0f}s; "
                        f"case {case} running for {now - since:.0f}s")
                    next_report = now + 30
        except BaseException:  # Ctrl-C: leave nothing running
            stop_process(proc, "wstest", grace=5)
            raise
        stop_process(proc, "wstest", grace=5)  # reaps strays in its group, or kills a stuck one
        run.rc = proc.returncode
        reader.join(timeout=5)
    run.seconds = time.monotonic() - start
    run.last_case = progress["case"]
    return run


# --------------------------------------------------------------------------- #
# results


def case_key(case_id: str):
    return tuple(int(x) for x in case_id.split("."))


def group_of(case_id: str) -> str:
    parts = case_id.split(".")
    # 1.x, 4.x, 6.x, 7.x, 9.x, 12.x, 13.x have subgroups worth showing; 2, 3, 5, 10 do not.
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def short_text(text: str, limit: int = 160) -> str:
    text = re.sub(r"<[^>]+>", " ", text or "")
    text = " ".join(html.unescape(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_results(outdir: str, agent: str, expected_cases: list[str] | None, aborted: dict | None = None,
                 cut_short: dict | None = None):
    """Return {case_id: {behavior, behaviorClose, duration, description, result, resultClose}}."""
    index_path = os.path.join(outdir, "index.json")
    with open(index_path) as f:
        index = json.load(f)
    entries = index.get(agent)
    if entries is None:
        if len(index) == 1:
            entries = next(iter(index.values()))
        else:
            raise ValueError(f"agent {agent!r} not in {index_path} (has {sorted(index)})")
    results = {}
    for case_id, entry in entries.items():
        r = {
            "behavior": entry.get("behavior", "?"),
            "behaviorClose": entry.get("behaviorClose", "?"),
            "duration": entry.get("duration", 0),
            "remoteCloseCode": entry.get("remoteCloseCode"),
            "description": "",
            "result": "",
            "resultClose": "",
            "close": "",
        }
        report = entry.get("reportfile")
        if report and (r["behavior"] not in PASSING or r["behaviorClose"] not in CLOSE_PASSING
                       or case_id in (aborted or {})):
            try:
                with open(os.path.join(outdir, report)) as f:
                    detail = json.load(f)
                r["description"] = short_text(detail.get("description", ""))
                r["result"] = short_text(detail.get("result", ""))
                r["resultClose"] = short_text(detail.get("resultClose", ""))
                code, reason = detail.get("remoteCloseCode"), detail.get("remoteCloseReason")
                if code is not None:
                    r["close"] = f"server sent {code}" + (f" {reason!r}" if reason else "")
            except (OSError, ValueError):
                pass
        results[case_id] = r
    for case_id, secs in (aborted or {}).items():
        r = results.get(case_id)
        if r is not None:
            # Whatever the suite made of the dropped connection, the case hung.
            r["behavior"] = "TIMEOUT"
            r["result"] = f"no progress for {secs:.0f}s: the runner aborted the connection. " + r["result"]
    for case_id, why in (cut_short or {}).items():
        if case_id in results and case_id not in (aborted or {}):
            # Stopping wstest ends the case in progress; its verdict means nothing.
            results[case_id].update(behavior="TIMEOUT", behaviorClose="TIMEOUT", result=why, close="")
    for case_id in expected_cases or []:
        if case_id not in results:
            results[case_id] = {
                "behavior": "MISSING",
                "behaviorClose": "MISSING",
                "duration": 0,
                "remoteCloseCode": None,
                "description": "not in the report: the run stopped before this case finished",
                "result": "",
                "resultClose": "",
                "close": "",
            }
    return dict(sorted(results.items(), key=lambda kv: case_key(kv[0])))


def ordered(counter: collections.Counter) -> list[str]:
    return [k for k in ORDER if k in counter] + sorted(k for k in counter if k not in ORDER)


def summarize(results: dict, strict_close: bool) -> dict:
    behavior = collections.Counter(r["behavior"] for r in results.values())
    close = collections.Counter(r["behaviorClose"] for r in results.values())
    groups: dict[str, collections.Counter] = collections.OrderedDict()
    durations: dict[str, int] = collections.OrderedDict()
    for case_id, r in results.items():
        g = group_of(case_id)
        groups.setdefault(g, collections.Counter())[r["behavior"]] += 1
        durations[g] = durations.get(g, 0) + int(r["duration"] or 0)
    failing = {k: r for k, r in results.items() if r["behavior"] not in PASSING}
    close_issues = {
        k: r for k, r in results.items() if r["behaviorClose"] not in CLOSE_PASSING and k not in failing
    }
    notable = {k: r for k, r in results.items() if r["behavior"] in ("NON-STRICT", "INFORMATIONAL")}
    ok = not failing and not (strict_close and close_issues)
    return dict(
        behavior=behavior, close=close, groups=groups, durations=durations,
        failing=failing, close_issues=close_issues, notable=notable, ok=ok,
    )


def count_line(counter: collections.Counter) -> str:
    return ", ".join(f"{k} {counter[k]}" for k in ordered(counter))


def print_summary(s: dict, total: int) -> None:
    out = sys.stdout
    print(f"\n{total} cases", file=out)
    print(f"  behavior:      {count_line(s['behavior'])}", file=out)
    print(f"  behaviorClose: {count_line(s['close'])}", file=out)
    print("\nby group (behavior counts, summed case time):", file=out)
    for g, c in s["groups"].items():
        print(f"  {g:<6} {count_line(c):<45} {s['durations'][g] / 1000:8.1f}s", file=out)
    if s["failing"]:
        print(f"\nnon-passing cases ({len(s['failing'])}):", file=out)
        for k, r in s["failing"].items():
            print(f"  {k:<8} {r['behavior']:<13} close={r['behaviorClose']:<13} {r['description']}", file=out)
            if r["result"] or r["close"]:
                extra = f"; close: {r['close']}" if r["close"] else ""
                print(f"  {'':<8} result: {r['result']}{extra}", file=out)
    if s["close_issues"]:
        print(f"\nclosing-handshake remarks on otherwise passing cases ({len(s['close_issues'])}):", file=out)
        for k, r in s["close_issues"].items():
            extra = f" ({r['close']})" if r["close"] else ""
            print(f"  {k:<8} {r['behavior']:<13} close={r['behaviorClose']:<13} {r['resultClose']}{extra}", file=out)
    if s["notable"]:
        by = collections.defaultdict(list)
        for k, r in s["notable"].items():
            by[r["behavior"]].append(k)
        for b, ids in by.items():
            print(f"\n{b} ({len(ids)}): {' '.join(ids)}", file=out)


def markdown_summary(s: dict, total: int, meta: dict) -> str:
    lines = [
        "# Autobahn|Testsuite results",
        "",
        "Written by `tests/autobahn/run.py --write-summary`; do not edit by hand.",
        "",
        f"- date: {meta['date']}",
        f"- agent: {meta['agent']}",
        f"- wstest: {meta['wstest']}",
        f"- server: `{meta['server_cmd']}`",
        f"- command: `{meta['command']}`",
        f"- cases: `{', '.join(meta['cases'])}`"
        + (f" minus `{', '.join(meta['exclude'])}`" if meta["exclude"] else ""),
        f"- wall time: {meta['seconds']:.0f}s",
        "",
        f"{total} cases. behavior: {count_line(s['behavior'])}. behaviorClose: {count_line(s['close'])}.",
        "",
    ]
    cols = ordered(s["behavior"])
    lines.append("| group | cases | " + " | ".join(cols) + " | time (s) |")
    lines.append("|---|---:|" + "---:|" * len(cols) + "---:|")
    for g, c in s["groups"].items():
        cells = " | ".join(str(c.get(k, 0)) for k in cols)
        lines.append(f"| {g} | {sum(c.values())} | {cells} | {s['durations'][g] / 1000:.1f} |")
    lines.append("")
    if s["failing"]:
        lines += ["## Non-passing cases", "",
                  "| case | behavior | close | description | result |", "|---|---|---|---|---|"]
        for k, r in s["failing"].items():
            desc = r["description"].replace("|", "\\|")
            res = (r["result"] + (f" Close: {r['close']}." if r["close"] else "")).replace("|", "\\|")
            lines.append(f"| {k} | {r['behavior']} | {r['behaviorClose']} | {desc} | {res} |")
        lines.append("")
    if s["close_issues"]:
        lines += ["## Closing-handshake remarks", "", "| case | behavior | close | remark |", "|---|---|---|---|"]
        for k, r in s["close_issues"].items():
            remark = r["resultClose"] + (f" ({r['close']})" if r["close"] else "")
            lines.append(f"| {k} | {r['behavior']} | {r['behaviorClose']} | {remark} |")
        lines.append("")
    if s["notable"]:
        lines += ["## NON-STRICT and INFORMATIONAL cases", ""]
        by = collections.defaultdict(list)
        for k, r in s["notable"].items():
            by[r["behavior"]].append(k)
        for b, ids in by.items():
            lines.append(f"- {b}: {' '.join(ids)}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- #


def parse_cases(text: str) -> list[str]:
    if text.strip() in PRESETS:
        return list(PRESETS[text.strip()])
    return [c.strip() for c in text.split(",") if c.strip()]


def resolve_cases(wstest: str, cases: list[str], exclude: list[str]) -> list[str] | None:
    """Ask the installed test suite which case ids the patterns select (None if it cannot say)."""
    py = os.path.join(os.path.dirname(wstest), "python")
    code = (
        "import json, sys\n"
        "from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories\n"
        "from autobahntestsuite.caseset import CaseSet\n"
        "cs = CaseSet('websocket', 'Case', Cases, CaseCategories, CaseSubCategories)\n"
        "spec = json.loads(sys.argv[1])\n"
        "known = set(cs.CasesIndices)\n"
        "sel = cs.parseSpecCases(spec)\n"
        "print(json.dumps({'cases': sel, 'unknown': [c for c in sel if c not in known]}))\n"
    )
    try:
        res = subprocess.run(
            [py, "-c", code, json.dumps({"cases": cases, "exclude-cases": exclude})],
            capture_output=True, text=True, timeout=60,
        )
        data = json.loads(res.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    if data["unknown"]:
        raise SystemExit(f"autobahn: unknown case ids: {' '.join(data['unknown'])}")
    return data["cases"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", choices=["cormorant", "uvicorn"], default="cormorant")
    p.add_argument("--cases", default="*", help="comma-separated case patterns (e.g. '1.*,2.*,12.1.*'), or a preset: "
                   + ", ".join(f"{k} = {','.join(v)}" for k, v in PRESETS.items()) + " (default: *)")
    p.add_argument("--exclude-cases", default="", help="comma-separated case patterns to leave out")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--timeout", type=float, default=1800,
                   help="time limit for the whole wstest run in seconds; the cases done by then are "
                        "reported, the rest count as MISSING (default: 1800)")
    p.add_argument("--case-timeout", type=float, default=120,
                   help="seconds one case may run before its connection is aborted and it counts as "
                        "TIMEOUT; the slowest case takes about 25s against uvicorn (default: 120)")
    p.add_argument("--start-timeout", type=float, default=60, help="seconds to wait for the server (default: 60)")
    p.add_argument("--outdir", help="report directory (default: tests/autobahn/reports/SERVER, emptied first)")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs the server (default: this one)")
    p.add_argument("--server-arg", action="append", default=[], help="extra argument for the server (repeatable)")
    p.add_argument("--agent", help="agent name in the reports (default: server name and version)")
    p.add_argument("--wstest", help="wstest executable (default: run setup.sh and use its virtualenv)")
    p.add_argument("--no-setup", action="store_true", help="do not run setup.sh; use the virtualenv as it is")
    p.add_argument("--strict-close", action="store_true", help="also fail on closing-handshake verdicts other than OK")
    p.add_argument("--write-summary", nargs="?", const=os.path.join(HERE, "SUMMARY.md"), metavar="PATH",
                   help="write the summary as Markdown (default path: tests/autobahn/SUMMARY.md, for Cormorant only)")
    p.add_argument("--over-h2", action="store_true",
                   help="run the cases through WebSocket over HTTP/2 (RFC 8441): wstest talks to "
                        "tests/autobahn/h2_relay.py, which opens each WebSocket on the server as an "
                        "extended CONNECT (default report directory: reports/SERVER-h2)")
    p.add_argument("-v", "--verbose", action="store_true", help="show wstest's output as it runs")
    args = p.parse_args(argv)

    default_summary = os.path.join(HERE, "SUMMARY.md")
    if args.write_summary and os.path.abspath(args.write_summary) == default_summary and args.server != "cormorant":
        p.error("SUMMARY.md holds Cormorant's results; give --write-summary another PATH for other servers")

    cases = parse_cases(args.cases)
    exclude = parse_cases(args.exclude_cases) if args.exclude_cases else []
    if not cases:
        p.error("--cases selects nothing")

    wstest = find_wstest(args)
    if not os.access(wstest, os.X_OK):
        log(f"no wstest at {wstest}; run tests/autobahn/setup.sh")
        return 1
    version = wstest_version(wstest)
    selected = resolve_cases(wstest, cases, exclude)
    if selected is not None and not selected:
        log(f"the patterns {cases} (minus {exclude}) select no case")
        return 1
    total = len(selected) if selected is not None else 0

    if args.outdir:
        outdir = os.path.abspath(args.outdir)
        os.makedirs(outdir, exist_ok=True)
        stale = os.path.join(outdir, "index.json")
        if os.path.exists(stale):
            os.remove(stale)
    else:
        outdir = os.path.join(HERE, "reports", args.server + ("-h2" if args.over_h2 else ""))
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)

    agent = agent_name(args) + (" over HTTP/2" if args.over_h2 else "")
    port = args.port or free_port()
    # With --over-h2, wstest connects to the relay, which tunnels to `port`.
    ws_port = free_port() if args.over_h2 else port
    spec = {
        "options": {"failByDrop": False},
        "outdir": outdir,
        "servers": [{"agent": agent, "url": f"ws://{HOST}:{ws_port}"}],
        "cases": cases,
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    }
    spec_path = os.path.join(outdir, "fuzzingclient.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=2)

    cmd = server_command(args, port)
    server_log = os.path.join(outdir, "server.log")
    wstest_log = os.path.join(outdir, "wstest.log")
    log(f"{version}; {total or '?'} cases {','.join(cases)}" + (f" minus {','.join(exclude)}" if exclude else ""))
    log(f"server: {shlex.join(cmd)}")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    with open(server_log, "w") as slog:
        server = subprocess.Popen(
            cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=slog, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )
    wall = 0.0
    server_died = False
    relay = None
    try:
        err = wait_ready(server, port, args.start_timeout)
        if err:
            log(err)
            tail(server_log)
            return 1
        if args.over_h2:
            relay = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "h2_relay.py"), str(ws_port), str(port)],
                stdin=subprocess.DEVNULL, start_new_session=True)
            if not wait_listening(ws_port, relay, args.start_timeout):
                log("the HTTP/2 relay did not start")
                return 1
        log(f"server ready in {time.monotonic() - started:.1f}s (pid {server.pid}); wstest log: {wstest_log}")
        run = run_wstest(wstest, spec_path, wstest_log, args, total)
        server_died = server.poll() is not None
    finally:
        if relay is not None:
            stop_process(relay, "relay")
        stop_process(server, args.server)
    wall = run.seconds
    log(f"wstest finished in {wall:.0f}s with status {run.rc}")

    problems = []
    if run.timed_out:
        problems.append(f"the run hit its time limit of {args.timeout:.0f}s during case {run.last_case}")
    elif run.rc != 0:
        problems.append(f"wstest exited with status {run.rc}")
    for case, secs in run.aborted.items():
        problems.append(f"case {case} was aborted after {secs:.0f}s without progress")
    if server_died:
        problems.append(f"the server exited during the run (status {server.returncode})")

    cut_short = {}
    if run.timed_out and run.last_case:
        cut_short[run.last_case] = "the run hit its time limit during this case"
    try:
        results = load_results(outdir, agent, selected, run.aborted, cut_short)
    except (OSError, ValueError) as e:
        problems.append(f"no usable report: {e}")
        for msg in problems:
            log(msg)
        tail(wstest_log)
        tail(server_log)
        return 1

    s = summarize(results, args.strict_close)
    print_summary(s, len(results))
    print(f"\nreports: {os.path.join(outdir, 'index.html')}")

    if args.write_summary:
        meta = dict(
            date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            agent=agent,
            wstest=version,
            server_cmd=shlex.join(["python"] + ["PORT" if a == str(port) else a for a in cmd[1:]]),
            command=shlex.join(["python", os.path.relpath(os.path.abspath(__file__), REPO)]
                               + (sys.argv[1:] if argv is None else list(argv))),
            cases=cases,
            exclude=exclude,
            seconds=wall,
        )
        with open(args.write_summary, "w") as f:
            f.write(markdown_summary(s, len(results), meta))
        log(f"wrote {args.write_summary}")

    for msg in problems:
        log(msg)
    if problems:
        tail(server_log)
    if not s["ok"]:
        log(f"{len(s['failing'])} case(s) not passing" + (
            f", {len(s['close_issues'])} closing-handshake remark(s)"
            if args.strict_close and s["close_issues"] else ""))
    return 0 if s["ok"] and not problems else 1


def tail(path: str, lines: int = 30) -> None:
    try:
        with open(path, errors="replace") as f:
            content = f.readlines()[-lines:]
    except OSError:
        return
    if content:
        log(f"last lines of {path}:")
        sys.stderr.write("".join("    " + line for line in content))


if __name__ == "__main__":
    sys.exit(main())
