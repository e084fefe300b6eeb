#!/usr/bin/env python3
"""Side-by-side HTTP benchmark: cormorant vs peregrine-server, h2corn,
granian and uvicorn, with a Rust-only reference.

Every server runs the same app, one worker, uvloop, pinned to CPU 0; the load
generator (wrk, h2load, wsload) is pinned to CPU 1. The servers of each app
run back to back, in an order that reverses every other round, so that a noisy
neighbour or a drift of the machine's speed hurts all of them alike; the table
reports medians over rounds, requests per server CPU-second (the number the
noise moves least) and ratios of it against peregrine-server and granian.
`rust-ref` is the C API's server layer answering from its I/O thread with no
Python (c-api/examples/callback_server.c): the ceiling, on the workloads it
serves (hello, echo).

`idle-conns` is not a load: it opens `--idle-connections` keep-alive
connections, sends one request on each, and reports how much the server's
RSS grew per connection while they idle.

Workloads run over plain HTTP/1.1 unless their name says otherwise: `h2-*`
are HTTP/2 cleartext with prior knowledge (h2load; each server started in its
HTTP/2-only mode; uvicorn has no HTTP/2 and is skipped), `https-*` are
HTTP/1.1 over TLS (wrk; a throw-away self-signed P-256 certificate made with
the openssl CLI), `h3-*` are HTTP/3 over QUIC (bench/h3load, Rust, on the
same certificate; only Cormorant, peregrine-server and hypercorn serve it,
and hypercorn runs only these). `ws-h2-echo` is `ws-echo` over HTTP/2
cleartext (RFC 8441; bench/wsload --http2), which only Cormorant and h2corn
serve.

    python bench/run.py                   # full run, prints a markdown table
    python bench/run.py --write           # ... and saves it to bench/RESULTS.md
    python bench/run.py --rounds 1 --duration 5 --servers cormorant,granian
    python bench/run.py --workloads h2-hello,h2-10k-get,https-hello --rounds 1
    python bench/run.py --workloads idle-conns --servers cormorant,peregrine
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PY = sys.executable
BIN = os.path.dirname(PY)

# (name, app, path, driver): the driver is a wrk lua script, None (plain wrk),
# "ws" (bench/wsload), "ws-h2" (bench/wsload --http2), "h2" (h2load, HTTP/2
# prior knowledge), "tls" (wrk over https) or "h3" (bench/h3load).
WORKLOADS = [
    ("hello", "bench.apps.raw:app", "/", None),
    ("10k-get", "bench.apps.raw:app", "/10k", None),
    ("10k-post-echo", "bench.apps.raw:app", "/echo", "post10k.lua"),
    ("stream-100", "bench.apps.raw:app", "/stream", None),
    ("fastapi-json", "bench.apps.fastapi_app:app", "/json", None),
    # WebSocket echo round trips, driven by bench/wsload (Rust) instead of wrk.
    ("ws-echo", "bench.apps.ws_echo:app", "/", "ws"),
    # The same echo over HTTP/2 (RFC 8441 extended CONNECT, cleartext), the
    # same 32 WebSockets, 8 per connection; only Cormorant and h2corn serve it.
    ("ws-h2-echo", "bench.apps.ws_echo:app", "/", "ws-h2"),
    # HTTP/2 cleartext (prior knowledge), driven by h2load.
    ("h2-hello", "bench.apps.raw:app", "/", "h2"),
    ("h2-10k-get", "bench.apps.raw:app", "/10k", "h2"),
    # HTTP/1.1 over TLS, driven by wrk.
    ("https-hello", "bench.apps.raw:app", "/", "tls"),
    # HTTP/3 over QUIC, driven by bench/h3load.
    ("h3-hello", "bench.apps.raw:app", "/", "h3"),
    ("h3-10k-get", "bench.apps.raw:app", "/10k", "h3"),
    # hello with the access log on (written to /dev/null): what logging
    # costs, against the plain hello of the same run (cormorant only).
    ("hello-access-log", "bench.apps.raw:app", "/", "access"),
    # WSGI (PEP 3333): cormorant, granian and peregrine with one application
    # thread, and gunicorn's sync and gthread workers.
    ("wsgi-hello", "bench.apps.wsgi_raw:app", "/", "wsgi"),
    ("flask-json", "bench.apps.flask_app:app", "/json", "wsgi"),
    ("django-json", "bench.apps.django_app:app", "/json", "wsgi"),
    # Memory: RSS per idle keep-alive connection.
    ("idle-conns", "bench.apps.raw:app", "/", "idle"),
]


def mode_of(driver) -> str:
    """How the server must be started for a workload's driver."""
    return driver if driver in ("h2", "ws-h2", "tls", "h3", "access", "idle", "wsgi") else "h1"


@dataclass
class Tls:
    cert: str
    key: str


def cmd_cormorant(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    cmd = [PY, "-m", "cormorant", app, "--host", "127.0.0.1", "--port", str(port),
           "--loop", "uvloop", "--log-level", "warning"]
    if mode in ("h2", "ws-h2"):
        cmd += ["--http", "2"]
    if mode in ("tls", "h3"):
        cmd += ["--ssl-certfile", tls.cert, "--ssl-keyfile", tls.key]
    if mode == "h3":
        cmd += ["--http3"]
    if mode == "access":
        cmd += ["--access-log"]
    if mode == "idle":
        cmd += ["--timeout-keep-alive", "120"]
    if mode == "wsgi":
        cmd += ["--interface", "wsgi", "--blocking-threads", str(WSGI_THREADS)]
    return cmd


def cmd_cormorant_pool(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    """WSGI with its one application thread run as a pool (the I/O on a
    thread of its own), against the default inline path."""
    if mode != "wsgi":
        return None
    return ["env", "CORMORANT_WSGI_INLINE=0"] + cmd_cormorant(app, port, mode, tls)


def cmd_cormorant_threads(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    """WSGI with four application threads (a pool)."""
    if mode != "wsgi":
        return None
    return cmd_cormorant(app, port, mode, tls)[:-1] + ["4"]


# Application threads of each WSGI server (peregrine's default; granian's
# is hundreds, slower for these CPU-bound apps).
WSGI_THREADS = 1


def cmd_granian(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    if mode in ("access", "h3", "ws-h2"):  # no WebSocket over HTTP/2 in granian
        return None
    cmd = [os.path.join(BIN, "granian"), "--interface", "wsgi" if mode == "wsgi" else "asgi",
           "--loop", "uvloop", "--http", "2" if mode == "h2" else "1", "--workers", "1",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if mode == "wsgi":
        cmd += ["--blocking-threads", str(WSGI_THREADS)]
    if mode == "tls":
        cmd += ["--ssl-certificate", tls.cert, "--ssl-keyfile", tls.key]
    return cmd + [app]


def cmd_peregrine(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    if mode in ("access", "ws-h2"):  # peregrine refuses the extended CONNECT
        return None
    cmd = [os.path.join(BIN, "peregrine"), app, "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--log-level", "warning"]
    if mode == "h2":
        cmd += ["--http2-only"]
    if mode in ("tls", "h3"):
        cmd += ["--tls-cert", tls.cert, "--tls-key", tls.key]
    if mode == "h3":
        cmd += ["--http3"]
    if mode == "idle":
        cmd += ["--keep-alive", "120000", "--max-connections", "16000"]
    if mode == "wsgi":
        cmd += ["--protocol", "wsgi", "--wsgi-threads", str(WSGI_THREADS)]
    return cmd


def cmd_h2corn(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    if mode in ("access", "h3", "wsgi"):
        return None
    cmd = [os.path.join(BIN, "h2corn"), app, "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--loop", "uvloop", "--no-access-log"]
    if mode == "tls":
        cmd += ["--certfile", tls.cert, "--keyfile", tls.key]
    return cmd


def ref_binary() -> str:
    """The C API's callback server, built against the release staticlib."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(target, "bench-ref", "callback_server")
    if not os.path.exists(binary):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "cormorant-capi", "--lib"],
                       cwd=ROOT, check=True)
        os.makedirs(os.path.dirname(binary), exist_ok=True)
        subprocess.run(["cc", "-O2", "-pthread", f"-I{ROOT}/c-api/include",
                        os.path.join(ROOT, "c-api", "examples", "callback_server.c"),
                        os.path.join(target, "release", "libcormorant.a"),
                        "-lpthread", "-ldl", "-lm", "-o", binary], check=True)
    return binary


# The reference serves these paths of the raw app's (as its own).
REF_PATHS = {"/": "/hello", "/echo": "/echo"}


def cmd_rust_ref(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    if mode not in ("h1", "idle") or app != "bench.apps.raw:app":
        return None
    return [ref_binary(), "-i", str(port)]


def cmd_uvicorn(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    if mode in ("h2", "ws-h2", "h3", "access", "wsgi"):
        return None  # no HTTP/2 or HTTP/3 in uvicorn; the access-log run is ours only
    cmd = [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--loop",
           "uvloop", "--http", "httptools", "--ws", "websockets", "--workers", "1",
           "--log-level", "warning", "--no-access-log"]
    if mode == "idle":
        cmd += ["--timeout-keep-alive", "120"]
    if mode == "tls":
        cmd += ["--ssl-certfile", tls.cert, "--ssl-keyfile", tls.key]
    return cmd


def cmd_hypercorn(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    """hypercorn (aioquic) runs only the HTTP/3 workloads: the other peers
    are faster on every other one."""
    if mode != "h3":
        return None
    addr = f"127.0.0.1:{port}"
    return [os.path.join(BIN, "hypercorn"), app, "--bind", addr, "--quic-bind", addr,
            "--certfile", tls.cert, "--keyfile", tls.key, "--workers", "1",
            "--worker-class", "uvloop", "--log-level", "warning"]


def cmd_gunicorn(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    """gunicorn's sync worker: one request at a time, no keep-alive."""
    if mode != "wsgi":
        return None
    return [os.path.join(BIN, "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--worker-class", "sync", "--log-level", "warning"]


def cmd_gunicorn_gthread(app: str, port: int, mode: str, tls: Tls | None) -> list[str] | None:
    """gunicorn's gthread worker, with keep-alive and its threads."""
    if mode != "wsgi":
        return None
    return [os.path.join(BIN, "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--worker-class", "gthread", "--threads", str(max(WSGI_THREADS, 4)),
            "--log-level", "warning"]


def make_cert(directory: str) -> Tls:
    """A self-signed P-256 certificate for localhost (valid two days)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=30)
    return Tls(cert, key)


SERVERS = {"cormorant": cmd_cormorant, "cormorant-pool": cmd_cormorant_pool,
           "cormorant-4": cmd_cormorant_threads,
           "peregrine": cmd_peregrine, "h2corn": cmd_h2corn,
           "granian": cmd_granian, "uvicorn": cmd_uvicorn, "hypercorn": cmd_hypercorn,
           "rust-ref": cmd_rust_ref, "gunicorn": cmd_gunicorn,
           "gunicorn-gthread": cmd_gunicorn_gthread}


@dataclass
class Sample:
    rps: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us_per_req: float
    rss_mb: float
    # idle-conns only: server RSS growth per open connection.
    kb_per_conn: float = float("nan")


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


def run_wrk(port: int, path: str, script: str | None, duration: int, conns: int,
            scheme: str = "http") -> tuple:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
           "--timeout", "5s"]
    if script:
        cmd += ["-s", os.path.join(BENCH, script)]
    cmd.append(f"{scheme}://127.0.0.1:{port}{path}")
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


def load_tool(package: str) -> str:
    """A load generator of this workspace (bench/wsload, bench/h3load),
    built in release mode if it is not yet."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    path = os.path.join(target, "release", package)
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", package], cwd=ROOT, check=True)
    return path


def run_tool(cmd: list[str], duration: int, count: str) -> tuple:
    """Runs a load generator that prints `name value` lines: rate, p99,
    errors and the count of `count`."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    values = dict(line.split() for line in out.splitlines() if line.strip())
    return (float(values[f"{count}_per_sec"]), float(values["p99_ms"]),
            int(values["errors"]), int(values[count]))


def run_wsload(port: int, path: str, duration: int, conns: int, h2_streams: int = 0) -> tuple:
    """WebSocket echo; over HTTP/2 with `h2_streams` WebSockets per
    connection when it is not 0."""
    cmd = ["taskset", "-c", "1", load_tool("cormorant-wsload"), "--addr", f"127.0.0.1:{port}",
           "--path", path, "--connections", str(conns), "--duration", str(duration),
           "--size", "64"]
    if h2_streams:
        cmd += ["--http2", "--streams", str(h2_streams)]
    return run_tool(cmd, duration, "round_trips")


def run_h3load(port: int, path: str, duration: int, conns: int, streams: int) -> tuple:
    cmd = ["taskset", "-c", "1", load_tool("cormorant-h3load"), "--addr", f"127.0.0.1:{port}",
           "--path", path, "--connections", str(conns), "--streams", str(streams),
           "--duration", str(duration)]
    return run_tool(cmd, duration, "requests")


def parse_h2load(out: str) -> tuple[float, int, int]:
    """req/s, completed requests and errors from h2load's summary."""
    m = re.search(r"^finished in [\d.]+\w*, ([\d.]+) req/s", out, re.M)
    if not m:
        raise RuntimeError("unexpected h2load output:\n" + out[-2000:])
    rps = float(m.group(1))
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out, re.M)
    total, started, done, succeeded, failed, errored, timeout = map(int, m.groups())
    # "failed" counts HTTP-level failures (4xx/5xx) as well as the "errored"
    # ones (resets, protocol errors), which include the timeouts.
    errors = max(failed, errored, timeout)
    return rps, done, errors


def p99_from_h2load_log(path: str) -> float:
    """h2load --log-file rows: start time (µs), status, duration (µs)."""
    durations = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                durations.append(int(parts[2]))
    if not durations:
        return float("nan")
    durations.sort()
    return durations[min(len(durations) - 1, int(len(durations) * 0.99))] / 1000


def run_h2load(port: int, path: str, duration: int, conns: int, streams: int) -> tuple:
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        log = os.path.join(tmp, "requests.log")
        cmd = ["taskset", "-c", "1", "h2load", "-t", "1", "-c", str(conns), "-m", str(streams),
               "-D", str(duration), "--log-file", log, f"http://127.0.0.1:{port}{path}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
        rps, done, errors = parse_h2load(out)
        return rps, p99_from_h2load_log(log), errors, done


def measure(port: int, path: str, script, duration: int, args) -> tuple:
    conns = args.connections
    if script == "ws":
        return run_wsload(port, path, duration, min(conns, 32))
    if script == "ws-h2":
        return run_wsload(port, path, duration, min(conns, 32), h2_streams=8)
    if script == "h2":
        return run_h2load(port, path, duration, args.h2_connections, args.h2_streams)
    if script == "h3":
        return run_h3load(port, path, duration, args.h2_connections, args.h2_streams)
    if script == "tls":
        return run_wrk(port, path, None, duration, conns, scheme="https")
    if script == "access":
        return run_wrk(port, path, None, duration, conns)
    return run_wrk(port, path, script, duration, conns)


async def hold_idle(port: int, path: str, count: int, server_pids: list[int]) -> tuple[float, float, int]:
    """Opens `count` connections, one request on each, and measures the
    server's RSS while they idle: (MB before, MB after, errors)."""
    before = rss_mb(server_pids)
    writers: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(256)

    async def one() -> None:
        async with gate:
            await asyncio.wait_for(exchange(), 15)

    async def exchange() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        data = b""
        # Content-Length bodies end with the text, chunked ones with "0".
        while not data.endswith((b"Hello, world!", b"hello", b"\r\n0\r\n\r\n")):
            chunk = await reader.read(4096)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    await asyncio.sleep(1.0)
    after = rss_mb(server_pids)
    for w in writers:
        w.close()
    return before, after, sum(isinstance(r, BaseException) for r in results)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def bench_server(server: str, app: str, mode: str, jobs: list, args,
                 tls: Tls | None) -> dict[str, Sample]:
    port = free_port()
    server_cmd = SERVERS[server](app, port, mode, tls)
    if server_cmd is None:
        return {}
    cmd = ["taskset", "-c", "0"] + server_cmd
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    out = {}
    try:
        wait_port(port, proc)
        for name, path, script in jobs:
            if server == "rust-ref":
                if path not in REF_PATHS:
                    continue
                path = REF_PATHS[path]
            if script == "idle":
                run_wrk(port, path, None, 1, 4)  # past imports and first-request setup
                before, after, errors = asyncio.run(
                    hold_idle(port, path, args.idle_connections, tree(proc.pid)))
                kb = (after - before) * 1024 / args.idle_connections
                out[name] = Sample(0, 0, errors, args.idle_connections, 0, after, kb)
                continue
            measure(port, path, script, args.warmup, args)
            pids = tree(proc.pid)
            cpu0 = cpu_seconds(pids)
            rps, p99, errors, requests = measure(port, path, script, args.duration, args)
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
    p.add_argument("--h2-connections", type=int, default=16,
                   help="connections of the h2-* (h2load) and h3-* (h3load) workloads")
    p.add_argument("--h2-streams", type=int, default=10,
                   help="concurrent streams per connection (h2load -m, h3load --streams)")
    p.add_argument("--idle-connections", type=int, default=10_000,
                   help="connections held open by the idle-conns workload")
    p.add_argument("--servers",
                   default="cormorant,peregrine,h2corn,granian,uvicorn,hypercorn,rust-ref,"
                           "gunicorn,gunicorn-gthread")
    p.add_argument("--workloads", default=",".join(w[0] for w in WORKLOADS))
    p.add_argument("--write", action="store_true", help="save the table to bench/RESULTS.md")
    args = p.parse_args()
    servers = args.servers.split(",")
    wanted = args.workloads.split(",")
    workloads = [w for w in WORKLOADS if w[0] in wanted]
    unknown = set(wanted) - {w[0] for w in WORKLOADS}
    if unknown:
        p.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    missing = [tool for tool in ("wrk", "h2load", "taskset", "openssl") if shutil.which(tool) is None]
    if missing:
        p.error(f"not installed: {', '.join(missing)} (Debian: apt-get install wrk nghttp2-client "
                "util-linux openssl)")
    # One server process per (app, mode): HTTP/1.1, HTTP/2 and TLS need
    # different command lines.
    by_app: dict[tuple[str, str], list] = {}
    for name, app, path, script in workloads:
        by_app.setdefault((app, mode_of(script)), []).append((name, path, script))

    cert_dir = tempfile.TemporaryDirectory(prefix="bench-tls-")
    tls = make_cert(cert_dir.name) if any(m in ("tls", "h3") for _, m in by_app) else None
    results: dict[tuple[str, str], Result] = {}
    try:
        # Each app's servers run back to back, so that a drift of the
        # machine's speed (minutes long on a shared host) falls on all the
        # servers of a workload alike rather than on the one whose turn it
        # was; the order reverses every other round, so that over two rounds
        # a steady drift favours no server.
        for r in range(args.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            for (app, mode), jobs in by_app.items():
                for server in order:
                    print(f"round {r + 1}/{args.rounds}: {server} {app} ({mode})",
                          file=sys.stderr)
                    for name, sample in bench_server(server, app, mode, jobs, args,
                                                     tls).items():
                        results.setdefault((name, server), Result()).samples.append(sample)
    finally:
        cert_dir.cleanup()

    lines = [
        "| workload | server | req/s (ws: round trips/s) | req per CPU-s | vs peregrine | "
        "vs granian | p99 ms | RSS MB | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    idle = [
        "",
        f"Idle keep-alive connections ({args.idle_connections:,}, one request each): "
        "server RSS growth per connection.",
        "",
        "| server | RSS MB with them open | KB per connection | errors |",
        "|---|---:|---:|---:|",
    ]

    def per_cpu(res: Result | None) -> float:
        return 1e6 / res.median("cpu_us_per_req") if res else float("nan")

    for name, *_ in workloads:
        for server in servers:
            res = results.get((name, server))
            if res is None:  # e.g. uvicorn has no HTTP/2
                continue
            errors = sum(s.errors for s in res.samples)
            if name == "idle-conns":
                idle.append(f"| {server} | {res.median('rss_mb'):.0f} | "
                            f"{res.median('kb_per_conn'):.1f} | {errors} |")
                continue
            ratios = []
            for base in ("peregrine", "granian"):
                b = results.get((name, base))
                ratios.append(f"{per_cpu(res) / per_cpu(b):.2f}×" if b else "-")
            lines.append(
                f"| {name} | {server} | {res.median('rps'):,.0f} | {per_cpu(res):,.0f} | "
                f"{ratios[0]} | {ratios[1]} | {res.median('p99_ms'):.2f} | "
                f"{res.median('rss_mb'):.0f} | {errors} |"
            )
    if len(idle) > 5:
        lines += idle
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
            "CPU 0, wrk pinned to CPU 1; medians over rounds, the servers of each app run back "
            "to back in an order that reverses every other round. "
            "Ratios are of requests per server CPU-second.\n"
            f"h2-* workloads: h2load -c {args.h2_connections} -m {args.h2_streams}, h2c "
            "prior knowledge, p99 from h2load's per-request log; https-*: wrk over TLS "
            "with a self-signed P-256 certificate; h3-*: bench/h3load with the same "
            "connections and streams, over QUIC with that certificate.\n\n"
        )
        with open(os.path.join(BENCH, "RESULTS.md"), "w") as f:
            f.write(header + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
