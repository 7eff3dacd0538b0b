"""The agentless poller against loopback targets: checks a minute from one process.

Goal (../shared/BENCHMARKS.md): >= 5,000 checks a minute from one process (LibreNMS: 200
devices saturated 8 cores after a regression), with CPU-seconds per 1,000 checks and the p95
check latency.

A second process serves the targets on 127.0.0.1 (a TCP port that sends a banner, an HTTP/1.1
server, a DNS server over UDP) so their CPU is not counted as the poller's. This process runs
onestop.monitoring.poller.Poller with the real probes (ProbeDispatcher) over --checks targets
of mixed kinds (TCP with a banner, HTTP GET with a body match, DNS A record with an expected
answer, ICMP ping of 127.0.0.1 when this machine allows it), each every --interval seconds,
for --seconds. The outcomes go to a store function that only keeps them: this measures the
probes and the scheduler, not the database.

Prints checks a minute vs the goal, CPU seconds of the poller process per 1,000 checks (its
threads included), latency p50/p95/p99 (from the start of a probe to its result), checks late
or overlapping, and the statuses seen (every check should be OK: anything else is printed).

Run: .venv/bin/python bench/poller.py [--checks 2500] [--interval 15] [--seconds 60]
     [--concurrency 256] [--mix tcp,http,dns,ping]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def _measure(args: argparse.Namespace, ports: dict[str, int]) -> None:
    from onestop.monitoring.poller import Poller, ProbeDispatcher
    from onestop.monitoring.probes.icmp import IcmpMode, icmp_access

    access = icmp_access()
    ping_ok = access.mode is not IcmpMode.NONE
    if "ping" in args.mix and not ping_ok:
        print(f"note: no ping here ({access.reason}); the mix runs without it")
    targets = _targets(args, ports, ping_ok)
    print(
        f"targets: {len(targets):,} ({dict(Counter(t.probe for t in targets))}), "
        f"every {args.interval:g} s = {len(targets) * 60 / args.interval:,.0f} checks/min wanted"
    )
    stored: list = []
    dispatcher = ProbeDispatcher()
    poller = Poller(
        run_probe=dispatcher,
        load_targets=lambda: targets,
        store=stored.extend,
        concurrency=args.concurrency,
        reload_every=3600,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    cpu_before = time.process_time()
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
    print(f"  outcomes handed to the store: {len(stored):,} of {stats.runs:,} run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=2500)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--mix", default="tcp,http,dns,ping")
    parser.add_argument("--serve-targets", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_targets:
        asyncio.run(_serve_targets())
        return
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


if __name__ == "__main__":
    main()
