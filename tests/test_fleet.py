"""The fleet test: HAProxy in front of two Cormorant instances, with PROXY
protocol v2 and health checks on the health path, and a rolling deploy of
both under steady load that must lose no request.

HAProxy's configuration is examples/haproxy/haproxy.cfg, with free ports and
a temporary stats socket put in, so the example stays tested. The deploy:
each instance's replacement starts on the other slot of its pair, HAProxy
sees it up and sends it requests, and only then does the old instance get
SIGTERM; its `--drain-delay` keeps it serving while its health path says 503
until HAProxy takes it out of rotation; then it stops, exit code 0. Every
response must be the app's 200 for that very request, naming the client's
own address (from the PROXY header) and the instance that served it.

HAProxy must be installed (Debian: `apt-get install haproxy`; .ci/run does
it): without it the test fails rather than skips.
"""

import csv
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import TESTS_DIR, ServerProcess, free_port, wait_ready

EXAMPLE_CFG = TESTS_DIR.parent / "examples" / "haproxy" / "haproxy.cfg"
# What the example names, and so what the test puts its own values in for.
EXAMPLE_FRONTEND = "127.0.0.1:8000"
EXAMPLE_SLOTS = {
    "app1-blue": "127.0.0.1:8001",
    "app2-blue": "127.0.0.1:8002",
    "app1-green": "127.0.0.1:8003",
    "app2-green": "127.0.0.1:8004",
}
EXAMPLE_STATS_SOCKET = "/run/haproxy/cormorant.sock"
HEALTH_PATH = "/healthz"
# Above the example's inter 200ms x fall 2, with room to spare.
DRAIN_DELAY = 1.5
LOAD_CLIENTS = 6
# Between one client's requests: a steady load of a few hundred requests a
# second, which does not run the machine out of ephemeral ports with the
# clients that open a connection per request.
CLIENT_PAUSE = 0.003
# How long any one wait may take before the test gives up.
WAIT = 10.0


def haproxy_binary() -> str:
    found = shutil.which("haproxy")
    for candidate in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy"):
        if found is None and os.access(candidate, os.X_OK):
            found = candidate
    if found is None:
        pytest.fail("haproxy is not installed: the fleet test needs HAProxy 2.6 or later "
                    "(Debian: apt-get install haproxy; .ci/run installs it)", pytrace=False)
    return found


def haproxy_config(frontend_port: int, slot_ports: dict, stats_socket: str, h2: bool) -> str:
    """The example configuration with our ports and socket: each value it
    names is replaced on its one configuration line (comments are left as
    they are), and a change to the example that drops one fails here."""
    values = {EXAMPLE_FRONTEND: f"127.0.0.1:{frontend_port}", EXAMPLE_STATS_SOCKET: stats_socket}
    for slot, address in EXAMPLE_SLOTS.items():
        values[address] = f"127.0.0.1:{slot_ports[slot]}"
    replaced = dict.fromkeys(values, 0)
    lines = []
    for line in EXAMPLE_CFG.read_text().splitlines():
        if not line.lstrip().startswith("#"):
            for old, new in values.items():
                if old in line:
                    line = line.replace(old, new)
                    replaced[old] += 1
            if h2 and line.lstrip().startswith("default-server "):
                line = line.replace("default-server ", "default-server proto h2 ", 1)
                replaced["proto h2"] = replaced.get("proto h2", 0) + 1
        lines.append(line)
    expected = dict.fromkeys(values, 1)
    if h2:
        expected["proto h2"] = 1
    assert replaced == expected, f"{EXAMPLE_CFG} no longer has one line for each of these: {replaced}"
    return "\n".join(lines) + "\n"


class HAProxy:
    """HAProxy in the foreground (-db), its output in a file, its runtime
    API on a Unix socket."""

    def __init__(self, binary: str, config: str, workdir: Path, stats_socket: str) -> None:
        """Checks `config` (haproxy -c), then starts HAProxy with it; its
        configuration and output go in `workdir`."""
        self.stats_socket = stats_socket
        self.cfg_path = workdir / "haproxy.cfg"
        self.cfg_path.write_text(config)
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.cfg_path)],
                               capture_output=True, text=True, timeout=WAIT)
        assert check.returncode == 0, f"haproxy -c: {check.stdout}{check.stderr}"
        self.log_path = workdir / "haproxy.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([binary, "-db", "-f", str(self.cfg_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def stats(self) -> dict:
        """`show stat`: one row per frontend, server and backend, by name
        (FRONTEND, BACKEND, or the server's)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.stats_socket)
            s.sendall(b"show stat\n")
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        text = b"".join(chunks).decode()
        assert text.startswith("# "), text
        rows = {row["svname"]: row for row in csv.DictReader(io.StringIO(text[2:]))}
        for row in rows.values():
            # HAProxy marks a check that is running as it reports with "* "
            # before the last check's status; the status is the same.
            row["check_status"] = row.get("check_status", "").removeprefix("* ")
        return rows

    def wait_status(self, want: dict, timeout: float = WAIT) -> dict:
        """Waits until every server in `want` has the status it names ("UP",
        "DOWN"); returns the stats at that moment."""
        deadline = time.monotonic() + timeout
        stats: dict = {}
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited with {self.proc.returncode}:\n{self.output()}")
            if os.path.exists(self.stats_socket):
                stats = self.stats()
                if all(stats[name]["status"] == status for name, status in want.items()):
                    return stats
            if time.monotonic() > deadline:
                seen = {name: stats.get(name, {}).get("status") for name in want}
                raise AssertionError(f"servers not {want} but {seen}:\n{self.output()}")
            time.sleep(0.02)


class LoadClient(threading.Thread):
    """Sends GET requests to the frontend until told to stop, on one
    keep-alive connection or on a new connection each time, and checks each
    answer: 200, its own query echoed, its own address as the scope's
    client, the HTTP version the balancer speaks to the servers."""

    def __init__(self, name: str, port: int, keep_alive: bool, http_version: str, stop: threading.Event):
        super().__init__(name=f"load-{name}", daemon=True)
        self.client = name
        self.port = port
        self.keep_alive = keep_alive
        self.http_version = http_version
        self.stop_event = stop
        self.sent = 0
        # (monotonic time the request was sent, instance, pid) per answer.
        self.served: list = []
        self.failures: list = []

    def run(self) -> None:
        conn = None
        address = None
        while not self.stop_event.is_set():
            self.sent += 1
            query = f"client={self.client}&n={self.sent}"
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    conn.connect()
                    address = list(conn.sock.getsockname())
                conn.request("GET", "/?" + query)
                resp = conn.getresponse()
                body = resp.read()
                if not self.keep_alive or resp.will_close:
                    conn.close()
                    conn = None
                if resp.status != 200:
                    raise AssertionError(f"status {resp.status}: {body[:200]!r}")
                data = json.loads(body)
                got = (data["query"], data["client"], data["http_version"])
                if got != (query, address, self.http_version):
                    raise AssertionError(f"answer {data}, expected {(query, address, self.http_version)}")
                self.served.append((started, data["instance"], data["pid"]))
            except Exception as e:  # every failure is counted, none ends the thread
                self.failures.append(f"{query}: {e!r}")
                if conn is not None:
                    conn.close()
                    conn = None
            time.sleep(CLIENT_PAUSE)
        if conn is not None:
            conn.close()


def start_instance(server_factory, name: str, port: int) -> ServerProcess:
    proc, log = server_factory.spawn(
        ["-m", "cormorant", "apps.fleet_app:app", "--host", "127.0.0.1", "--port", str(port),
         "--proxy-protocol", "v2", "--health-path", HEALTH_PATH, "--drain-delay", str(DRAIN_DELAY)],
        env={"FLEET_INSTANCE": name},
    )
    server = ServerProcess(proc, log, "127.0.0.1", port)
    server_factory.servers.append(server)
    wait_ready(port, proc, log, timeout=WAIT)
    return server


def served_by(clients, instance: str, since: float = 0.0) -> int:
    return sum(1 for c in clients for (t, name, _) in list(c.served) if name == instance and t >= since)


def wait_served(clients, instance: str, count: int, since: float = 0.0) -> None:
    """Waits until `instance` has answered `count` requests sent since
    `since`; a failed request ends the wait at once."""
    deadline = time.monotonic() + WAIT
    while served_by(clients, instance, since) < count:
        failures = [f for c in clients for f in list(c.failures)]
        assert failures == [], f"while waiting for {instance}: {failures[:10]}"
        assert time.monotonic() < deadline, f"{instance} served fewer than {count} requests in {WAIT} s"
        time.sleep(0.02)


def roll(haproxy, server_factory, clients, old, old_slot, new_name, new_slot, new_port) -> dict:
    """Replaces `old` (serving on `old_slot`) with a new instance on
    `new_slot`: the new one first, in rotation and serving; then SIGTERM to
    the old one, which HAProxy must take out of rotation (health check 503)
    before its drain delay ends, and which must then exit 0."""
    new = start_instance(server_factory, new_name, new_port)
    haproxy.wait_status({new_slot: "UP"})
    wait_served(clients, new_name, 20)
    sigterm = time.monotonic()
    old.signal(signal.SIGTERM)
    stats = haproxy.wait_status({old_slot: "DOWN"}, timeout=DRAIN_DELAY + WAIT)
    out_of_rotation = time.monotonic() - sigterm
    row = stats[old_slot]
    assert (row["check_status"], row["check_code"]) == ("L7STS", "503"), row
    assert out_of_rotation < DRAIN_DELAY, f"HAProxy took {out_of_rotation:.2f} s to see the drain"
    code = old.wait_exit(DRAIN_DELAY + WAIT)
    stopped = time.monotonic() - sigterm
    assert code == 0, old.output()
    assert stopped >= DRAIN_DELAY, f"stopped {stopped:.2f} s after SIGTERM, before its drain delay"
    return {"new": new, "sigterm": sigterm, "out_of_rotation": out_of_rotation, "stopped": stopped}


@pytest.mark.parametrize("backend_proto", ["h1", "h2"])
def test_rolling_deploy_behind_haproxy_loses_no_request(server_factory, tmp_path, backend_proto):
    binary = haproxy_binary()
    h2 = backend_proto == "h2"
    slot_ports = {slot: free_port() for slot in EXAMPLE_SLOTS}
    frontend_port = free_port()
    # In a short directory of its own: a Unix socket path has at most 107 bytes.
    socket_dir = tempfile.mkdtemp(prefix="fleet-")
    stats_socket = os.path.join(socket_dir, "haproxy.sock")
    stop_load = threading.Event()
    clients: list = []
    haproxy = None
    t_begin = time.monotonic()
    try:
        a = start_instance(server_factory, "A", slot_ports["app1-blue"])
        b = start_instance(server_factory, "B", slot_ports["app2-blue"])
        config = haproxy_config(frontend_port, slot_ports, stats_socket, h2)
        haproxy = HAProxy(binary, config, tmp_path, stats_socket)
        haproxy.wait_status({"app1-blue": "UP", "app2-blue": "UP", "app1-green": "DOWN", "app2-green": "DOWN"})

        # Half the clients keep one connection, half open one per request.
        clients = [LoadClient(f"c{i}", frontend_port, i % 2 == 0, "2" if h2 else "1.1", stop_load)
                   for i in range(LOAD_CLIENTS)]
        for c in clients:
            c.start()
        wait_served(clients, "A", 20)
        wait_served(clients, "B", 20)

        roll_a = roll(haproxy, server_factory, clients, a, "app1-blue", "A2", "app1-green",
                      slot_ports["app1-green"])
        roll_b = roll(haproxy, server_factory, clients, b, "app2-blue", "B2", "app2-green",
                      slot_ports["app2-green"])
        # The new pair carries the load alone for a while.
        after = time.monotonic()
        wait_served(clients, "A2", 50, since=after)
        wait_served(clients, "B2", 50, since=after)
        time.sleep(0.5)
        stop_load.set()
        for c in clients:
            c.join(WAIT)
            assert not c.is_alive(), f"{c.name} did not stop"
        stats = haproxy.stats()
        # SIGINT skips the drain delay: the teardown need not wait for it.
        new_pair = (roll_a["new"], roll_b["new"])
        for server in new_pair:
            server.signal(signal.SIGINT)
        for server in new_pair:
            assert server.wait_exit(WAIT) == 0, server.output()
    finally:
        stop_load.set()
        if haproxy is not None:
            haproxy.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
    elapsed = time.monotonic() - t_begin

    failures = [f for c in clients for f in c.failures]
    sent = sum(c.sent for c in clients)
    counts = {name: served_by(clients, name) for name in ("A", "B", "A2", "B2")}
    drained = {"A": served_by(clients, "A", since=roll_a["sigterm"]),
               "B": served_by(clients, "B", since=roll_b["sigterm"])}
    print(f"\n{backend_proto} to the servers: {sent} requests in {elapsed:.1f} s, {len(failures)} failed; "
          f"served by {counts}; sent after SIGTERM and served while draining: {drained}; "
          f"out of rotation {roll_a['out_of_rotation']:.2f} s / {roll_b['out_of_rotation']:.2f} s "
          f"and stopped {roll_a['stopped']:.2f} s / {roll_b['stopped']:.2f} s after SIGTERM")

    assert failures == [], f"{len(failures)} of {sent} failed, the first: {failures[:10]}"
    assert sum(counts.values()) == sent
    # Each instance served, under its own PID.
    pids = {(name, pid) for c in clients for (_, name, pid) in c.served}
    instances = {"A": a, "B": b, "A2": roll_a["new"], "B2": roll_b["new"]}
    assert pids == {(name, server.pid) for name, server in instances.items()}
    assert min(counts.values()) >= 20, counts
    # The drain delay kept serving what HAProxy still sent after SIGTERM.
    assert min(drained.values()) >= 1, drained

    # HAProxy agrees: each slot's 2xx count is what its instance served, the
    # frontend saw every request, and nothing was retried, redispatched,
    # refused or answered 5xx on the way.
    slot_of = {"A": "app1-blue", "B": "app2-blue", "A2": "app1-green", "B2": "app2-green"}
    assert {name: int(stats[slot]["hrsp_2xx"]) for name, slot in slot_of.items()} == counts
    assert int(stats["FRONTEND"]["req_tot"]) == sent
    for name, row in stats.items():
        problems = {k: row[k] for k in ("econ", "eresp", "wretr", "wredis", "hrsp_5xx") if row.get(k) not in ("", "0")}
        assert problems == {}, f"{name}: {problems}"
    # And says why it took the old ones out.
    log = haproxy.output()
    for slot in ("app1-blue", "app2-blue"):
        assert re.search(rf"Server cormorant/{slot} is DOWN, reason: Layer7 wrong status, code: 503", log), log
