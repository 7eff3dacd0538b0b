"""Business-time arithmetic on a calendar of weekly hours, holidays and make-up workdays (调休).

Everything is computed on UTC instants (epoch seconds) built from the calendar's local hours, so
a day with a DST change has exactly the working time that really elapses. A target that ends
exactly at the end of a segment is due at that end (12:00 before lunch, not 13:00 after it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo

Segment = tuple[int, int]  # minutes after local midnight, end exclusive, 0 <= start < end <= 1440
DaySegments = tuple[Segment, ...]

# A target that needs more than this much calendar time is an error in the calendar (e.g. no
# working hours at all), not a due date.
MAX_HORIZON_DAYS = 3 * 366


class CalendarError(ValueError):
    """The calendar cannot answer: no working time within the horizon, or bad hours."""


def validate_segments(segments: Iterable[Segment]) -> DaySegments:
    """Sorted segments; raises CalendarError on a segment out of range or overlapping another."""
    ordered = tuple(sorted((int(s), int(e)) for s, e in segments))
    previous_end = -1
    for start, end in ordered:
        if not 0 <= start < end <= 1440:
            raise CalendarError(f"segment {start}-{end} is not within one day")
        if start < previous_end:
            raise CalendarError("segments overlap")
        previous_end = end
    return ordered


@dataclass(frozen=True)
class Result:
    """A computed instant, and whether it relies on years without holiday data."""

    at: dt.datetime
    provisional: bool
    years_without_data: tuple[int, ...] = ()


@dataclass
class BusinessCalendar:
    """Weekly working hours in a time zone, with per-date overrides.

    `weekly[0]` is Monday. `overrides` maps a date to its segments: empty for a holiday, the
    working hours for a make-up workday. `data_years` lists the years whose holidays are known;
    a result that depends on another year is provisional. None means the calendar needs no
    holiday data (e.g. 7×24).
    """

    time_zone: str
    weekly: tuple[DaySegments, ...]
    overrides: Mapping[dt.date, DaySegments] = field(default_factory=dict)
    data_years: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise CalendarError("weekly hours need seven days")
        self.weekly = tuple(validate_segments(day) for day in self.weekly)
        self.overrides = {day: validate_segments(segs) for day, segs in self.overrides.items()}
        if not any(self.weekly) and not any(self.overrides.values()):
            raise CalendarError("the calendar has no working hours")
        self._cache: dict[int, tuple[tuple[int, int], ...]] = {}

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def segments_on(self, day: dt.date) -> DaySegments:
        if day in self.overrides:
            return self.overrides[day]
        return self.weekly[day.weekday()]

    def _instant(self, day: dt.date, minute: int) -> int:
        if minute >= 1440:
            day, minute = day + dt.timedelta(days=1), minute - 1440
        local = dt.datetime(
            day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.zone
        )
        return int(local.timestamp())

    def intervals_on(self, ordinal: int) -> tuple[tuple[int, int], ...]:
        """The working intervals of one local date, as UTC epoch seconds."""
        cached = self._cache.get(ordinal)
        if cached is None:
            day = dt.date.fromordinal(ordinal)
            spans = []
            for start, end in self.segments_on(day):
                a, b = self._instant(day, start), self._instant(day, end)
                if b > a:  # a segment swallowed by a DST gap has no working time
                    spans.append((a, b))
            cached = tuple(spans)
            self._cache[ordinal] = cached
        return cached

    def _local_ordinal(self, epoch: int) -> int:
        return dt.datetime.fromtimestamp(epoch, self.zone).date().toordinal()

    def _missing_years(self, first: int, last: int) -> tuple[int, ...]:
        if self.data_years is None:
            return ()
        years = range(dt.date.fromordinal(first).year, dt.date.fromordinal(last).year + 1)
        return tuple(year for year in years if year not in self.data_years)

    def _result(self, epoch: int, first: int, last: int) -> Result:
        missing = self._missing_years(first, last)
        at = dt.datetime.fromtimestamp(epoch, dt.UTC)
        return Result(at=at, provisional=bool(missing), years_without_data=missing)

    def add_seconds(self, start: dt.datetime, seconds: int) -> Result:
        """The earliest instant at which `seconds` of business time have passed since `start`."""
        if seconds < 0:
            raise CalendarError("cannot add negative business time")
        now = int(start.timestamp())
        first = self._local_ordinal(now)
        remaining = seconds
        if remaining == 0:
            return self._result(now, first, first)
        for ordinal in range(first, first + MAX_HORIZON_DAYS):
            for a, b in self.intervals_on(ordinal):
                if b <= now:
                    continue
                begin = a if a > now else now
                available = b - begin
                if remaining <= available:
                    return self._result(begin + remaining, first, ordinal)
                remaining -= available
        raise CalendarError("no working time within the horizon")

    def add_minutes(self, start: dt.datetime, minutes: int) -> Result:
        return self.add_seconds(start, minutes * 60)

    def seconds_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Business seconds in [start, end); zero when end is not after start."""
        a_epoch, b_epoch = int(start.timestamp()), int(end.timestamp())
        if b_epoch <= a_epoch:
            return 0
        total = 0
        last = self._local_ordinal(b_epoch)
        for ordinal in range(self._local_ordinal(a_epoch), last + 1):
            for a, b in self.intervals_on(ordinal):
                lo, hi = max(a, a_epoch), min(b, b_epoch)
                if hi > lo:
                    total += hi - lo
        return total

    def minutes_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Whole business minutes in [start, end)."""
        return self.seconds_between(start, end) // 60

    def is_working(self, instant: dt.datetime) -> bool:
        epoch = int(instant.timestamp())
        ordinal = self._local_ordinal(epoch)
        return any(a <= epoch < b for a, b in self.intervals_on(ordinal))


def five_by_eight() -> tuple[DaySegments, ...]:
    """Monday to Friday, 09:00–12:00 and 13:00–18:00."""
    day = ((9 * 60, 12 * 60), (13 * 60, 18 * 60))
    return (day, day, day, day, day, (), ())


def five_by_twelve() -> tuple[DaySegments, ...]:
    """Monday to Friday, 08:00–20:00."""
    day = ((8 * 60, 20 * 60),)
    return (day, day, day, day, day, (), ())


def seven_by_twenty_four() -> tuple[DaySegments, ...]:
    """Every day, all day; holidays do not apply."""
    return tuple(((0, 1440),) for _ in range(7))
