"""`onestop poller`: the poller (monitoring.poller) wired to the checks in the database.

The targets are reloaded every 30 s, so a check added, changed or disabled in the UI reaches
the poller within that time; results are stored in batches every second from a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager

from django.conf import settings
from django.db import close_old_connections, connections

from onestop.monitoring import selectors, services
from onestop.monitoring.poller import Outcome, Poller, ProbeDispatcher, Target
from onestop.monitoring.traps import ReceivedTrap, TrapReceiver, engine_id_for, parse_listen

log = logging.getLogger("onestop.poller")
STATS_EVERY = 60.0
TRAP_RELOAD_EVERY = 30.0


def load_targets(shard: int, shards: int) -> list[Target]:
    # Runs in a worker thread: its connection may have been closed by the database.
    close_old_connections()
    return selectors.poller_targets(shard=shard, shards=shards)


def store_outcomes(outcomes: list[Outcome]) -> None:
    close_old_connections()
    services.poller_outcomes_store(outcomes=outcomes)


@contextmanager
def database_thread() -> Iterator[ThreadPoolExecutor]:
    """One thread for the poller's database work (loads and stores never overlap, which
    SQLite's single writer wants), its connection closed when the poller stops."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poller-db")
    try:
        yield executor
    finally:
        executor.submit(connections.close_all).result()
        executor.shutdown()


def load_trap_accounts() -> tuple[dict[int, str], dict]:
    close_old_connections()
    return selectors.trap_communities(), selectors.trap_v3_users()


def trap_engine_id() -> bytes:
    """The trap receiver's SNMP engine id: ONESTOP_SNMP_ENGINE_ID, else one derived from
    SECRET_KEY (only a hash of it is sent), the same at every start since devices sending
    SNMPv3 informs are set up with it."""
    seed = f"onestop-snmp-engine-id:{settings.SECRET_KEY}"
    return settings.ONESTOP_SNMP_ENGINE_ID or engine_id_for(seed)


def store_traps(traps: list[ReceivedTrap]) -> None:
    close_old_connections()
    services.snmp_traps_record(traps=traps)


async def traps_receive(
    *, receiver: TrapReceiver, received: list[ReceivedTrap], executor: Executor, stop: asyncio.Event
) -> None:
    """Stores what the receiver collects every second and reloads the communities and v3 users
    it accepts every 30 s, until `stop`; traps that could not be stored are kept for the next
    try."""
    loop = asyncio.get_running_loop()
    next_reload = 0.0
    while True:
        if loop.time() >= next_reload:
            try:
                communities, users = await loop.run_in_executor(executor, load_trap_accounts)
                receiver.communities_set(communities)
                receiver.users_set(users)
            except Exception:
                log.exception("loading the SNMP trap communities failed; keeping the old ones")
            next_reload = loop.time() + TRAP_RELOAD_EVERY
        if received:
            batch = received[:]
            try:
                await loop.run_in_executor(executor, store_traps, batch)
                del received[: len(batch)]
            except Exception:
                log.exception("storing %d SNMP traps failed; retrying", len(batch))
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


def poller_run(
    *, shard: int = 0, shards: int = 1, concurrency: int = 256, trap_listen: str = ""
) -> None:
    """Polls this shard's checks until SIGTERM or SIGINT, then finishes the probes running
    and stores their results; with `trap_listen` ("host:port") also receives SNMP traps."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        dispatcher = ProbeDispatcher()
        poller = Poller(
            run_probe=dispatcher,
            load_targets=lambda: load_targets(shard, shards),
            store=store_outcomes,
            concurrency=concurrency,
            executor=executor,
        )

        async def report() -> None:
            while True:
                await asyncio.sleep(STATS_EVERY)
                stats = poller.stats
                log.info(
                    "poller: %d checks run, %d late, %d overlapping, %d store failures, "
                    "p95 %.0f ms, %s",
                    stats.runs,
                    stats.late,
                    stats.overlapping,
                    stats.store_failures,
                    stats.p95_ms(),
                    {str(status): count for status, count in stats.by_status.items()},
                )

        tasks = [asyncio.create_task(report())]
        receiver = None
        if trap_listen:
            host, port = parse_listen(trap_listen)
            received: list[ReceivedTrap] = []
            receiver = TrapReceiver(
                host=host,
                port=port,
                on_trap=received.append,
                engine_id=trap_engine_id(),
                state_dir=os.path.join(settings.ONESTOP_DATA_DIR, "snmp"),
            )
            receiver.open()  # a port that cannot be bound stops the poller with the reason
            tasks.append(
                asyncio.create_task(
                    traps_receive(
                        receiver=receiver, received=received, executor=executor, stop=stop
                    )
                )
            )
            log.info("receiving SNMP traps on %s:%d", host, receiver.port)
        log.info(
            "poller started: shard %d of %d, %d probes at a time", shard + 1, shards, concurrency
        )
        try:
            await poller.run(stop)
            if receiver is not None:
                await tasks[1]  # stores what arrived before the stop
        finally:
            tasks[0].cancel()
            if receiver is not None:
                receiver.close()
            await dispatcher.close()
        log.info("poller stopped after %d checks", poller.stats.runs)

    with database_thread() as executor:
        asyncio.run(main())
