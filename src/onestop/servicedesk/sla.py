"""The SLA clock of a ticket, computed on a business calendar.

Business time counts from `opened_at`. Time spent in a pausing status is measured in business
seconds and added to the resolution target, so a due time moves by exactly the paused business
time; changing priority or policy recomputes from `opened_at` with the new target and the same
paused time, so the business time already used is kept. Reopening adds the resolved interval to
the paused time, so the resolution clock resumes where it stopped. The first-response clock is
not paused: a provider answers before it waits on anyone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from onestop.contracts.business_time import BusinessCalendar


@dataclass(frozen=True)
class Targets:
    first_response_minutes: int
    resolution_minutes: int
    next_update_minutes: int | None = None


@dataclass(frozen=True)
class Clock:
    """What a ticket's SLA depends on."""

    opened_at: dt.datetime
    paused_seconds: int = 0
    paused_since: dt.datetime | None = None
    first_response_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None


@dataclass(frozen=True)
class DueTimes:
    first_response_due_at: dt.datetime
    resolution_due_at: dt.datetime | None  # None while paused
    provisional: bool


def due_times(calendar: BusinessCalendar, clock: Clock, targets: Targets) -> DueTimes:
    first = calendar.add_minutes(clock.opened_at, targets.first_response_minutes)
    if clock.paused_since is not None:
        return DueTimes(first.at, None, first.provisional)
    resolution = calendar.add_seconds(
        clock.opened_at, targets.resolution_minutes * 60 + clock.paused_seconds
    )
    return DueTimes(first.at, resolution.at, first.provisional or resolution.provisional)


def used_seconds(calendar: BusinessCalendar, clock: Clock, now: dt.datetime) -> int:
    """Business seconds counted against the resolution target up to `now`."""
    end = min(t for t in (now, clock.paused_since, clock.resolved_at) if t is not None)
    return max(0, calendar.seconds_between(clock.opened_at, end) - clock.paused_seconds)


def used_fraction(
    calendar: BusinessCalendar, clock: Clock, targets: Targets, now: dt.datetime
) -> float:
    """Share of the resolution target used so far (1.0 = at breach)."""
    return used_seconds(calendar, clock, now) / (targets.resolution_minutes * 60)
