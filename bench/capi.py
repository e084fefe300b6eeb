#!/usr/bin/env python3
"""What the engine costs without Python: the C API examples vs the server
with a Python app, on `hello` (HTTP/1.1 keep-alive, wrk).

Servers, each pinned to CPU 0 with wrk on CPU 1, interleaved round by round:
- `epoll_server.c` on the sans-IO layer (one thread, its own epoll loop),
- `callback_server.c` on the server layer, callbacks on a dispatcher thread
  and (`-i`) inline on the I/O thread,
- cormorant and granian serving the Python hello app (bench.apps.raw).
The table gives medians and ratios against cormorant with Python.
Informational: it shows the ceiling of the engine, not a fair race.

    python bench/capi.py                    # 3 rounds of 10 s
    python bench/capi.py --rounds 1 --duration 5 --write
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, cmd_cormorant, cmd_granian, free_port, run_wrk, stop, wait_port

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def build_examples() -> dict[str, str]:
    """Builds the release staticlib and the two C examples; returns paths."""
    subprocess.run(["cargo", "build", "--release", "-p", "cormorant-capi", "--lib"],
                   cwd=ROOT, check=True)
    lib = os.path.join(TARGET, "release", "libcormorant.a")
    out = os.path.join(TARGET, "capi-bench")
    os.makedirs(out, exist_ok=True)
    bins = {}
    for name in ("epoll_server", "callback_server"):
        src = os.path.join(ROOT, "c-api", "examples", f"{name}.c")
        binary = os.path.join(out, name)
        subprocess.run(["cc", "-O2", "-pthread", f"-I{ROOT}/c-api/include", src, lib,
                        "-lpthread", "-ldl", "-lm", "-o", binary], check=True)
        bins[name] = binary
    return bins


def commands(bins: dict[str, str], port: int) -> dict[str, tuple[list[str], str]]:
    """Server name -> (command, path of the hello response)."""
    app = "bench.apps.raw:app"
    return {
        "epoll_server (sans-IO, C)": ([bins["epoll_server"], str(port)], "/hello"),
        "callback_server (server layer, dispatcher thread)":
            ([bins["callback_server"], str(port)], "/hello"),
        "callback_server -i (server layer, callbacks on the I/O thread)":
            ([bins["callback_server"], "-i", str(port)], "/hello"),
        "cormorant + Python": (cmd_cormorant(app, port, "h1", None), "/"),
        "granian + Python": (cmd_granian(app, port, "h1", None), "/"),
    }


def bench_one(cmd: list[str], path: str, port: int, args) -> tuple[float, float, int]:
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_port(port, proc)
        run_wrk(port, path, None, 1, args.connections)  # warm-up
        rps, p99, errors, _ = run_wrk(port, path, None, args.duration, args.connections)
        return rps, p99, errors
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--write", action="store_true", help="save to bench/CAPI_RESULTS.md")
    args = parser.parse_args()
    bins = build_examples()
    names = list(commands(bins, 0))
    samples: dict[str, list[tuple[float, float, int]]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            port = free_port()
            cmd, path = commands(bins, port)[name]
            samples[name].append(bench_one(cmd, path, port, args))
    base = statistics.median(s[0] for s in samples["cormorant + Python"])
    lines = [
        f"# C API vs Python app, hello ({datetime.date.today()}, {args.rounds} rounds of "
        f"{args.duration} s, wrk -t1 -c{args.connections}, server on CPU 0, wrk on CPU 1)",
        "",
        "| server | req/s (median) | p99 ms | errors | vs cormorant + Python |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in names:
        rps = statistics.median(s[0] for s in samples[name])
        p99 = statistics.median(s[1] for s in samples[name])
        errors = sum(s[2] for s in samples[name])
        lines.append(f"| {name} | {rps:,.0f} | {p99:.2f} | {errors} | {rps / base:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(os.path.join(ROOT, "bench", "CAPI_RESULTS.md"), "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
