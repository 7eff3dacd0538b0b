"""The poller's scheduler with probes and a store of the test's own (no network, no database):
intervals, bounded concurrency, a failing probe or store, reloads and sharding."""

from __future__ import annotations

import asyncio
from collections import Counter

from onestop.monitoring.poller import Outcome, Poller, Target, shard_owns
from onestop.monitoring.probes.base import ProbeResult, ProbeStatus


def _target(check_id: int, interval: float = 0.2, probe: str = "fake") -> Target:
    return Target(check_id=check_id, probe=probe, params={}, interval=interval, timeout=1.0)


class Recorder:
    """A probe that takes `delay` seconds and a store that keeps every outcome."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.active = 0
        self.most_active = 0
        self.stored: list[Outcome] = []
        self.store_calls = 0
        self.fail_stores = 0

    async def probe(self, target: Target) -> ProbeResult:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await asyncio.sleep(self.delay)
            if target.probe == "broken":
                raise RuntimeError("bug in a probe")
            return ProbeResult(ProbeStatus.OK, {"fake.value": float(target.check_id)}, "", 0.0)
        finally:
            self.active -= 1

    def store(self, outcomes: list[Outcome]) -> None:
        self.store_calls += 1
        if self.fail_stores:
            self.fail_stores -= 1
            raise ConnectionError("database restarting")
        self.stored.extend(outcomes)


def _run(poller: Poller, seconds: float) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await poller.run(stop)

    asyncio.run(main())


def test_every_target_runs_about_once_per_interval_and_every_outcome_is_stored():
    recorder = Recorder()
    targets = [_target(i) for i in range(1, 51)]
    poller = Poller(
        run_probe=recorder.probe,
        load_targets=lambda: targets,
        store=recorder.store,
        flush_every=0.1,
    )
    _run(poller, 1.0)

    runs = Counter(outcome.target.check_id for outcome in recorder.stored)
    assert set(runs) == set(range(1, 51))
    # 1 s at one run per 0.2 s, from a spread offset inside the first interval (one fewer
    # when a busy machine makes the loop late).
    assert all(3 <= count <= 6 for count in runs.values()), runs
    assert len(recorder.stored) == poller.stats.runs
    assert poller.stats.by_status == {ProbeStatus.OK: poller.stats.runs}


def test_no_more_probes_run_at_once_than_the_concurrency_allows():
    recorder = Recorder(delay=0.05)
    targets = [_target(i, interval=0.1) for i in range(1, 101)]
    poller = Poller(
        run_probe=recorder.probe,
        load_targets=lambda: targets,
        store=recorder.store,
        concurrency=8,
    )
    _run(poller, 0.6)

    assert recorder.most_active == 8
    # 8 slots, 0.05 s a probe: at most 160 a second could run, fewer than the 1,000 wanted.
    assert poller.stats.late > 0
    assert len(recorder.stored) == poller.stats.runs > 0


def test_a_run_still_going_is_not_started_twice():
    recorder = Recorder(delay=0.35)
    poller = Poller(
        run_probe=recorder.probe,
        load_targets=lambda: [_target(1, interval=0.1)],
        store=recorder.store,
    )
    _run(poller, 0.8)

    assert recorder.most_active == 1
    assert poller.stats.overlapping > 0


def test_a_broken_probe_gives_unknown_and_the_others_go_on():
    recorder = Recorder()
    targets = [_target(1, probe="broken"), _target(2)]
    poller = Poller(run_probe=recorder.probe, load_targets=lambda: targets, store=recorder.store)
    _run(poller, 0.5)

    by_check = {outcome.target.check_id: outcome.result for outcome in recorder.stored}
    assert by_check[1].status is ProbeStatus.UNKNOWN
    assert "bug in a probe" in by_check[1].message
    assert by_check[2].status is ProbeStatus.OK


def test_outcomes_are_kept_while_the_store_fails_and_stored_once_it_recovers():
    recorder = Recorder()
    recorder.fail_stores = 3
    poller = Poller(
        run_probe=recorder.probe,
        load_targets=lambda: [_target(1, interval=0.1)],
        store=recorder.store,
        flush_every=0.05,
    )
    _run(poller, 0.6)

    assert poller.stats.store_failures == 3
    assert recorder.store_calls > 3
    assert len(recorder.stored) == poller.stats.runs
    assert poller.stats.dropped == 0


def test_a_reload_adds_and_removes_targets():
    recorder = Recorder()
    loads = 0

    def load() -> list[Target]:
        nonlocal loads
        loads += 1
        return [_target(1 if loads == 1 else 2, interval=0.1)]

    poller = Poller(
        run_probe=recorder.probe, load_targets=load, store=recorder.store, reload_every=0.3
    )
    _run(poller, 0.8)

    times = {
        check_id: [o.at for o in recorder.stored if o.target.check_id == check_id]
        for check_id in (1, 2)
    }
    assert times[1] and times[2]
    assert max(times[1]) < min(times[2]) + 0.15  # check 1 stopped when check 2 came in


def test_shards_split_the_checks_between_them_stably():
    shards = 4
    owners = {
        check_id: [shard for shard in range(shards) if shard_owns(check_id, shard=shard, shards=4)]
        for check_id in range(1, 2001)
    }
    assert all(len(owner) == 1 for owner in owners.values())
    sizes = Counter(owner[0] for owner in owners.values())
    assert all(400 <= size <= 600 for size in sizes.values()), sizes
    again = {c: [s for s in range(4) if shard_owns(c, shard=s, shards=4)] for c in owners}
    assert again == owners
