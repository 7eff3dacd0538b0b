"""SLA due-time computation speed on the 2026 Chinese business calendar, one core.

Goal (issue: service desk): ≥ 50,000 tickets per second. Prints the settings and the figures.
Run: .venv/bin/python bench/sla_due_times.py [--tickets N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import time
from zoneinfo import ZoneInfo

import chinese_calendar

from onestop.contracts.business_time import BusinessCalendar, five_by_eight
from onestop.servicedesk import sla

GOAL_PER_SECOND = 50_000


def china_calendar(years: range) -> BusinessCalendar:
    weekly = five_by_eight()
    overrides = {d: () for d in chinese_calendar.constants.holidays if d.year in years}
    overrides |= {d: weekly[0] for d in chinese_calendar.constants.workdays if d.year in years}
    return BusinessCalendar("Asia/Shanghai", weekly, overrides, frozenset(years))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    zone = ZoneInfo("Asia/Shanghai")
    calendar = china_calendar(range(2025, 2027))
    base = dt.datetime(2025, 1, 1, tzinfo=zone)
    targets = [
        sla.Targets(15, 240),
        sla.Targets(30, 480),
        sla.Targets(120, 1440),
        sla.Targets(480, 4800),
    ]
    clocks = [
        sla.Clock(
            opened_at=base + dt.timedelta(minutes=rng.randrange(0, 700 * 24 * 60)),
            paused_seconds=rng.choice([0, 0, 0, 1800, 7200]),
        )
        for _ in range(args.tickets)
    ]
    chosen = [rng.choice(targets) for _ in clocks]

    # Warm the per-day cache as a long-running worker would have it.
    for clock, target in zip(clocks[:2000], chosen[:2000], strict=True):
        sla.due_times(calendar, clock, target)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    for clock, target in zip(clocks, chosen, strict=True):
        sla.due_times(calendar, clock, target)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0

    rate = args.tickets / cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("bench: SLA due times (first response + resolution) per ticket")
    print(f"settings: tickets={args.tickets} calendar=5x8+CN holidays 2025-2026 seed={args.seed}")
    print(f"cpu_seconds={cpu:.3f} wall_seconds={wall:.3f} peak_rss_mb={rss:.0f}")
    print(
        f"tickets_per_cpu_second={rate:,.0f} goal={GOAL_PER_SECOND:,} "
        f"ratio={rate / GOAL_PER_SECOND:.2f}x"
    )


if __name__ == "__main__":
    main()
