"""A fleet of simulated agents against a real server, through the agent API end to end.

Goals (../shared/BENCHMARKS.md): 10,000 agents reporting every 60 s on 2 cores with p99 < 200 ms
(Tactical RMM: 2-vCPU servers unstable at ~475 agents); metric ingest at least 2x Zabbix 6.0
(about 94,000 values/s stored, 0.0125 CPU-seconds per 1,000 values, Zabbix + PostgreSQL).

Sets up a throwaway server: a fresh PostgreSQL database (dropped at the end) or SQLite in a
temporary ONESTOP_DATA_DIR, `onestop migrate`, a customer, a site and an enrolment token, then
`onestop web` (granian) on a free loopback port. Enrols N agents through /api/agent/v1/enroll,
sends one untimed warm-up report per agent (its series are created, as on a server whose fleet
has been running), then measures:

- fleet (default): each agent sends one report of 30 samples per 60 s period, the agents spread
  evenly over the period (target agents/60 requests/s), each report on a new connection like
  onestop-agent's urllib, for --seconds;
- ingest: the agents send as fast as --concurrency requests in flight allow (one in flight per
  agent; samples dated 60 s apart from six days ago, like an agent emptying its disk buffer),
  for --seconds: the most samples/s the agent API stores on this machine.

No connection is reused unless --keepalive: `onestop web` runs granian with a backpressure of
2 x its blocking threads per worker, and granian counts connections, idle keep-alive ones
included, so a client holding more open connections than that stalls until one closes.

Latency is from sending the request to the answer (loopback, httpx.AsyncClient); "lag" is how
late the client started a request after its scheduled time (client saturated if large). The
stored count is checked at the end against the accepted counts in the answers (AgentReport rows
and the metric store's buffer and chunk rows). CPU seconds of the server are read from
/proc/<pid>/stat every 0.5 s: granian and its workers, and the PostgreSQL backends of the bench
database; PostgreSQL's shared processes (postmaster, WAL writer, checkpointer, background writer)
are shown apart because other databases on the machine use them too. The client's own CPU runs
on the same cores and is shown too.

Run: .venv/bin/python bench/agent_fleet.py [--mode fleet|ingest] [--agents 2000] [--seconds 60]
     [--workers 2] [--db postgres|sqlite] [--concurrency N] [--keepalive] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = "onestop_bench_fleet"
VENV_BIN = Path(sys.executable).parent
PERIOD = 60.0
GOAL_AGENTS = 10_000
GOAL_P99_MS = 200.0
ZABBIX_VALUES_S = 94_000
ZABBIX_CPU_PER_1000 = 0.0125
CORES = os.cpu_count() or 1
TICK = os.sysconf("SC_CLK_TCK")
API = "/api/agent/v1"
REQUEST_TIMEOUT = 20.0  # onestop-agent's own timeout
SETUP_TIMEOUT = 180.0
DRAIN_SECONDS = 30.0
VERIFY_TIMEOUT = 120.0

# The 30 samples of a report: names and labels as onestop-agent sends them.
SERVICES = ("sshd", "cron", "rsyslog", "chronyd", "systemd-journald", "nginx", "postgresql", "ufw")
PROCESSES = ("nginx", "postgres", "java", "dockerd", "containerd", "zabbix_agentd")
METRICS: list[tuple[str, dict[str, str]]] = [
    ("cpu.percent", {}),
    ("load.1", {}),
    ("load.5", {}),
    ("load.15", {}),
    ("mem.used_percent", {}),
    ("mem.available_bytes", {}),
    ("swap.used_percent", {}),
    ("disk.used_percent", {"mount": "/"}),
    ("disk.free_bytes", {"mount": "/"}),
    ("disk.inodes_used_percent", {"mount": "/"}),
    ("net.rx_bps", {"nic": "eth0"}),
    ("net.tx_bps", {"nic": "eth0"}),
    ("net.rx_errors", {"nic": "eth0"}),
    ("net.tx_errors", {"nic": "eth0"}),
    ("uptime.seconds", {}),
    ("proc.count", {}),
    *[("service.up", {"name": n}) for n in SERVICES],
    *[("process.up", {"name": n}) for n in PROCESSES],
]
assert len(METRICS) == 30

SETUP_SCRIPT = """
import django, json
django.setup()
from onestop.core import services as core
from onestop.monitoring.services import enrollment_token_create
customer = core.customer_create(actor=None, name="Bench fleet", short_code="BFLEET")
site = core.site_create(actor=None, customer=customer, name="Bench site")
_token, raw = enrollment_token_create(actor=None, site=site, name="bench", days=1)
print(json.dumps({"token": raw}))
"""

VERIFY_SCRIPT = """
import django, json
django.setup()
from django.db import connection
from django.db.models import Count, Sum
from onestop.metrics.models import Chunk, Series
from onestop.monitoring.models import Agent, AgentReport
reports = AgentReport.objects.aggregate(n=Count("id"), accepted=Sum("accepted"),
                                        rejected=Sum("rejected"))
with connection.cursor() as cursor:
    cursor.execute("SELECT COUNT(*) FROM (SELECT series_id, ts FROM metrics_buffer0 "
                   "UNION SELECT series_id, ts FROM metrics_buffer1) AS b")
    buffered = cursor.fetchone()[0]
chunked = Chunk.objects.aggregate(n=Sum("count"))["n"] or 0
print(json.dumps({"agents": Agent.objects.count(), "series": Series.objects.count(),
                  "reports": reports["n"], "accepted": reports["accepted"] or 0,
                  "rejected": reports["rejected"] or 0, "stored": buffered + chunked}))
"""


class Stop(SystemExit):
    """A signal or the time bound: clean up and leave (a SystemExit, which asyncio re-raises
    from a callback where it would log and swallow an ordinary exception)."""


def say(message: str) -> None:
    print(message, flush=True)


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# CPU accounting ---------------------------------------------------------------------------------


def stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, user + system CPU seconds, start time in ticks) from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, int(fields[19])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class CpuMonitor(threading.Thread):
    """Polls the CPU seconds of the server's processes; a process that ended keeps the CPU it
    had when last seen (at most one poll interval of its end is missed)."""

    def __init__(self, db_name: str | None, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.db_name = db_name
        self.interval = interval
        self.root: int | None = None
        self.lock = threading.Lock()
        # (pid, start ticks) -> [category, cpu at first sight, cpu last seen]
        self.seen: dict[tuple[int, int], list[Any]] = {}
        self.first_poll = True
        self.stopped = threading.Event()

    def categorise(self, pid: int, ppid: int, line: str, tree: set[int]) -> str | None:
        if pid in tree:
            return "web"
        if not line.startswith("postgres"):
            return None
        if self.db_name and f" {self.db_name} " in line:
            return "pg_backend"
        if any(
            role in line
            for role in ("walwriter", "checkpointer", "background writer", "/bin/postgres ")
        ):
            return "pg_shared"
        return None

    def poll(self) -> None:
        tree: set[int] = set()
        if self.root is not None:
            try:
                root = psutil.Process(self.root)
                tree = {root.pid, *(p.pid for p in root.children(recursive=True))}
            except psutil.Error:
                tree = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            st = stat(pid)
            if st is None:
                continue
            ppid, cpu, start = st
            key = (pid, start)
            with self.lock:
                known = self.seen.get(key)
                if known is not None:
                    known[2] = cpu
                    continue
            category = self.categorise(pid, ppid, cmdline(pid), tree)
            if category is None:
                continue
            # Processes running before the monitor count from then; later ones from birth.
            with self.lock:
                self.seen[key] = [category, cpu if self.first_poll else 0.0, cpu]
        self.first_poll = False

    def run(self) -> None:
        while not self.stopped.is_set():
            self.poll()
            self.stopped.wait(self.interval)

    def totals(self) -> Counter[str]:
        self.poll()
        out: Counter[str] = Counter()
        with self.lock:
            for category, first, last in self.seen.values():
                out[category] += last - first
        return out


def cpu_line(delta: Counter[str], client: float, wall: float, samples: int) -> list[str]:
    server = delta["web"] + delta["pg_backend"]
    lines = [
        f"  CPU s: server {server:.1f} (granian {delta['web']:.1f} + PostgreSQL backends "
        f"{delta['pg_backend']:.1f}); PostgreSQL shared processes {delta['pg_shared']:.1f}; "
        f"load-generating client {client:.1f}"
    ]
    share = 100.0 * server / (wall * CORES)
    lines.append(
        f"  server CPU: {share:.1f} % of the machine's {CORES} cores "
        f"(CPU to spare {100.0 - share:.1f} %; with client and shared "
        f"{100.0 * (server + client + delta['pg_shared']) / (wall * CORES):.1f} %)"
    )
    if samples:
        per_1000 = server / samples * 1000
        lines.append(
            f"  server CPU s / 1,000 samples: {per_1000:.4f} "
            f"(Zabbix + PostgreSQL {ZABBIX_CPU_PER_1000}: {per_1000 / ZABBIX_CPU_PER_1000:.2f}x); "
            f"{GOAL_AGENTS:,} agents at this cost need "
            f"{per_1000 * GOAL_AGENTS * len(METRICS) / PERIOD / 1000:.2f} cores"
        )
    return lines


# The simulated agents ---------------------------------------------------------------------------


class Agent:
    __slots__ = ("auth", "index", "rng", "seq")

    def __init__(self, index: int, agent_id: int, secret: str) -> None:
        self.index = index
        self.auth = f"Agent {agent_id}:{secret}"
        self.seq = 0
        self.rng = random.Random(index)

    def report(self, at: float) -> bytes:
        self.seq += 1
        rng = self.rng
        values = [
            round(rng.uniform(0, 100), 1),
            round(rng.uniform(0, 4), 2),
            round(rng.uniform(0, 4), 2),
            round(rng.uniform(0, 4), 2),
            round(rng.uniform(10, 90), 1),
            float(rng.randrange(1 << 30, 1 << 34)),
            round(rng.uniform(0, 10), 1),
            round(rng.uniform(20, 90), 1),
            float(rng.randrange(1 << 30, 1 << 38)),
            round(rng.uniform(1, 30), 1),
            float(rng.randrange(0, 10_000_000)),
            float(rng.randrange(0, 10_000_000)),
            0.0,
            0.0,
            float(86_400 * 30 + self.seq * 60),
            float(rng.randrange(150, 400)),
            *[1.0] * (len(SERVICES) + len(PROCESSES)),
        ]
        at = round(at, 3)
        samples = [[at, name, labels, v] for (name, labels), v in zip(METRICS, values, strict=True)]
        return json.dumps(
            {
                "report_id": uuid.uuid4().hex,
                "seq": self.seq,
                "sent_at": round(time.time(), 3),
                "dropped": 0,
                "heartbeat": {"uptime": 86_400, "agent_version": "0.1.0"},
                "samples": samples,
            },
            separators=(",", ":"),
        ).encode()


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.accepted = 0
        self.rejected = 0
        self.ok = 0
        self.first_sent: float | None = None
        self.last_done = 0.0

    def add(self, status: str, latency: float, body: dict[str, Any] | None) -> None:
        self.statuses[status] += 1
        self.latencies.append(latency)
        self.last_done = time.perf_counter()
        if body is not None:
            self.ok += 1
            self.accepted += int(body.get("accepted", 0))
            self.rejected += int(body.get("rejected", 0))


async def send_report(client: httpx.AsyncClient, agent: Agent, at: float, tally: Tally) -> None:
    body = agent.report(at)
    start = time.perf_counter()
    if tally.first_sent is None:
        tally.first_sent = start
    try:
        response = await client.post(
            f"{API}/report",
            content=body,
            headers={"Authorization": agent.auth, "Content-Type": "application/json"},
        )
    except httpx.HTTPError as exc:
        tally.add(type(exc).__name__, time.perf_counter() - start, None)
        return
    latency = time.perf_counter() - start
    if response.status_code == 200:
        tally.add("200", latency, response.json())
    else:
        tally.add(str(response.status_code), latency, None)


def client_for(base: str, connections: int, keepalive: bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        timeout=REQUEST_TIMEOUT,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections if keepalive else 0,
        ),
    )


async def enroll(
    base: str, token: str, count: int, concurrency: int, budget: float, keepalive: bool
) -> list[Agent]:
    agents: list[Agent | None] = [None] * count
    failures: Counter[str] = Counter()
    next_index = 0
    started = time.perf_counter()
    deadline = started + budget
    latencies: list[float] = []

    retry: list[int] = []

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while (next_index < count or retry) and time.perf_counter() < deadline:
            if retry:
                i = retry.pop()
            else:
                i = next_index
                next_index += 1
            payload = {
                "token": token,
                "hostname": f"BENCH-{i:05d}",
                "machine_id": uuid.uuid5(uuid.NAMESPACE_DNS, f"bench-{i}").hex,
                "os": "Debian GNU/Linux 12",
                "agent_version": "0.1.0",
            }
            t0 = time.perf_counter()
            try:
                response = await client.post(f"{API}/enroll", json=payload)
            except httpx.HTTPError as exc:
                # Like an agent: try again (a timed-out enrolment may have made a device).
                failures[type(exc).__name__] += 1
                retry.append(i)
                continue
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 201:
                failures[str(response.status_code)] += 1
                retry.append(i)
                continue
            data = response.json()
            agents[i] = Agent(i, data["agent_id"], data["secret"])

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            say(f"  enrolled {sum(a is not None for a in agents):,}/{count:,} load {load()}")

    async with client_for(base, concurrency, keepalive) as client:
        ticker = asyncio.create_task(progress())
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        ticker.cancel()
    wall = time.perf_counter() - started
    done = [a for a in agents if a is not None]
    latencies.sort()
    say(
        f"enrolment: {len(done):,} agents in {wall:.1f} s ({len(done) / wall:,.0f}/s, "
        f"{concurrency} in flight), p50 {pct(latencies, 0.5) * 1000:.0f} ms "
        f"p99 {pct(latencies, 0.99) * 1000:.0f} ms, failures {dict(failures) or 'none'}"
    )
    if len(done) < count:
        raise SystemExit(f"only {len(done)} of {count} agents enrolled within {budget:.0f} s")
    return done


async def warm_up(
    base: str, agents: list[Agent], concurrency: int, keepalive: bool, tally: Tally
) -> None:
    """One report per agent, as fast as `concurrency` allows: creates each agent's series."""
    queue = list(reversed(agents))
    at = time.time() - PERIOD

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            await send_report(client, queue.pop(), at, tally)

    async with client_for(base, concurrency, keepalive) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


async def fleet(
    base: str, agents: list[Agent], seconds: float, connections: int, keepalive: bool, tally: Tally
) -> int:
    """Every agent reports once per PERIOD, the agents spread evenly over it."""
    n = len(agents)
    slot = PERIOD / n
    tasks: set[asyncio.Task] = set()
    scheduled = 0
    # Requests wait here, not in httpx's pool, whose cost grows with its queue of waiters.
    slots = asyncio.Semaphore(connections)

    async def one(agent: Agent, due: float) -> None:
        async with slots:
            tally.lags.append(max(0.0, loop.time() - due))
            await send_report(client, agent, time.time(), tally)

    async with client_for(base, connections, keepalive) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_progress = start + 10
        k = 0
        while True:
            offset = (k // n) * PERIOD + (k % n) * slot
            if offset >= seconds:
                break
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(agents[k % n], start + offset))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            scheduled += 1
            k += 1
            if loop.time() >= next_progress:
                next_progress += 10
                lat = sorted(tally.latencies[-2000:])
                say(
                    f"  t={loop.time() - start:4.0f} s sent {scheduled:,} done "
                    f"{len(tally.latencies):,} in flight {len(tasks)} "
                    f"recent p99 {pct(lat, 0.99) * 1000:.0f} ms "
                    f"errors {sum(tally.statuses.values()) - tally.ok} load {load()}"
                )
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                tally.statuses["unfinished"] += len(pending)
    return scheduled


async def ingest(
    base: str, agents: list[Agent], seconds: float, concurrency: int, keepalive: bool, tally: Tally
) -> int:
    """As fast as `concurrency` requests in flight allow, one in flight per agent."""
    free: asyncio.Queue[Agent] = asyncio.Queue()
    for agent in agents:
        free.put_nowait(agent)
    base_time = (time.time() - 6 * 86_400) // 60 * 60
    latest = time.time() + 300
    sent = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while loop.time() < end:
            agent = await free.get()
            at = base_time + agent.seq * PERIOD
            if at > latest:  # never happens at realistic rates; stay inside the accepted window
                continue
            sent += 1
            await send_report(client, agent, at, tally)
            free.put_nowait(agent)

    async def progress() -> None:
        t0 = loop.time()
        while True:
            await asyncio.sleep(10)
            say(
                f"  t={loop.time() - t0:4.0f} s done {len(tally.latencies):,} "
                f"accepted {tally.accepted:,} errors {sum(tally.statuses.values()) - tally.ok} "
                f"load {load()}"
            )

    async with client_for(base, concurrency, keepalive) as client:
        ticker = asyncio.create_task(progress())
        try:
            await asyncio.wait_for(
                asyncio.gather(*(worker(client) for _ in range(concurrency))),
                timeout=seconds + DRAIN_SECONDS,
            )
        except TimeoutError:
            tally.statuses["unfinished"] += 1
        ticker.cancel()
    return sent


# Server -----------------------------------------------------------------------------------------


def django_json(script: str, env: dict[str, str], timeout: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode:
        raise SystemExit(f"the Django step failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_healthy(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not become healthy in 60 s:\n{log.read_text()[-2000:]}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=25)
    # Whatever is left of its process group (its own session), e.g. workers of a hung server.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=10)


def server_settings(postgres: bool) -> str:
    if not postgres:
        return "SQLite (project settings: WAL, synchronous=NORMAL)"
    out = subprocess.run(
        [
            "psql",
            f"{PG}/postgres",
            "-At",
            "-c",
            "SELECT current_setting('server_version'), current_setting('fsync'), "
            "current_setting('synchronous_commit'), current_setting('max_connections')",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    version, fsync, sync, max_conn = out.split("|")
    return (
        f"PostgreSQL {version} (fsync={fsync} synchronous_commit={sync} max_connections={max_conn})"
    )


# Main -------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, state: dict[str, Any]) -> None:
    postgres = args.db == "postgres"
    data_dir = tempfile.mkdtemp(prefix="onestop-bench-fleet-")
    state["data_dir"] = data_dir
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        ONESTOP_DATA_DIR=data_dir,
        SECRET_KEY="bench-secret-key-long-enough-0123456789abcdef",
        ONESTOP_ENCRYPTION_KEY="bKev0GDh2MGAl9SSeLmZWOnhG-FbAn7sTkTec5F0PL4=",
        ONESTOP_PUBLIC_URL=base,
        DJANGO_SETTINGS_MODULE="onestop.config.settings",
        PYTHONUNBUFFERED="1",
    )
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if postgres:
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        psql(
            f"CREATE DATABASE {DB} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' "
            "TEMPLATE template0"
        )
        state["db_created"] = True
        env["DATABASE_URL"] = f"{PG}/{DB}"

    say(f"bench: agent fleet, mode={args.mode}, {server_settings(postgres)}")
    say(
        f"settings: agents={args.agents:,} seconds={args.seconds:g} workers={args.workers} "
        f"concurrency={args.concurrency} keepalive={args.keepalive} samples/report={len(METRICS)} "
        f"cores={CORES} load(1/5/15 min)={load()}"
    )
    t0 = time.perf_counter()
    subprocess.run(
        [str(VENV_BIN / "onestop"), "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=SETUP_TIMEOUT,
    )
    token = django_json(SETUP_SCRIPT, env, SETUP_TIMEOUT)["token"]
    say(f"setup: migrated and token created in {time.perf_counter() - t0:.1f} s")

    monitor = CpuMonitor(DB if postgres else None)
    log = Path(data_dir) / "server.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [
                str(VENV_BIN / "onestop"),
                "web",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state["server"] = server
    monitor.root = server.pid
    monitor.start()
    wait_healthy(base, server, log)
    say(f"server: onestop web (granian, {args.workers} workers) on {base}, pid {server.pid}")

    c0, cl0 = monitor.totals(), time.process_time()
    agents = asyncio.run(
        enroll(
            base, token, args.agents, min(args.concurrency, 16), args.enroll_seconds, args.keepalive
        )
    )
    c1, cl1 = monitor.totals(), time.process_time()
    enrol_cpu = c1["web"] + c1["pg_backend"] - c0["web"] - c0["pg_backend"]
    say(
        f"  enrolment CPU: server {enrol_cpu:.1f} s ({enrol_cpu / len(agents) * 1000:.1f} ms "
        f"per agent), client {cl1 - cl0:.1f} s"
    )

    warm = Tally()
    w0 = time.perf_counter()
    asyncio.run(warm_up(base, agents, min(args.concurrency, 32), args.keepalive, warm))
    w_wall = time.perf_counter() - w0
    c2, cl2 = monitor.totals(), time.process_time()
    warm_cpu = c2["web"] + c2["pg_backend"] - c1["web"] - c1["pg_backend"]
    say(
        f"warm-up (first report of each agent, creates its {len(METRICS)} series): "
        f"{warm.ok:,} reports in {w_wall:.1f} s, {warm.accepted / w_wall:,.0f} samples/s, "
        f"server CPU {warm_cpu / max(warm.accepted, 1) * 1000:.4f} s/1,000 samples, "
        f"errors {dict(warm.statuses - Counter({'200': warm.ok})) or 'none'}"
    )

    tally = Tally()
    say(f"measuring for {args.seconds:g} s, load {load()}")
    load_before = os.getloadavg()
    if args.mode == "fleet":
        target = args.agents / PERIOD
        sent = asyncio.run(
            fleet(base, agents, args.seconds, args.concurrency, args.keepalive, tally)
        )
    else:
        target = None
        sent = asyncio.run(
            ingest(base, agents, args.seconds, args.concurrency, args.keepalive, tally)
        )
    c3, cl3 = monitor.totals(), time.process_time()
    load_after = os.getloadavg()
    wall = tally.last_done - (tally.first_sent or tally.last_done) or 1e-9

    verify = django_json(VERIFY_SCRIPT, env, VERIFY_TIMEOUT)
    monitor.stopped.set()

    lat = sorted(tally.latencies)
    lags = sorted(tally.lags)
    done = len(lat)
    rate = done / wall
    samples_s = tally.accepted / wall
    errors = dict(tally.statuses - Counter({"200": tally.ok}))
    say(f"results ({args.mode}, {args.agents:,} agents, {args.db}, {args.workers} workers):")
    if target is not None:
        say(
            f"  requests: {sent:,} sent, {done:,} answered in {wall:.1f} s: {rate:,.1f} req/s vs "
            f"target {target:,.1f} req/s ({rate / target:.2f}x); {len(METRICS)} samples each"
        )
    else:
        say(
            f"  requests: {done:,} answered in {wall:.1f} s: {rate:,.1f} req/s "
            f"({args.concurrency} in flight)"
        )
    say(
        f"  samples stored end to end: {samples_s:,.0f}/s ({tally.accepted:,} accepted, "
        f"{tally.rejected} rejected)"
    )
    say(
        f"  latency ms: p50 {pct(lat, 0.5) * 1000:.1f} p95 {pct(lat, 0.95) * 1000:.1f} "
        f"p99 {pct(lat, 0.99) * 1000:.1f} max {(lat[-1] if lat else float('nan')) * 1000:.1f}"
        + (
            f"; client start lag p99 {pct(lags, 0.99) * 1000:.1f} max "
            f"{(lags[-1] if lags else 0) * 1000:.1f}"
            if lags
            else ""
        )
    )
    say(f"  errors by status: {errors or 'none'}")
    delta = Counter({k: c3[k] - c2[k] for k in ("web", "pg_backend", "pg_shared")})
    for line in cpu_line(delta, cl3 - cl2, wall, tally.accepted):
        say(line)
    say(
        "  load average before/after: "
        + "/".join(f"{x:.2f}" for x in load_before)
        + " -> "
        + "/".join(f"{x:.2f}" for x in load_after)
        + f" ({CORES} cores; other work on the machine counts in it)"
    )
    # Every acknowledged sample must be in the store; a report whose answer the client gave up
    # waiting for may have been stored all the same (an agent would resend it, idempotently).
    acked_reports = warm.ok + tally.ok
    acked_samples = warm.accepted + tally.accepted
    lost = (
        verify["reports"] < acked_reports
        or verify["accepted"] < acked_samples
        or verify["stored"] != verify["accepted"]
    )
    late = verify["reports"] - acked_reports
    say(
        f"  check: {verify['reports']:,} reports stored (acknowledged 200: {acked_reports:,}), "
        f"samples in the store {verify['stored']:,} = accepted by the server "
        f"{verify['accepted']:,} (acknowledged to the client {acked_samples:,}), "
        f"series {verify['series']:,}: "
        + ("MISMATCH" if lost else "nothing lost")
        + (f"; {late:,} reports stored after the client timed out" if late > 0 else "")
    )
    if target is not None:
        p99 = pct(lat, 0.99) * 1000
        met = p99 < GOAL_P99_MS and not errors and rate >= 0.95 * target
        scale = (
            "at the goal's rate"
            if args.agents >= GOAL_AGENTS
            else f"at {args.agents / GOAL_AGENTS:.0%} of the goal's rate"
        )
        say(
            f"  goal: {GOAL_AGENTS:,} agents every 60 s on 2 cores, p99 < {GOAL_P99_MS:.0f} ms: "
            f"this run p99 {p99:.1f} ms {scale}: {'met' if met else 'NOT met'} "
            f"(ratio {GOAL_P99_MS / p99:.1f}x)"
        )
    say(
        f"  ingest vs Zabbix {ZABBIX_VALUES_S:,} values/s: {samples_s / ZABBIX_VALUES_S:.3f}x "
        f"(goal >= 2x; "
        + ("the fleet's rate is set by the agent count)" if target else "the most through the API)")
    )
    if lost:
        raise SystemExit(1)


def cleanup(state: dict[str, Any], keep: bool) -> None:
    with state["lock"]:
        if state.get("cleaned"):
            return
        state["cleaned"] = True
        cleanup_now(state, keep)


def cleanup_now(state: dict[str, Any], keep: bool) -> None:
    server = state.get("server")
    if server is not None:
        say("cleanup: stopping the server")
        stop_server(server)
    if state.get("db_created") and not keep:
        say(f"cleanup: dropping database {DB}")
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    if state.get("data_dir") and not keep:
        shutil.rmtree(state["data_dir"], ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["fleet", "ingest"], default="fleet")
    parser.add_argument("--agents", type=int, help="default 2,000 (fleet), 500 (ingest)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time (max 600)")
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--concurrency",
        type=int,
        help="fleet: most connections open at once (default 256); ingest: requests in flight "
        "(default 32); also bounds the warm-up, enrolment at most 16",
    )
    parser.add_argument(
        "--keepalive",
        action="store_true",
        help="reuse connections (keep them under granian's backpressure, see above)",
    )
    parser.add_argument("--enroll-seconds", type=float, default=600.0, help="enrolment bound")
    parser.add_argument("--keep", action="store_true", help="keep the database and data folder")
    args = parser.parse_args()
    if args.agents is None:
        args.agents = 2_000 if args.mode == "fleet" else 500
    if args.concurrency is None:
        args.concurrency = 256 if args.mode == "fleet" else 32
    if not 1 <= args.agents <= 10_000:
        parser.error("--agents: 1 to 10,000")
    if not 1 <= args.seconds <= 600:
        parser.error("--seconds: 1 to 600")
    if args.mode == "ingest" and args.agents < args.concurrency:
        parser.error("ingest: --agents must be at least --concurrency (one in flight per agent)")

    # The whole run is bounded: setup, enrolment, warm-up, measurement, drain, check.
    bound = int(
        SETUP_TIMEOUT * 2
        + 60
        + args.enroll_seconds
        + args.agents / 10
        + args.seconds
        + DRAIN_SECONDS
        + VERIFY_TIMEOUT
    )

    state: dict[str, Any] = {"lock": threading.Lock()}
    finished = threading.Event()
    deadline = [time.monotonic() + bound]

    def watchdog() -> None:
        # Backs up the signals: a main thread starved or stuck past the bound is not waited for.
        while not finished.wait(1.0):
            if time.monotonic() > deadline[0]:
                say(
                    f"watchdog: past the bound ({bound} s) or the grace after a signal; cleaning up"
                )
                cleanup(state, args.keep)
                os._exit(1)

    threading.Thread(target=watchdog, daemon=True).start()

    def stop(signum: int, _frame: Any) -> None:
        deadline[0] = min(deadline[0], time.monotonic() + 60)
        raise Stop(f"stopped by {signal.Signals(signum).name}")

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(signum, stop)
    signal.alarm(bound)
    # One run at a time on this machine: they would share the database name.
    lock = Path(tempfile.gettempdir(), f"{DB}.lock").open("w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another agent_fleet run holds {lock.name}") from None
    try:
        run(args, state)
    except (Stop, KeyboardInterrupt) as exc:
        say(f"interrupted: {exc or 'SIGINT'} (bound {bound} s); cleaning up")
        deadline[0] = min(deadline[0], time.monotonic() + 60)
        raise SystemExit(1) from None
    finally:
        signal.alarm(0)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        cleanup(state, args.keep)
        finished.set()


if __name__ == "__main__":
    main()
