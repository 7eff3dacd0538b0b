"""Business-time arithmetic: properties that must hold for any instant, and known cases from
the 2026 Chinese holiday schedule (National Day and its make-up workdays)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.contracts.business_time import (
    BusinessCalendar,
    CalendarError,
    five_by_eight,
    seven_by_twenty_four,
)

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def china_2026() -> BusinessCalendar:
    weekly = five_by_eight()
    overrides = {}
    for day in chinese_calendar.constants.holidays:
        if day.year == 2026:
            overrides[day] = ()
    for day in chinese_calendar.constants.workdays:
        if day.year == 2026:
            overrides[day] = weekly[0]
    return BusinessCalendar("Asia/Shanghai", weekly, overrides, frozenset({2026}))


CN = china_2026()


def at(*args, tz=SH) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def test_target_ending_at_lunch_is_due_at_noon():
    due = CN.add_minutes(at(2026, 11, 30, 9, 0), 180)
    assert due.at == at(2026, 11, 30, 12, 0)
    assert not due.provisional


def test_national_day_holidays_are_skipped():
    # Wed 30 Sep 17:00: one hour that day, 1–7 Oct are holidays, three hours on Thu 8 Oct.
    due = CN.add_minutes(at(2026, 9, 30, 17, 0), 240)
    assert due.at == at(2026, 10, 8, 12, 0)


def test_make_up_saturday_counts():
    # Fri 9 Oct 17:00 + 2h: Saturday 10 Oct is a make-up workday (调休).
    due = CN.add_minutes(at(2026, 10, 9, 17, 0), 120)
    assert due.at == at(2026, 10, 10, 10, 0)
    assert CN.minutes_between(at(2026, 10, 9, 17, 0), due.at) == 120


def test_make_up_sunday_before_national_day():
    assert CN.is_working(at(2026, 9, 20, 10, 0))  # Sunday, make-up workday
    assert not CN.is_working(at(2026, 10, 5, 10, 0))  # Monday, holiday
    assert not CN.is_working(at(2026, 11, 29, 10, 0))  # plain Sunday


def test_start_outside_hours_begins_at_next_segment():
    due = CN.add_minutes(at(2026, 11, 27, 19, 30), 30)  # Friday evening
    assert due.at == at(2026, 11, 30, 9, 30)


def test_year_without_data_is_provisional_and_says_which():
    due = CN.add_minutes(at(2026, 12, 31, 17, 0), 240)
    assert due.provisional
    assert due.years_without_data == (2027,)


def test_seven_by_twenty_four_needs_no_data():
    calendar = BusinessCalendar("Asia/Shanghai", seven_by_twenty_four())
    due = calendar.add_minutes(at(2026, 12, 31, 23, 0), 120)
    assert due.at == at(2027, 1, 1, 1, 0)
    assert not due.provisional


def test_dst_day_counts_the_real_elapsed_time():
    # New York springs forward on 8 Mar 2026 at 02:00: a 00:00–06:00 segment lasts 5 hours.
    night = ((0, 6 * 60),)
    calendar = BusinessCalendar("America/New_York", tuple(night for _ in range(7)))
    start = at(2026, 3, 8, 0, 0, tz=NY)
    assert calendar.minutes_between(start, at(2026, 3, 8, 6, 0, tz=NY)) == 300
    assert calendar.add_minutes(start, 300).at == at(2026, 3, 8, 6, 0, tz=NY)
    # ... and on 1 Nov 2026 it falls back: the same segment lasts 7 hours.
    start = at(2026, 11, 1, 0, 0, tz=NY)
    assert calendar.minutes_between(start, at(2026, 11, 1, 6, 0, tz=NY)) == 420


def test_bad_calendars_are_refused():
    with pytest.raises(CalendarError):
        BusinessCalendar("Asia/Shanghai", ((), (), (), (), (), (), ()))
    with pytest.raises(CalendarError, match="overlap"):
        BusinessCalendar("Asia/Shanghai", (((540, 720), (700, 800)),) + ((),) * 6)
    with pytest.raises(CalendarError):
        BusinessCalendar("Asia/Shanghai", (((540, 1500),),) + ((),) * 6)
    with pytest.raises(CalendarError):
        CN.add_minutes(at(2026, 1, 5, 9, 0), -1)


instants = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 20)).map(
    lambda naive: naive.replace(second=0, microsecond=0, tzinfo=SH)
)
minutes = st.integers(min_value=0, max_value=5 * 9 * 60 * 4)


@settings(max_examples=300, deadline=None)
@given(start=instants, target=minutes)
def test_adding_then_measuring_returns_the_same_minutes(start, target):
    due = CN.add_minutes(start, target).at
    assert CN.minutes_between(start, due) == target
    if target:
        # the earliest such instant: one second earlier is not enough
        assert CN.seconds_between(start, due - dt.timedelta(seconds=1)) == target * 60 - 1


@settings(max_examples=200, deadline=None)
@given(start=instants, a=minutes, b=minutes)
def test_adding_is_monotonic_and_additive(start, a, b):
    small, large = sorted((a, b))
    assert CN.add_minutes(start, small).at <= CN.add_minutes(start, large).at
    first = CN.add_minutes(start, a).at
    assert CN.add_minutes(first, b).at == CN.add_minutes(start, a + b).at


@settings(max_examples=200, deadline=None)
@given(start=instants, pause_at=minutes, pause_len=st.integers(0, 3 * 24 * 60), target=minutes)
def test_pauses_subtract_exactly(start, pause_at, pause_len, target):
    pause_start = start + dt.timedelta(minutes=pause_at)
    pause_end = pause_start + dt.timedelta(minutes=pause_len)
    end = pause_end + dt.timedelta(minutes=target)
    whole = CN.seconds_between(start, end)
    paused = CN.seconds_between(pause_start, pause_end)
    assert CN.seconds_between(start, pause_start) + CN.seconds_between(pause_end, end) == (
        whole - paused
    )
