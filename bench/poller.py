"""The agentless poller against loopback targets: checks a minute from one process.

Goal (../shared/BENCHMARKS.md): >= 5,000 checks a minute from one process (LibreNMS: 200
devices saturated 8 cores after a regression), with CPU-seconds per 1,000 checks and the p95
check latency.

A second process serves the targets on 127.0.0.1 (a TCP port that sends a banner, an HTTP/1.1
server, a DNS server over UDP) so their CPU is not counted as the poller's. This process runs
onestop.monitoring.poller.Poller with the real probes (ProbeDispatcher) over --checks targets
of mixed kinds (TCP with a banner, HTTP GET with a body match, DNS A record with an expected
answer, ICMP ping of 127.0.0.1 when this machine allows it), each every --interval seconds,
for --seconds. With --store memory (default) the outcomes go to a store function that only
keeps them: the probes and the scheduler alone. With --store postgres or --store sqlite they go
the whole way, as in `onestop poller`: the targets are real checks in a fresh database
(PostgreSQL database onestop_bench_poller, dropped at the end, or SQLite in a temporary data
folder), and every result is stored: readings into the metric store, each result through its
check's state engine, on the poller's database thread. The CPU of the PostgreSQL backends of
that database is counted with the poller's.

Prints checks a minute vs the goal, CPU seconds of the poller process per 1,000 checks (its
threads included), latency p50/p95/p99 (from the start of a probe to its result), checks late
or overlapping, and the statuses seen (every check should be OK: anything else is printed).

Run: .venv/bin/python bench/poller.py [--checks 2500] [--interval 15] [--seconds 60]
     [--concurrency 256] [--mix tcp,http,dns,ping] [--store memory|postgres|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

GOAL_PER_MINUTE = 5_000
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = "onestop_bench_poller"
TICK = os.sysconf("SC_CLK_TCK")
BANNER = b"SSH-2.0-OneStopBench\r\n"
BODY = b"<html><body>status: healthy</body></html>"


# The targets' process ---------------------------------------------------------------------------


async def _tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(BANNER)
    try:
        await writer.drain()
        await reader.read(100)  # until the prober closes
    except OSError:
        pass
    writer.close()


async def _http_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (
        len(BODY),
        BODY,
    )
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            writer.write(response)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass
    writer.close()


class _DnsServer(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        import dns.message
        import dns.rrset

        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "192.0.2.10"))
        self.transport.sendto(response.to_wire(), addr)


async def _serve_targets() -> None:
    tcp = await asyncio.start_server(_tcp_client, "127.0.0.1", 0, backlog=4096)
    web = await asyncio.start_server(_http_client, "127.0.0.1", 0, backlog=4096)
    loop = asyncio.get_running_loop()
    transport, _protocol = await loop.create_datagram_endpoint(
        _DnsServer, local_addr=("127.0.0.1", 0)
    )
    ports = {
        "tcp": tcp.sockets[0].getsockname()[1],
        "http": web.sockets[0].getsockname()[1],
        "dns": transport.get_extra_info("sockname")[1],
    }
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


# The poller ------------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _targets(args: argparse.Namespace, ports: dict[str, int], ping_ok: bool) -> list:
    from onestop.monitoring.poller import Target

    kinds = [kind for kind in args.mix.split(",") if kind != "ping" or ping_ok]
    params = {
        "tcp": {"host": "127.0.0.1", "port": ports["tcp"], "expect": "SSH-2.0"},
        "http": {
            "url": f"http://127.0.0.1:{ports['http']}/health",
            "body_match": "healthy",
            "check_cert": False,
        },
        "dns": {
            "server": "127.0.0.1",
            "port": ports["dns"],
            "name": "www.example.cn",
            "expected": ["192.0.2.10"],
        },
        "ping": {"host": "127.0.0.1", "count": 1},
    }
    return [
        Target(
            check_id=i,
            probe=kinds[i % len(kinds)],
            params=params[kinds[i % len(kinds)]],
            interval=args.interval,
            timeout=args.timeout,
        )
        for i in range(1, args.checks + 1)
    ]


def _psql(sql: str) -> str:
    return subprocess.run(
        ["psql", PG + "/postgres", "-qAtc", sql], capture_output=True, text=True, check=True
    ).stdout


def _database_setup(args: argparse.Namespace) -> None:
    """A fresh database for --store postgres|sqlite, migrated, with Django set up here."""
    import tempfile

    os.environ.update(
        ONESTOP_DATA_DIR=tempfile.mkdtemp(prefix="onestop-bench-poller-"),
        SECRET_KEY="bench-secret-key-long-enough-0123456789abcdef",
        ONESTOP_ENCRYPTION_KEY="bKev0GDh2MGAl9SSeLmZWOnhG-FbAn7sTkTec5F0PL4=",
        DJANGO_SETTINGS_MODULE="onestop.config.settings",
    )
    os.environ.pop("DATABASE_URL", None)
    if args.store == "postgres":
        _psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        _psql(f"CREATE DATABASE {DB} ENCODING 'UTF8' TEMPLATE template0")
        os.environ["DATABASE_URL"] = f"{PG}/{DB}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _checks_create(targets: list) -> list:
    """The targets as real checks of one device (through the services, as the UI makes them);
    returns the targets with their check ids."""
    import dataclasses

    from onestop.assets import services as asset_services
    from onestop.core import services as core_services
    from onestop.monitoring import services

    customer = core_services.customer_create(actor=None, name="压测客户", short_code="BENCH")
    device = asset_services.device_create(
        actor=None, customer=customer, name="LOOPBACK", kind="server", ip_address="127.0.0.1"
    )
    made = []
    for target in targets:
        params = {k: v for k, v in target.params.items() if k not in ("host", "server")}
        if target.probe == "dns":
            params["server"] = "127.0.0.1"
        check = services.check_create(
            actor=None,
            device=device,
            name=f"{target.probe} {target.check_id}",
            kind="poller",
            probe=target.probe,
            mode="availability",
            params=params,
            interval=max(10, int(target.interval)),
            timeout=int(target.timeout),
            retries=0,
        )
        made.append(dataclasses.replace(target, check_id=check.pk, source_id=device.pk))
    return made


def _backend_cpu() -> float:
    """CPU seconds of the PostgreSQL backends connected to the bench database."""
    pids = _psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{DB}'").split()
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ValueError):
            total += _cpu_seconds(int(pid))
    return total


async def _measure(args: argparse.Namespace, ports: dict[str, int]) -> None:
    from onestop.monitoring.poller import Poller, ProbeDispatcher
    from onestop.monitoring.probes.icmp import IcmpMode, icmp_access

    access = icmp_access()
    ping_ok = access.mode is not IcmpMode.NONE
    if "ping" in args.mix and not ping_ok:
        print(f"note: no ping here ({access.reason}); the mix runs without it")
    targets = _targets(args, ports, ping_ok)
    stored: list = []
    load_targets, store, executor = (lambda: targets), stored.extend, None
    if args.store != "memory":
        from onestop.monitoring import poller_process

        targets = await asyncio.to_thread(_checks_create, targets)
        load_targets = lambda: poller_process.load_targets(0, 1)  # noqa: E731
        store = poller_process.store_outcomes
        executor = poller_process.ThreadPoolExecutor(max_workers=1)
        print(f"database: {args.store}, {len(targets):,} checks created")
    print(
        f"targets: {len(targets):,} ({dict(Counter(t.probe for t in targets))}), "
        f"every {args.interval:g} s = {len(targets) * 60 / args.interval:,.0f} checks/min wanted"
    )
    dispatcher = ProbeDispatcher()
    poller = Poller(
        run_probe=dispatcher,
        load_targets=load_targets,
        store=store,
        concurrency=args.concurrency,
        reload_every=3600,
        executor=executor,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    cpu_before = time.process_time()
    backend_before = _backend_cpu() if args.store == "postgres" else 0.0
    started = time.perf_counter()
    loop.call_later(args.seconds, stop.set)

    async def progress() -> None:
        while not stop.is_set():
            await asyncio.sleep(10)
            elapsed = time.perf_counter() - started
            print(
                f"  t={elapsed:4.0f} s runs {poller.stats.runs:,} "
                f"({poller.stats.runs * 60 / elapsed:,.0f}/min) late {poller.stats.late:,}",
                flush=True,
            )

    reporter = asyncio.create_task(progress())
    await poller.run(stop)
    reporter.cancel()
    await dispatcher.close()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    if args.store == "postgres":
        cpu += _backend_cpu() - backend_before
    stats = poller.stats
    latencies = sorted(stats.latencies_ms)

    def pct(p: float) -> float:
        return latencies[int(p * (len(latencies) - 1))] if latencies else 0.0

    per_minute = stats.runs * 60 / elapsed
    print(f"results ({elapsed:.1f} s, concurrency {args.concurrency}):")
    print(
        f"  checks: {stats.runs:,} = {per_minute:,.0f} a minute "
        f"(goal {GOAL_PER_MINUTE:,}: {per_minute / GOAL_PER_MINUTE:.2f}x); "
        f"late {stats.late:,}, overlapping {stats.overlapping:,}"
    )
    print(f"  statuses: { {str(status): count for status, count in stats.by_status.items()} }")
    not_ok = [o for o in stored if not o.result.ok][:5]
    for outcome in not_ok:
        print(f"    e.g. {outcome.target.probe}: {outcome.result.status} {outcome.result.message}")
    print(
        f"  latency ms: p50 {pct(0.5):.1f} p95 {pct(0.95):.1f} p99 {pct(0.99):.1f} "
        f"max {latencies[-1] if latencies else 0:.1f}"
    )
    print(
        f"  poller CPU: {cpu:.1f} s = {cpu / elapsed * 100:.0f} % of one core; "
        f"{cpu / max(stats.runs, 1) * 1000:.3f} CPU s per 1,000 checks; "
        f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    if args.store == "memory":
        print(f"  outcomes handed to the store: {len(stored):,} of {stats.runs:,} run")
    else:
        await asyncio.to_thread(_database_report, stats, executor)


def _database_report(stats, executor) -> None:
    from django.db.models import Sum

    from onestop.monitoring.models import Check

    def count() -> int:
        return Check.objects.exclude(last_checked_at=None).count()

    checked = executor.submit(count).result()
    states = executor.submit(
        lambda: dict(Check.objects.values_list("state").annotate(n=Sum(1)).order_by())
    ).result()
    print(
        f"  stored: {checked:,} checks have results, states {states}; "
        f"{stats.runs:,} results run, store failures {stats.store_failures}, "
        f"dropped {stats.dropped}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=2500)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--mix", default="tcp,http,dns,ping")
    parser.add_argument("--store", choices=("memory", "postgres", "sqlite"), default="memory")
    parser.add_argument("--serve-targets", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_targets:
        asyncio.run(_serve_targets())
        return
    if args.store != "memory":
        _database_setup(args)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-targets"], stdout=subprocess.PIPE, text=True
    )
    try:
        ports = json.loads(server.stdout.readline())
        print(f"bench: poller, {os.cpu_count()} cores, load {os.getloadavg()}, targets {ports}")
        target_cpu = _cpu_seconds(server.pid)
        asyncio.run(_measure(args, ports))
        print(
            f"  target servers' CPU (not counted above): "
            f"{_cpu_seconds(server.pid) - target_cpu:.1f} s"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        if args.store == "postgres":
            from django.db import connections

            connections.close_all()
            _psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
