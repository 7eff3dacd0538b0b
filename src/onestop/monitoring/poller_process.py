"""`onestop poller`: the poller (monitoring.poller) wired to the checks in the database.

The targets are reloaded every 30 s, so a check added, changed or disabled in the UI reaches
the poller within that time; results are stored in batches every second from a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.db import close_old_connections, connections

from onestop.monitoring import selectors, services
from onestop.monitoring.poller import Outcome, Poller, ProbeDispatcher, Target

log = logging.getLogger("onestop.poller")
STATS_EVERY = 60.0


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


def poller_run(*, shard: int = 0, shards: int = 1, concurrency: int = 256) -> None:
    """Polls this shard's checks until SIGTERM or SIGINT, then finishes the probes running
    and stores their results."""

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
                    dict(stats.by_status),
                )

        log.info(
            "poller started: shard %d of %d, %d probes at a time", shard + 1, shards, concurrency
        )
        reporter = asyncio.create_task(report())
        try:
            await poller.run(stop)
        finally:
            reporter.cancel()
            await dispatcher.close()
        log.info("poller stopped after %d checks", poller.stats.runs)

    with database_thread() as executor:
        asyncio.run(main())
