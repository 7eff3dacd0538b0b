"""Reads of tickets, scoped to the user; customers see only public timeline entries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet

from onestop.core.models import User
from onestop.core.scoping import restrict
from onestop.core.search import apply_search
from onestop.core.selectors import get_visible
from onestop.servicedesk.models import OPEN_STATUSES, Ticket, TicketEntry


def ticket_list(
    *,
    user: User,
    q: str | None = None,
    customer_id: int | None = None,
    status: str | None = None,
    is_open: bool | None = None,
    priority: str | None = None,
    assignee_id: int | None = None,
    team_id: int | None = None,
    unassigned: bool | None = None,
    breached: bool | None = None,
    due_before: dt.datetime | None = None,
) -> QuerySet[Ticket]:
    qs = restrict(Ticket.objects.select_related("customer", "assignee", "team", "requester"), user)
    qs = apply_search(qs, q)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if status:
        qs = qs.filter(status=status)
    if is_open is not None:
        qs = (
            qs.filter(status__in=OPEN_STATUSES) if is_open else qs.exclude(status__in=OPEN_STATUSES)
        )
    if priority:
        qs = qs.filter(priority=priority)
    if assignee_id:
        qs = qs.filter(assignee_id=assignee_id)
    if team_id:
        qs = qs.filter(team_id=team_id)
    if unassigned:
        qs = qs.filter(assignee__isnull=True)
    if breached is not None:
        condition = Q(first_response_breached=True) | Q(resolution_breached=True)
        qs = qs.filter(condition) if breached else qs.exclude(condition)
    if due_before:
        qs = qs.filter(resolution_due_at__lt=due_before)
    return qs


def ticket_get(*, user: User, pk: Any) -> Ticket:
    return get_visible(
        Ticket.objects.select_related(
            "customer",
            "contract",
            "site",
            "requester",
            "assignee",
            "team",
            "sla_policy",
            "calendar",
        ),
        user,
        pk,
    )


def ticket_entries(*, user: User, ticket: Ticket) -> QuerySet[TicketEntry]:
    """The timeline; internal notes and changes stay hidden from customer users."""
    qs = TicketEntry.objects.filter(ticket=ticket).select_related("author", "author_contact")
    if not user.is_provider_staff:
        qs = qs.filter(is_public=True).exclude(kind=TicketEntry.Kind.EVENT)
    return qs
