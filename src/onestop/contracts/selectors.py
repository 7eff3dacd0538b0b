"""Reads of contracts, SLA policies and calendars, scoped to the user."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch, QuerySet

from onestop.contracts.business_time import BusinessCalendar as CalendarEngine
from onestop.contracts.models import (
    BusinessCalendar,
    CalendarDay,
    CalendarYear,
    Contract,
    SlaPolicy,
    SlaTarget,
)
from onestop.core.models import User
from onestop.core.scoping import restrict
from onestop.core.selectors import get_visible


def contract_list(
    *,
    user: User,
    q: str | None = None,
    customer_id: int | None = None,
    status: str | None = None,
    service_line: str | None = None,
    ending_before: dt.date | None = None,
) -> QuerySet[Contract]:
    qs = restrict(
        Contract.objects.select_related("customer", "sla_policy", "calendar"), user
    ).prefetch_related("sites")
    if q:
        qs = qs.filter(name__icontains=q) | qs.filter(number__icontains=q)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if status:
        qs = qs.filter(status=status)
    if service_line:
        qs = qs.filter(service_lines__icontains=f'"{service_line}"')
    if ending_before:
        qs = qs.filter(end_date__lt=ending_before)
    return qs


def contract_get(*, user: User, pk: Any) -> Contract:
    return get_visible(
        Contract.objects.select_related("customer", "sla_policy", "calendar").prefetch_related(
            "sites"
        ),
        user,
        pk,
    )


def contracts_due_for_renewal(*, user: User, today: dt.date) -> list[Contract]:
    """Active contracts whose end date is within their renewal reminder period."""
    qs = contract_list(user=user, status=Contract.Status.ACTIVE).filter(end_date__gte=today)
    return [c for c in qs if (c.end_date - today).days <= c.renewal_reminder_days]


def _policies() -> QuerySet[SlaPolicy]:
    return SlaPolicy.objects.prefetch_related(
        Prefetch("targets", queryset=SlaTarget.objects.order_by("priority")), "escalations"
    )


def sla_policy_list(*, user: User, q: str | None = None) -> QuerySet[SlaPolicy]:
    qs = restrict(_policies(), user)
    if q:
        qs = qs.filter(name__icontains=q)
    return qs


def sla_policy_get(*, user: User, pk: Any) -> SlaPolicy:
    return get_visible(_policies(), user, pk)


def calendar_list(*, user: User, q: str | None = None) -> QuerySet[BusinessCalendar]:
    qs = restrict(BusinessCalendar.objects.prefetch_related("years"), user)
    if q:
        qs = qs.filter(name__icontains=q)
    return qs


def calendar_get(*, user: User, pk: Any) -> BusinessCalendar:
    return get_visible(BusinessCalendar.objects.prefetch_related("years"), user, pk)


def calendar_days(*, calendar: BusinessCalendar, year: int | None = None) -> QuerySet[CalendarDay]:
    qs = CalendarDay.objects.filter(calendar=calendar)
    if year:
        qs = qs.filter(date__year=year)
    return qs


def calendar_engine(calendar: BusinessCalendar) -> CalendarEngine:
    """The arithmetic view of a stored calendar (see contracts.business_time).

    A make-up workday without its own hours gets the hours of the first working weekday.
    """
    weekly = tuple(tuple((s, e) for s, e in day) for day in calendar.weekly_hours)
    standard_day = next((day for day in weekly[:5] if day), next(day for day in weekly if day))
    overrides = {}
    data_years = None
    if calendar.uses_holidays:
        for day in CalendarDay.objects.filter(calendar=calendar).only("date", "kind", "hours"):
            if day.kind == CalendarDay.Kind.HOLIDAY:
                overrides[day.date] = ()
            else:
                overrides[day.date] = tuple(tuple(s) for s in day.hours) or standard_day
        data_years = frozenset(
            CalendarYear.objects.filter(calendar=calendar).values_list("year", flat=True)
        )
    return CalendarEngine(calendar.time_zone, weekly, overrides, data_years)


def calendars_missing_next_year(*, user: User, today: dt.date) -> list[BusinessCalendar]:
    """From 1 November, calendars that have no holiday data for the coming year yet."""
    if today.month < 11:
        return []
    return [
        calendar
        for calendar in calendar_list(user=user).filter(uses_holidays=True)
        if today.year + 1 not in {y.year for y in calendar.years.all()}
    ]
