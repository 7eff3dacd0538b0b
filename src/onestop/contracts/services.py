"""Every write to contracts, SLA policies and business calendars: validated, audited, atomic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import chinese_calendar
import icalendar
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from onestop.contracts.business_time import (
    CalendarError,
    five_by_eight,
    five_by_twelve,
    seven_by_twenty_four,
    validate_segments,
)
from onestop.contracts.models import (
    BusinessCalendar,
    CalendarDay,
    CalendarYear,
    Contract,
    Priority,
    SlaEscalation,
    SlaPolicy,
    SlaTarget,
)
from onestop.core import audit
from onestop.core.models import Customer, ServiceLine, Site, User
from onestop.core.services import object_delete

PRESET_HOURS = {
    BusinessCalendar.Preset.FIVE_BY_EIGHT: five_by_eight,
    BusinessCalendar.Preset.FIVE_BY_TWELVE: five_by_twelve,
    BusinessCalendar.Preset.SEVEN_BY_TWENTY_FOUR: seven_by_twenty_four,
}


def _hours_json(weekly: Iterable[Iterable[Iterable[int]]]) -> list[list[list[int]]]:
    return [[[start, end] for start, end in day] for day in weekly]


def _check_weekly(weekly: Any) -> list[list[list[int]]]:
    try:
        days = list(weekly)
        if len(days) != 7:
            raise CalendarError(_("Weekly hours need seven days, Monday first."))
        checked = [validate_segments(tuple(segment) for segment in day) for day in days]
    except (CalendarError, TypeError, ValueError) as exc:
        raise ValidationError({"weekly_hours": str(exc)}) from None
    if not any(checked):
        raise ValidationError({"weekly_hours": _("A calendar needs some working hours.")})
    return _hours_json(checked)


def _clear_other_defaults(model, obj) -> None:
    if obj.is_default:
        for other in model.objects.filter(is_default=True).exclude(pk=obj.pk):
            before = audit.snapshot(other)
            other.is_default = False
            other.save(update_fields=["is_default"])
            audit.record_updated(actor=None, obj=other, before=before)


# Calendars -----------------------------------------------------------------------------------


@transaction.atomic
def calendar_create(
    *,
    actor: User | None,
    name: str,
    preset: str = BusinessCalendar.Preset.FIVE_BY_EIGHT,
    time_zone: str = "Asia/Shanghai",
    weekly_hours: list | None = None,
    uses_holidays: bool | None = None,
    is_default: bool = False,
) -> BusinessCalendar:
    """Adds a calendar from a preset (5×8, 5×12, 7×24) or custom weekly hours."""
    if preset == BusinessCalendar.Preset.CUSTOM:
        if weekly_hours is None:
            raise ValidationError({"weekly_hours": _("A custom calendar needs weekly hours.")})
        hours = _check_weekly(weekly_hours)
    elif preset in PRESET_HOURS:
        hours = _hours_json(PRESET_HOURS[preset]())
    else:
        raise ValidationError({"preset": _("Unknown preset.")})
    if uses_holidays is None:
        uses_holidays = preset != BusinessCalendar.Preset.SEVEN_BY_TWENTY_FOUR
    calendar = BusinessCalendar(
        name=name.strip(),
        preset=preset,
        time_zone=time_zone,
        weekly_hours=hours,
        uses_holidays=uses_holidays,
        is_default=is_default,
    )
    _clear_other_defaults(BusinessCalendar, calendar)
    calendar.full_clean()
    calendar.save()
    audit.record_created(actor=actor, obj=calendar)
    return calendar


@transaction.atomic
def calendar_update(
    *, actor: User | None, calendar: BusinessCalendar, **fields: Any
) -> BusinessCalendar:
    """Changes name, time zone, weekly hours (making it custom), holidays flag or default."""
    allowed = {"name", "time_zone", "weekly_hours", "uses_holidays", "is_default"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a calendar")
    before = audit.snapshot(calendar)
    if "weekly_hours" in fields:
        fields["weekly_hours"] = _check_weekly(fields["weekly_hours"])
        if fields["weekly_hours"] != calendar.weekly_hours:
            calendar.preset = BusinessCalendar.Preset.CUSTOM
    for name, value in fields.items():
        setattr(calendar, name, value)
    _clear_other_defaults(BusinessCalendar, calendar)
    calendar.full_clean()
    calendar.save()
    audit.record_updated(actor=actor, obj=calendar, before=before)
    return calendar


@transaction.atomic
def calendar_delete(*, actor: User | None, calendar: BusinessCalendar) -> None:
    """Deletes a calendar no contract uses."""
    object_delete(actor=actor, obj=calendar)


@transaction.atomic
def calendar_day_set(
    *,
    actor: User | None,
    calendar: BusinessCalendar,
    date: dt.date,
    kind: str,
    name: str = "",
    hours: list | None = None,
    source: str = CalendarDay.Source.MANUAL,
) -> CalendarDay:
    """Marks one date as a holiday or a working day (replacing what the date had)."""
    if kind not in CalendarDay.Kind.values:
        raise ValidationError({"kind": _("Unknown kind of day.")})
    try:
        segments = validate_segments(tuple(s) for s in (hours or []))
    except (CalendarError, TypeError, ValueError) as exc:
        raise ValidationError({"hours": str(exc)}) from None
    if kind == CalendarDay.Kind.HOLIDAY and segments:
        raise ValidationError({"hours": _("A holiday has no working hours.")})
    day = CalendarDay.objects.filter(calendar=calendar, date=date).first()
    before = audit.snapshot(day) if day else None
    if day is None:
        day = CalendarDay(calendar=calendar, date=date)
    day.kind, day.name, day.hours, day.source = (
        kind,
        name.strip(),
        [list(s) for s in segments],
        source,
    )
    day.full_clean()
    day.save()
    if before is None:
        audit.record_created(actor=actor, obj=day)
    else:
        audit.record_updated(actor=actor, obj=day, before=before)
    return day


@transaction.atomic
def calendar_day_delete(*, actor: User | None, day: CalendarDay) -> None:
    """Returns a date to the calendar's weekly hours."""
    object_delete(actor=actor, obj=day)


def chinese_calendar_years() -> list[int]:
    """The years for which the installed chinesecalendar package knows the official schedule."""
    return sorted({day.year for day in chinese_calendar.constants.holidays})


@transaction.atomic
def calendar_import_chinese(
    *, actor: User | None, calendar: BusinessCalendar, years: Iterable[int]
) -> dict[int, dict[str, int]]:
    """Imports the statutory holidays and make-up workdays (调休) of the given years.

    Manual entries on the same dates are replaced; a year the package does not know is refused.
    """
    wanted = sorted(set(years))
    known = chinese_calendar_years()
    unknown = [year for year in wanted if year not in known]
    if unknown:
        raise ValidationError(
            {
                "years": _(
                    "No official schedule for %(years)s in chinesecalendar %(version)s "
                    "(known: %(known)s). Enter those days by hand or upgrade the package."
                )
                % {
                    "years": ", ".join(map(str, unknown)),
                    "version": chinese_calendar.__version__,
                    "known": f"{known[0]}–{known[-1]}",
                }
            }
        )
    summary: dict[int, dict[str, int]] = {}
    for year in wanted:
        holidays = {
            day: str(chinese_calendar.get_holiday_detail(day)[1] or "")
            for day in chinese_calendar.constants.holidays
            if day.year == year
        }
        workdays = {
            day: str(chinese_calendar.constants.workdays[day] or "")
            for day in chinese_calendar.constants.workdays
            if day.year == year
        }
        existing = {
            d.date: d for d in CalendarDay.objects.filter(calendar=calendar, date__year=year)
        }
        stale = [
            d.pk
            for date, d in existing.items()
            if d.source == CalendarDay.Source.CHINESE_CALENDAR
            and date not in holidays
            and date not in workdays
        ]
        CalendarDay.objects.filter(pk__in=stale).delete()
        rows = [
            CalendarDay(
                calendar=calendar,
                date=date,
                kind=CalendarDay.Kind.HOLIDAY,
                name=name,
                source=CalendarDay.Source.CHINESE_CALENDAR,
            )
            for date, name in holidays.items()
        ] + [
            CalendarDay(
                calendar=calendar,
                date=date,
                kind=CalendarDay.Kind.WORKDAY,
                name=name,
                source=CalendarDay.Source.CHINESE_CALENDAR,
            )
            for date, name in workdays.items()
        ]
        CalendarDay.objects.filter(calendar=calendar, date__in=[r.date for r in rows]).delete()
        CalendarDay.objects.bulk_create(rows)
        CalendarYear.objects.update_or_create(
            calendar=calendar, year=year, defaults={"source": CalendarDay.Source.CHINESE_CALENDAR}
        )
        summary[year] = {"holidays": len(holidays), "workdays": len(workdays)}
    audit.record(
        actor=actor,
        action="update",
        obj=calendar,
        changes={"imported_chinese_years": [None, summary]},
        event="businesscalendar.days_imported",
    )
    return summary


@transaction.atomic
def calendar_import_ical(
    *,
    actor: User | None,
    calendar: BusinessCalendar,
    ics: str | bytes,
    kind: str = CalendarDay.Kind.HOLIDAY,
    mark_years: Iterable[int] = (),
) -> int:
    """Imports the all-day events of an iCal feed as holidays (or working days).

    `mark_years` names the years the feed fully covers, so their due times are not provisional.
    """
    try:
        parsed = icalendar.Calendar.from_ical(ics)
    except ValueError as exc:
        raise ValidationError({"ics": _("Not an iCal file: %(error)s") % {"error": exc}}) from None
    count = 0
    for event in parsed.walk("VEVENT"):
        start = event.decoded("DTSTART", None)
        if start is None:
            continue
        if isinstance(start, dt.datetime):
            start = start.date()
        end = event.decoded("DTEND", None)
        end = end.date() if isinstance(end, dt.datetime) else end
        end = end or start + dt.timedelta(days=1)
        name = str(event.get("SUMMARY", ""))[:100]
        day = start
        while day < end:
            calendar_day_set(
                actor=actor,
                calendar=calendar,
                date=day,
                kind=kind,
                name=name,
                source=CalendarDay.Source.ICAL,
            )
            count += 1
            day += dt.timedelta(days=1)
    for year in mark_years:
        CalendarYear.objects.update_or_create(
            calendar=calendar, year=year, defaults={"source": CalendarDay.Source.ICAL}
        )
    return count


# SLA policies --------------------------------------------------------------------------------


def _check_targets(targets: list[dict[str, Any]]) -> list[SlaTarget]:
    if not targets:
        raise ValidationError(
            {"targets": _("An SLA policy needs at least one priority's targets.")}
        )
    seen: set[str] = set()
    rows = []
    for index, target in enumerate(targets):
        priority = target.get("priority")
        if priority not in Priority.values:
            raise ValidationError({f"targets.{index}.priority": _("Unknown priority.")})
        if priority in seen:
            raise ValidationError({f"targets.{index}.priority": _("Priority given twice.")})
        seen.add(priority)
        first, resolve = target.get("first_response_minutes"), target.get("resolution_minutes")
        if not first or not resolve or first < 1 or resolve < 1:
            raise ValidationError(
                {f"targets.{index}": _("First response and resolution targets are required.")}
            )
        if first > resolve:
            raise ValidationError(
                {f"targets.{index}": _("The first response cannot be due after the resolution.")}
            )
        rows.append(
            SlaTarget(
                priority=priority,
                first_response_minutes=first,
                resolution_minutes=resolve,
                next_update_minutes=target.get("next_update_minutes"),
            )
        )
    return rows


def _check_escalations(escalations: list[dict[str, Any]]) -> list[SlaEscalation]:
    rows = []
    for index, level in enumerate(escalations):
        action, percent = level.get("action"), level.get("percent")
        if action not in SlaEscalation.Action.values:
            raise ValidationError({f"escalations.{index}.action": _("Unknown action.")})
        if not isinstance(percent, int) or not 1 <= percent <= 300:
            raise ValidationError(
                {f"escalations.{index}.percent": _("Between 1 and 300 percent of the target.")}
            )
        team, assignee = level.get("team"), level.get("assignee")
        if action == SlaEscalation.Action.REASSIGN and not (team or assignee):
            raise ValidationError(
                {f"escalations.{index}": _("Reassigning needs a team or a person.")}
            )
        if assignee is not None and not assignee.is_provider_staff:
            raise ValidationError(
                {f"escalations.{index}.assignee": _("Only the provider's staff can be assigned.")}
            )
        rows.append(SlaEscalation(percent=percent, action=action, team=team, assignee=assignee))
    return rows


def _escalations_snapshot(policy: SlaPolicy) -> list[list[Any]]:
    return [[e.percent, e.action, e.team_id, e.assignee_id] for e in policy.escalations.all()]


def _targets_snapshot(policy: SlaPolicy) -> list[list[Any]]:
    return [
        [t.priority, t.first_response_minutes, t.resolution_minutes, t.next_update_minutes]
        for t in policy.targets.order_by("priority")
    ]


@transaction.atomic
def sla_policy_create(
    *,
    actor: User | None,
    name: str,
    targets: list[dict[str, Any]],
    escalations: list[dict[str, Any]] | None = None,
    description: str = "",
    is_default: bool = False,
) -> SlaPolicy:
    """Adds an SLA policy with its targets per priority and its escalation levels."""
    rows = _check_targets(targets)
    levels = _check_escalations(escalations or [])
    policy = SlaPolicy(name=name.strip(), description=description, is_default=is_default)
    _clear_other_defaults(SlaPolicy, policy)
    policy.full_clean()
    policy.save()
    for row in rows:
        row.policy = policy
    SlaTarget.objects.bulk_create(rows)
    for level in levels:
        level.policy = policy
    SlaEscalation.objects.bulk_create(levels)
    changes = audit.created_changes(policy)
    changes["targets"] = [None, _targets_snapshot(policy)]
    if levels:
        changes["escalations"] = [None, _escalations_snapshot(policy)]
    audit.record(
        actor=actor, action="create", obj=policy, changes=changes, event="slapolicy.created"
    )
    return policy


@transaction.atomic
def sla_policy_update(
    *,
    actor: User | None,
    policy: SlaPolicy,
    targets: list[dict[str, Any]] | None = None,
    escalations: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> SlaPolicy:
    """Changes a policy; `targets` and `escalations`, when given, replace what it had."""
    unknown = set(fields) - {"name", "description", "is_default"}
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on an SLA policy")
    before = audit.snapshot(policy)
    before["targets"] = _targets_snapshot(policy)
    before["escalations"] = _escalations_snapshot(policy)
    for name, value in fields.items():
        setattr(policy, name, value)
    _clear_other_defaults(SlaPolicy, policy)
    policy.full_clean()
    policy.save()
    if targets is not None:
        rows = _check_targets(targets)
        policy.targets.all().delete()
        for row in rows:
            row.policy = policy
        SlaTarget.objects.bulk_create(rows)
    if escalations is not None:
        levels = _check_escalations(escalations)
        policy.escalations.all().delete()
        for level in levels:
            level.policy = policy
        SlaEscalation.objects.bulk_create(levels)
    after = audit.snapshot(policy)
    after["targets"] = _targets_snapshot(policy)
    after["escalations"] = _escalations_snapshot(policy)
    changes = audit.diff(before, after)
    if changes:
        audit.record(
            actor=actor, action="update", obj=policy, changes=changes, event="slapolicy.updated"
        )
    return policy


@transaction.atomic
def sla_policy_delete(*, actor: User | None, policy: SlaPolicy) -> None:
    """Deletes a policy no contract uses."""
    object_delete(actor=actor, obj=policy)


# Contracts -----------------------------------------------------------------------------------

CONTRACT_FIELDS = (
    "name",
    "service_lines",
    "status",
    "start_date",
    "end_date",
    "pricing",
    "unit_price",
    "quantity",
    "block_minutes",
    "sla_policy",
    "calendar",
    "onsite_response_hours",
    "renewal_reminder_days",
    "is_customer_default",
    "notes",
)


def _check_contract(contract: Contract, sites: list[Site] | None) -> None:
    lines = list(dict.fromkeys(contract.service_lines or []))
    bad = [line for line in lines if line not in ServiceLine.values]
    if bad:
        raise ValidationError(
            {"service_lines": _("Unknown service line: %(lines)s") % {"lines": ", ".join(bad)}}
        )
    contract.service_lines = lines
    if contract.end_date and contract.start_date and contract.end_date < contract.start_date:
        raise ValidationError({"end_date": _("The contract cannot end before it starts.")})
    if contract.pricing == Contract.Pricing.BLOCK_HOURS and not contract.block_minutes:
        raise ValidationError({"block_minutes": _("A block of hours needs its size.")})
    if sites and any(site.customer_id != contract.customer_id for site in sites):
        raise ValidationError({"sites": _("Covered sites must belong to the contract's customer.")})
    if contract.unit_price is not None and Decimal(contract.unit_price) < 0:
        raise ValidationError({"unit_price": _("The price cannot be negative.")})


def _clear_other_customer_default(contract: Contract) -> None:
    if contract.is_customer_default:
        for other in Contract.objects.filter(
            customer_id=contract.customer_id, is_customer_default=True
        ).exclude(pk=contract.pk):
            before = audit.snapshot(other)
            other.is_customer_default = False
            other.save(update_fields=["is_customer_default"])
            audit.record_updated(actor=None, obj=other, before=before)


@transaction.atomic
def contract_create(
    *,
    actor: User | None,
    customer: Customer,
    number: str,
    name: str,
    start_date: dt.date,
    sites: list[Site] | None = None,
    **fields: Any,
) -> Contract:
    """Adds a contract for a customer."""
    unknown = set(fields) - set(CONTRACT_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a contract")
    contract = Contract(
        customer=customer, number=number.strip().upper(), name=name.strip(), start_date=start_date
    )
    for key, value in fields.items():
        setattr(contract, key, value)
    _check_contract(contract, sites)
    _clear_other_customer_default(contract)
    contract.full_clean()
    contract.save()
    contract.sites.set(sites or [])
    audit.record_created(actor=actor, obj=contract)
    return contract


@transaction.atomic
def contract_update(
    *, actor: User | None, contract: Contract, sites: list[Site] | None = None, **fields: Any
) -> Contract:
    """Changes a contract; `sites`, when given, replaces the covered sites."""
    unknown = set(fields) - set(CONTRACT_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a contract")
    before = audit.snapshot(contract)
    for key, value in fields.items():
        setattr(contract, key, value)
    _check_contract(contract, sites)
    _clear_other_customer_default(contract)
    contract.full_clean()
    contract.save()
    if sites is not None:
        contract.sites.set(sites)
    audit.record_updated(actor=actor, obj=contract, before=before)
    return contract


@transaction.atomic
def contract_delete(*, actor: User | None, contract: Contract) -> None:
    """Deletes a contract (end it instead once tickets refer to it)."""
    object_delete(actor=actor, obj=contract)
