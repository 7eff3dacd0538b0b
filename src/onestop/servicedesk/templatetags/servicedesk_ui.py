"""Template helpers for the service-desk pages: SLA states, short times, timeline events."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.translation import gettext_lazy as _

from onestop.core.permissions import allowed_actions
from onestop.servicedesk import selectors
from onestop.servicedesk.forms import WEEKDAYS
from onestop.servicedesk.models import CannedReply, RecurringTicket, Status

register = template.Library()

SLA_LABELS = {
    selectors.SLA_OK: _("On track"),
    selectors.SLA_AT_RISK: _("At risk"),
    selectors.SLA_BREACHED: _("Breached"),
    selectors.SLA_PAUSED: _("Paused"),
    selectors.SLA_MET: _("Met"),
    selectors.SLA_NONE: _("No SLA"),
}
# services.ticket_set_status writes "status: <old> → <new>" with the stored codes.
STATUS_EVENT = re.compile(r"status: (\w+) → (\w+)")


@register.filter
def sla_label(state: str) -> str:
    return str(SLA_LABELS.get(state, state))


@register.filter
def when(value: dt.datetime | None) -> str:
    """A time in the active (the user's) zone, without the year when it is this year's."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    same_year = local.year == timezone.localtime().year
    return format_date(local, "m-d H:i" if same_year else "Y-m-d H:i")


@register.filter
def event_text(body: str) -> str:
    """A status change of the timeline with the statuses' labels, e.g. "New → Assigned"."""
    match = STATUS_EVENT.fullmatch(body)
    if not match or not all(code in Status.values for code in match.groups()):
        return body
    old, new = (Status(code).label for code in match.groups())
    return f"{old} → {new}"


@register.simple_tag
def recurring_actions(user: Any) -> set[str]:
    """What the user's role may do with schedules (the rows are already in scope)."""
    return allowed_actions(user, RecurringTicket)


@register.filter
def weekday_label(value: int | None) -> str:
    return str(dict(WEEKDAYS).get(value, "—"))


@register.simple_tag
def canned_actions(user: Any) -> set[str]:
    """What the user's role may do with canned replies (the rows are already in scope)."""
    return allowed_actions(user, CannedReply)
