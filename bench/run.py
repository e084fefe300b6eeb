#!/usr/bin/env python3
"""Side-by-side HTTP/1.1 benchmark: cormorant vs granian vs uvicorn.

Every server runs the same app, one worker, uvloop, pinned to CPU 0; wrk is
pinned to CPU 1. Servers are interleaved round by round so that a noisy
neighbour hurts all of them alike; the table reports medians over rounds and
ratios against granian.

    python bench/run.py                   # full run, prints a markdown table
    python bench/run.py --write           # ... and saves it to bench/RESULTS.md
    python bench/run.py --rounds 1 --duration 5 --servers cormorant,granian
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PY = sys.executable
BIN = os.path.dirname(PY)

# (name, app, path, wrk lua script)
WORKLOADS = [
    ("hello", "bench.apps.raw:app", "/", None),
    ("10k-get", "bench.apps.raw:app", "/10k", None),
    ("10k-post-echo", "bench.apps.raw:app", "/echo", "post10k.lua"),
    ("stream-100", "bench.apps.raw:app", "/stream", None),
    ("fastapi-json", "bench.apps.fastapi_app:app", "/json", None),
    # WebSocket echo round trips, driven by bench/wsload (Rust) instead of wrk.
    ("ws-echo", "bench.apps.ws_echo:app", "/", "ws"),
]


def cmd_cormorant(app: str, port: int) -> list[str]:
    return [PY, "-m", "cormorant", app, "--port", str(port), "--loop", "uvloop",
            "--log-level", "warning"]


def cmd_granian(app: str, port: int) -> list[str]:
    return [os.path.join(BIN, "granian"), "--interface", "asgi", "--loop", "uvloop",
            "--http", "1", "--workers", "1", "--port", str(port), "--log-level", "warning",
            app]


def cmd_uvicorn(app: str, port: int) -> list[str]:
    return [PY, "-m", "uvicorn", app, "--port", str(port), "--loop", "uvloop", "--http",
            "httptools", "--ws", "websockets", "--workers", "1", "--log-level", "warning",
            "--no-access-log"]


SERVERS = {"cormorant": cmd_cormorant, "granian": cmd_granian, "uvicorn": cmd_uvicorn}


@dataclass
class Sample:
    rps: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us_per_req: float
    rss_mb: float


@dataclass
class Result:
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def parse_latency(text: str) -> float:
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(port: int, path: str, script: str | None, duration: int, conns: int) -> tuple:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
           "--timeout", "5s"]
    if script:
        cmd += ["-s", os.path.join(BENCH, script)]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rps, parse_latency(out), errors, requests


def wsload_path() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    path = os.path.join(target, "release", "cormorant-wsload")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "cormorant-wsload"],
                       cwd=ROOT, check=True)
    return path


def run_wsload(port: int, path: str, duration: int, conns: int) -> tuple:
    cmd = ["taskset", "-c", "1", wsload_path(), "--addr", f"127.0.0.1:{port}", "--path", path,
           "--connections", str(conns), "--duration", str(duration), "--size", "64"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    values = dict(line.split() for line in out.splitlines() if line.strip())
    return (float(values["round_trips_per_sec"]), float(values["p99_ms"]),
            int(values["errors"]), int(values["round_trips"]))


def measure(port: int, path: str, script, duration: int, conns: int) -> tuple:
    if script == "ws":
        return run_wsload(port, path, duration, min(conns, 32))
    return run_wrk(port, path, script, duration, conns)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def bench_server(server: str, app: str, jobs: list, args) -> dict[str, Sample]:
    port = free_port()
    cmd = ["taskset", "-c", "0"] + SERVERS[server](app, port)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    out = {}
    try:
        wait_port(port, proc)
        for name, path, script in jobs:
            measure(port, path, script, args.warmup, args.connections)
            pids = tree(proc.pid)
            cpu0 = cpu_seconds(pids)
            rps, p99, errors, requests = measure(port, path, script, args.duration,
                                                 args.connections)
            cpu = cpu_seconds(tree(proc.pid)) - cpu0
            out[name] = Sample(rps, p99, errors, requests,
                               cpu / max(requests, 1) * 1e6, rss_mb(tree(proc.pid)))
    finally:
        stop(proc)
        if proc.returncode not in (0, -signal.SIGTERM, None) and proc.stderr:
            sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per workload")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--servers", default="cormorant,granian,uvicorn")
    p.add_argument("--workloads", default=",".join(w[0] for w in WORKLOADS))
    p.add_argument("--write", action="store_true", help="save the table to bench/RESULTS.md")
    args = p.parse_args()
    servers = args.servers.split(",")
    wanted = args.workloads.split(",")
    workloads = [w for w in WORKLOADS if w[0] in wanted]
    by_app: dict[str, list] = {}
    for name, app, path, script in workloads:
        by_app.setdefault(app, []).append((name, path, script))

    results: dict[tuple[str, str], Result] = {}
    for r in range(args.rounds):
        order = servers[r % len(servers):] + servers[:r % len(servers)]
        for server in order:
            for app, jobs in by_app.items():
                print(f"round {r + 1}/{args.rounds}: {server} {app}", file=sys.stderr)
                for name, sample in bench_server(server, app, jobs, args).items():
                    results.setdefault((name, server), Result()).samples.append(sample)

    lines = [
        "| workload | server | req/s (ws: round trips/s) | vs granian | p99 ms | CPU µs/req | "
        "RSS MB | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, *_ in workloads:
        base = results.get((name, "granian"))
        for server in servers:
            res = results[(name, server)]
            rps = res.median("rps")
            ratio = f"{rps / base.median('rps'):.2f}×" if base else "-"
            errors = sum(s.errors for s in res.samples)
            lines.append(
                f"| {name} | {server} | {rps:,.0f} | {ratio} | {res.median('p99_ms'):.2f} | "
                f"{res.median('cpu_us_per_req'):.1f} | {res.median('rss_mb'):.0f} | {errors} |"
            )
    table = "\n".join(lines)
    print(table)
    if args.write:
        uname = platform.uname()
        header = (
            "# Benchmark results\n\n"
            f"Date: {datetime.date.today().isoformat()}. Machine: {uname.system} "
            f"{uname.machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}.\n"
            f"Command: `python bench/run.py --rounds {args.rounds} --duration {args.duration} "
            f"--connections {args.connections}`; each server 1 worker with uvloop, pinned to "
            "CPU 0, wrk pinned to CPU 1; medians over rounds, servers interleaved.\n\n"
        )
        with open(os.path.join(BENCH, "RESULTS.md"), "w") as f:
            f.write(header + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
