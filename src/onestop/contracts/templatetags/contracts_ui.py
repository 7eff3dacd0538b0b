"""Template helpers for the contracts pages: working hours, business durations, renewals."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.translation import ngettext, pgettext

from onestop.contracts.models import Contract, Priority

register = template.Library()


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@register.filter
def segments(day: list[list[int]] | None) -> str:
    """One day's hours, e.g. "09:00–12:00, 13:00–18:00"; a day without hours is closed."""
    if not day:
        return pgettext("weekday without working hours", "closed")
    return ", ".join(f"{clock(start)}–{clock(end)}" for start, end in day)


@register.filter
def weekly_rows(weekly: list[list[list[int]]] | None) -> list[tuple[str, str]]:
    """(weekday, hours) for Monday to Sunday, in the active language."""
    days = list(weekly or [])
    return [(str(WEEKDAYS[n]), segments(days[n] if n < len(days) else [])) for n in range(7)]


@register.filter
def business_time(minutes: int | None) -> str:
    """A duration in business time, e.g. "4 hours 30 minutes"; never in days, whose length
    depends on the calendar."""
    if minutes is None:
        return "—"
    hours, rest = divmod(int(minutes), 60)
    parts = []
    if hours:
        parts.append(ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours})
    if rest or not hours:
        parts.append(ngettext("%(n)d minute", "%(n)d minutes", rest) % {"n": rest})
    return " ".join(parts)


@register.filter
def renewal_due(contract: Contract) -> bool:
    """An active contract whose end date lies within its renewal reminder period (the rule of
    selectors.contracts_due_for_renewal, applied to a row already loaded)."""
    if contract.status != Contract.Status.ACTIVE or contract.end_date is None:
        return False
    days_left = (contract.end_date - timezone.localdate()).days
    return 0 <= days_left <= contract.renewal_reminder_days


@register.simple_tag
def priorities() -> list[tuple[str, str]]:
    return Priority.choices


@register.filter
def targets_by_priority(targets: Any) -> list[tuple[str, Any]]:
    """(priority label, target or None) for P1 to P4, so a missing priority shows as a gap."""
    found = {target.priority: target for target in targets}
    return [(label, found.get(code)) for code, label in Priority.choices]
