"""The agentless poller's scheduler: runs each target's probe every interval, a bounded number
at a time, in one asyncio loop, and hands the outcomes to a store function in batches.

Plain Python (no Django): the database work sits behind the `load_targets` and `store`
functions given to it, which run in a worker thread so a slow commit never stalls the probes.
`onestop poller` wires it to the checks (monitoring.services); bench/poller.py measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import heapq
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import httpx

from onestop.monitoring.probes import dns, http, icmp, snmp, tcp
from onestop.monitoring.probes.base import ProbeResult, ProbeStatus, note

log = logging.getLogger(__name__)

# Outcomes kept while the store fails (the database is down): about ten minutes of 5,000
# checks a minute. Beyond it the oldest go, counted, rather than the poller's memory.
MAX_PENDING = 50_000


@dataclass(frozen=True)
class Target:
    """One check as the poller runs it."""

    check_id: int
    probe: str
    params: Mapping[str, Any]
    interval: float
    timeout: float
    retries: int = 0
    source_id: int = 0  # what the readings are about (the device), for the metric store


@dataclass(frozen=True)
class Outcome:
    target: Target
    result: ProbeResult
    at: float  # unix time the probe started


ProbeRunner = Callable[[Target], Awaitable[ProbeResult]]


def shard_owns(check_id: int, *, shard: int, shards: int) -> bool:
    """Whether shard `shard` of `shards` (0-based) polls this check: a stable hash, so every
    poller replica agrees without talking to the others and a check stays on its shard."""
    digest = hashlib.blake2b(str(check_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards == shard


def _spread(check_id: int, interval: float) -> float:
    # A stable offset inside the interval: a thousand checks loaded at once do not all run in
    # the same second, and a restart keeps each check's rhythm.
    digest = hashlib.blake2b(b"spread" + str(check_id).encode(), digest_size=4).digest()
    return interval * int.from_bytes(digest, "big") / 2**32


@dataclass
class PollerStats:
    runs: int = 0
    by_status: Counter = field(default_factory=Counter)
    late: int = 0  # started more than a whole interval after it was due
    overlapping: int = 0  # due while its previous run was still going: skipped
    store_failures: int = 0
    dropped: int = 0  # outcomes given up while the store kept failing
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=100_000))

    def p95_ms(self) -> float:
        values = sorted(self.latencies_ms)
        return values[int(0.95 * (len(values) - 1))] if values else 0.0


class Poller:
    """Schedules targets and runs their probes; see the module docstring."""

    def __init__(
        self,
        *,
        run_probe: ProbeRunner,
        load_targets: Callable[[], list[Target]],
        store: Callable[[list[Outcome]], None],
        concurrency: int = 256,
        reload_every: float = 30.0,
        flush_every: float = 1.0,
        executor: Executor | None = None,
    ) -> None:
        self._run_probe = run_probe
        self._load_targets = load_targets
        self._store = store
        self._slots = asyncio.Semaphore(concurrency)
        self._reload_every = reload_every
        self._flush_every = flush_every
        self._executor = executor  # where load_targets and store run (None: asyncio's default)
        self._targets: dict[int, Target] = {}
        self._due: list[tuple[float, int]] = []  # heap of (loop time due, check id)
        self._running: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self._pending: list[Outcome] = []
        self._flushing: asyncio.Task | None = None
        self.stats = PollerStats()

    def targets_set(self, targets: list[Target]) -> None:
        """Replaces the targets: new ones are scheduled at their spread offset, removed ones
        stop after a run in progress, changed ones take their new settings at their next run."""
        now = asyncio.get_running_loop().time()
        fresh = {target.check_id: target for target in targets}
        for check_id, target in fresh.items():
            if check_id not in self._targets:
                heapq.heappush(self._due, (now + _spread(check_id, target.interval), check_id))
        self._targets = fresh

    async def run(self, stop: asyncio.Event) -> None:
        """Polls until `stop` is set, then waits for the probes running and stores their
        outcomes."""
        loop = asyncio.get_running_loop()
        self.targets_set(await loop.run_in_executor(self._executor, self._load_targets))
        next_reload = loop.time() + self._reload_every
        next_flush = loop.time() + self._flush_every
        while not stop.is_set():
            await self._start_due(loop.time())
            now = loop.time()
            if now >= next_flush and (self._flushing is None or self._flushing.done()):
                # In a task of its own: probes keep starting while a batch commits.
                self._flushing = asyncio.create_task(self._flush())
                next_flush = now + self._flush_every
            if now >= next_reload:
                try:
                    self.targets_set(await loop.run_in_executor(self._executor, self._load_targets))
                except Exception:
                    log.exception("loading the poller's targets failed; keeping the old ones")
                next_reload = now + self._reload_every
            wake = min(next_flush, next_reload, self._due[0][0] if self._due else next_flush)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, wake - loop.time()))
        if self._tasks:
            await asyncio.wait(self._tasks)
        if self._flushing is not None:
            await self._flushing
        await self._flush()

    async def _start_due(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            due, check_id = heapq.heappop(self._due)
            target = self._targets.get(check_id)
            if target is None:
                continue  # removed since it was scheduled
            upcoming = due + target.interval
            if upcoming <= now:
                self.stats.late += 1
                upcoming = now + target.interval
            heapq.heappush(self._due, (upcoming, check_id))
            if check_id in self._running:
                self.stats.overlapping += 1
                continue
            await self._slots.acquire()  # all slots busy: the schedule waits, counted as late
            self._running.add(check_id)
            task = asyncio.create_task(self._probe(target))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _probe(self, target: Target) -> None:
        at = time.time()
        started = time.perf_counter()
        try:
            result = await self._run_probe(target)
        except Exception as exc:
            # A bug in one probe must not stop the others; the check shows why it is UNKNOWN.
            log.exception("probe %s of check %s failed", target.probe, target.check_id)
            elapsed = (time.perf_counter() - started) * 1000
            result = ProbeResult(
                ProbeStatus.UNKNOWN,
                {},
                note("probe error: {error}", error=repr(exc)[:400]),
                elapsed,
            )
        finally:
            self._slots.release()
            self._running.discard(target.check_id)
        self.stats.runs += 1
        self.stats.by_status[result.status] += 1
        self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        self._pending.append(Outcome(target, result, at))

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._store, batch)
        except Exception:
            # Kept for the next flush (the database may be restarting), the oldest given up
            # beyond MAX_PENDING.
            self.stats.store_failures += 1
            log.exception("storing %d poller outcomes failed; retrying", len(batch))
            self._pending = batch + self._pending
            excess = len(self._pending) - MAX_PENDING
            if excess > 0:
                del self._pending[:excess]
                self.stats.dropped += excess


class ProbeDispatcher:
    """Runs a target's probe with its parameters: one shared HTTP client per poller (made in
    the poller's loop), each probe's own arguments taken from the check's `params` (SNMP
    credentials under "credentials"), and what a probe needs from its previous run (uptime for
    reboot detection, interface counters for rates) kept per check in memory: after a restart
    the first run has no rates yet."""

    def __init__(self) -> None:
        self._http: httpx.AsyncClient | None = None
        self._uptimes: dict[int, tuple[float, float]] = {}  # check id -> (uptime s, at)
        self._interfaces: dict[int, tuple[float, dict[int, snmp.SnmpInterface]]] = {}

    async def __call__(self, target: Target) -> ProbeResult:
        params, timeout = target.params, target.timeout
        match target.probe:
            case "ping":
                return await icmp.probe_ping(
                    host=params["host"], timeout=timeout, count=int(params.get("count", 3))
                )
            case "tcp":
                return await tcp.probe_tcp(
                    host=params["host"],
                    port=int(params["port"]),
                    timeout=timeout,
                    send=params["send"].encode() if params.get("send") else None,
                    expect=params.get("expect") or None,
                    retries=target.retries,
                )
            case "http":
                if self._http is None:
                    self._http = http.make_client()
                return await http.probe_http(
                    url=params["url"],
                    timeout=timeout,
                    client=self._http,
                    method=params.get("method", "GET"),
                    expected_status=params.get("expected_status") or None,
                    body_match=params.get("body_match") or None,
                    body_regex=bool(params.get("body_regex")),
                    headers=params.get("headers") or None,
                    verify_tls=bool(params.get("verify_tls", True)),
                    check_cert=bool(params.get("check_cert", True)),
                    retries=target.retries,
                )
            case "dns":
                return await dns.probe_dns(
                    server=params["server"],
                    port=int(params.get("port", 53)),
                    name=params["name"],
                    record_type=params.get("record_type", "A"),
                    expected=params.get("expected") or None,
                    timeout=timeout,
                    retries=target.retries,
                )
            case "snmp_uptime" | "snmp_interfaces" | "snmp_cpu_memory" | "snmp_oid":
                return await self._snmp(target)
        return ProbeResult(
            ProbeStatus.UNKNOWN, {}, note("no such probe: {probe}", probe=target.probe), 0.0
        )

    async def _snmp(self, target: Target) -> ProbeResult:
        params = target.params
        common = {
            "host": params["host"],
            "port": int(params.get("port", 161)),
            "credentials": params["credentials"],
            "timeout": target.timeout,
            "retries": target.retries,
        }
        now = time.time()
        if target.probe == "snmp_uptime":
            previous = self._uptimes.get(target.check_id)
            result = await snmp.probe_snmp_uptime(
                **common,
                previous_uptime_s=previous[0] if previous else None,
                elapsed_s=now - previous[1] if previous else None,
            )
            if "snmp.uptime_s" in result.readings:
                self._uptimes[target.check_id] = (result.readings["snmp.uptime_s"], now)
            return result
        if target.probe == "snmp_cpu_memory":
            return await snmp.probe_snmp_cpu_memory(**common)
        if target.probe == "snmp_oid":
            return await snmp.probe_snmp_oid(**common, oid=params["oid"])
        result = await snmp.probe_snmp_interfaces(**common)
        if not result.interfaces:
            return result
        current = {interface.index: interface for interface in result.interfaces}
        rates: list[snmp.Sample] = []
        before = self._interfaces.get(target.check_id)
        if before is not None:
            previous_at, previous = before
            for index, interface in current.items():
                if index in previous:
                    rates += snmp.interface_rates(previous[index], previous_at, interface, now)
        self._interfaces[target.check_id] = (now, current)
        return dataclasses.replace(result, samples=(*result.samples, *rates))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
