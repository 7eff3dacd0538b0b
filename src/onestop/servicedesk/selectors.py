"""Reads of tickets, scoped to the user; customers see only public timeline entries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from onestop.contracts.business_time import CalendarError
from onestop.contracts.models import BusinessCalendar, SlaTarget
from onestop.contracts.selectors import calendar_engine
from onestop.core.models import ALL_SEEING_ROLES, DomainEvent, Role, Team, User
from onestop.core.scoping import restrict
from onestop.core.search import apply_search
from onestop.core.selectors import get_visible
from onestop.notify.registry import Recipients
from onestop.servicedesk import sla
from onestop.servicedesk.models import (
    OPEN_STATUSES,
    CannedReply,
    InboundMessage,
    KnowledgeArticle,
    Mailbox,
    RecurringTicket,
    SavedTicketView,
    Ticket,
    TicketAttachment,
    TicketEntry,
    TimeEntry,
    Visit,
)
from onestop.servicedesk.services import SLA_WARNING_PERCENT


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
    device_id: int | None = None,
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
    if device_id:
        qs = qs.filter(device_id=device_id)
    return qs


def ticket_get(*, user: User, pk: Any) -> Ticket:
    return get_visible(
        Ticket.objects.select_related(
            "customer",
            "contract",
            "site",
            "device",
            "requester",
            "assignee",
            "team",
            "sla_policy",
            "calendar",
        ).prefetch_related("watchers", "cc_contacts", "related"),
        user,
        pk,
    )


def ticket_entries(*, user: User, ticket: Ticket) -> QuerySet[TicketEntry]:
    """The timeline; internal notes and changes stay hidden from customer users."""
    qs = TicketEntry.objects.filter(ticket=ticket).select_related("author", "author_contact")
    if not user.is_provider_staff:
        qs = qs.filter(is_public=True).exclude(kind=TicketEntry.Kind.EVENT)
    return qs


# Web UI reads --------------------------------------------------------------------------------

# SLA states of a ticket as the desk sees it; "met" and "breached" also describe closed tickets.
SLA_OK, SLA_AT_RISK, SLA_BREACHED, SLA_PAUSED, SLA_MET, SLA_NONE = (
    "ok",
    "at_risk",
    "breached",
    "paused",
    "met",
    "none",
)
# At risk from the share of the resolution target at which the periodic sweep warns.
AT_RISK_FRACTION = SLA_WARNING_PERCENT / 100


def _late(now: dt.datetime) -> Q:
    """Past a due time, whether or not the sweep has flagged it yet."""
    return (
        Q(first_response_breached=True)
        | Q(resolution_breached=True)
        | Q(resolution_due_at__lt=now)
        | Q(first_response_at__isnull=True, first_response_due_at__lt=now)
    )


def ticket_overdue(*, user: User, now: dt.datetime) -> QuerySet[Ticket]:
    """Open tickets past a due time (the dispatcher board's "breached" column)."""
    return ticket_list(user=user, is_open=True).filter(_late(now))


def ticket_running(*, user: User, now: dt.datetime) -> QuerySet[Ticket]:
    """Open tickets whose resolution clock runs and is not yet past due, due soonest first."""
    return (
        ticket_list(user=user, is_open=True)
        .filter(sla_paused_since__isnull=True, resolution_due_at__isnull=False)
        .exclude(_late(now))
        .order_by("resolution_due_at", "id")
    )


def ticket_sla_states(*, tickets: Sequence[Ticket], now: dt.datetime) -> dict[int, str]:
    """Each ticket's SLA state at `now`. "At risk" is business time: the share of the
    resolution target used on the ticket's own calendar (servicedesk.sla.used_fraction).
    Targets and calendars load once per policy and calendar, whatever the number of tickets."""
    running = [
        t
        for t in tickets
        if t.is_open
        and t.sla_paused_since is None
        and t.resolution_due_at is not None
        and t.resolution_due_at >= now
        and t.sla_policy_id
        and t.calendar_id
    ]
    targets = {
        (target.policy_id, target.priority): target.resolution_minutes
        for target in SlaTarget.objects.filter(
            policy_id__in={t.sla_policy_id for t in running}
        ).only("policy_id", "priority", "resolution_minutes")
    }
    calendars = BusinessCalendar.objects.in_bulk({t.calendar_id for t in running})
    engines: dict[int, Any] = {}
    used: dict[int, float] = {}
    for ticket in running:
        minutes = targets.get((ticket.sla_policy_id, ticket.priority))
        if not minutes or ticket.calendar_id not in calendars:
            continue
        if ticket.calendar_id not in engines:
            engines[ticket.calendar_id] = calendar_engine(calendars[ticket.calendar_id])
        clock = sla.Clock(
            opened_at=ticket.opened_at,
            paused_seconds=ticket.sla_paused_seconds,
            first_response_at=ticket.first_response_at,
        )
        try:
            used[ticket.pk] = sla.used_fraction(
                engines[ticket.calendar_id], clock, sla.Targets(0, minutes), now
            )
        except CalendarError:
            continue  # a calendar without working time: shown as on track, not guessed at
    return {ticket.pk: _sla_state(ticket, used.get(ticket.pk), now) for ticket in tickets}


def _sla_state(ticket: Ticket, used: float | None, now: dt.datetime) -> str:
    flagged = ticket.first_response_breached or ticket.resolution_breached
    if not ticket.is_open:
        if flagged:
            return SLA_BREACHED
        return SLA_MET if ticket.sla_policy_id else SLA_NONE
    late = (ticket.resolution_due_at is not None and ticket.resolution_due_at < now) or (
        ticket.first_response_at is None
        and ticket.first_response_due_at is not None
        and ticket.first_response_due_at < now
    )
    if flagged or late:
        return SLA_BREACHED
    if ticket.sla_paused_since is not None:
        return SLA_PAUSED
    if ticket.resolution_due_at is None:
        return SLA_NONE
    return SLA_AT_RISK if used is not None and used >= AT_RISK_FRACTION else SLA_OK


# Time, knowledge base, schedules ---------------------------------------------------------------


def time_entry_list(
    *,
    user: User,
    ticket_id: int | None = None,
    user_id: int | None = None,
    contract_id: int | None = None,
    billable: bool | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> QuerySet[TimeEntry]:
    qs = restrict(TimeEntry.objects.select_related("ticket", "user"), user)
    if ticket_id:
        qs = qs.filter(ticket_id=ticket_id)
    if user_id:
        qs = qs.filter(user_id=user_id)
    if contract_id:
        qs = qs.filter(contract_id=contract_id)
    if billable is not None:
        qs = qs.filter(billable=billable)
    if since:
        qs = qs.filter(date__gte=since)
    if until:
        qs = qs.filter(date__lte=until)
    return qs


def time_entry_get(*, user: User, pk: Any) -> TimeEntry:
    return get_visible(TimeEntry.objects.select_related("ticket", "user"), user, pk)


def visit_list(
    *,
    user: User,
    ticket_id: int | None = None,
    engineer_id: int | None = None,
    state: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Visit]:
    """On-site visits in the user's scope, earliest first."""
    qs = restrict(
        Visit.objects.select_related("ticket__customer", "ticket__site", "engineer"), user
    )
    if ticket_id:
        qs = qs.filter(ticket_id=ticket_id)
    if engineer_id:
        qs = qs.filter(engineer_id=engineer_id)
    if state:
        qs = qs.filter(state=state)
    if since:
        qs = qs.filter(scheduled_at__gte=since)
    if until:
        qs = qs.filter(scheduled_at__lt=until)
    return qs


def visit_get(*, user: User, pk: Any) -> Visit:
    return get_visible(
        Visit.objects.select_related(
            "ticket__customer", "ticket__site", "ticket__requester", "engineer", "time_entry"
        ),
        user,
        pk,
    )


def visit_notification_recipients(event: DomainEvent) -> Recipients | None:
    """Who hears of a visit: the engineer sent and the ticket's assignee."""
    visit = (
        Visit.objects.select_related("engineer", "ticket__assignee", "ticket__customer")
        .filter(pk=event.object_id)
        .first()
    )
    if visit is None:
        return None
    users = [visit.engineer]
    if visit.ticket.assignee_id:
        users.append(visit.ticket.assignee)
    return Recipients(
        users=users,
        subject=f"{visit.number} #{visit.ticket_id} {visit.ticket.title}",
        url=reverse("ticket_visit", args=[visit.pk]),
        team_id=visit.ticket.team_id,
        priority=visit.ticket.priority,
        details=f"{visit.engineer} · {timezone.localtime(visit.scheduled_at):%Y-%m-%d %H:%M}",
    )


def knowledge_article_list(
    *, user: User, q: str | None = None, category: str | None = None
) -> QuerySet[KnowledgeArticle]:
    qs = restrict(KnowledgeArticle.objects.prefetch_related("customers"), user)
    qs = apply_search(qs, q)
    if category:
        qs = qs.filter(category=category)
    return qs


def knowledge_article_get(*, user: User, pk: Any) -> KnowledgeArticle:
    return get_visible(KnowledgeArticle.objects.prefetch_related("customers"), user, pk)


def recurring_ticket_list(
    *, user: User, customer_id: int | None = None
) -> QuerySet[RecurringTicket]:
    qs = restrict(RecurringTicket.objects.select_related("customer", "team", "assignee"), user)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    return qs


def recurring_ticket_get(*, user: User, pk: Any) -> RecurringTicket:
    return get_visible(RecurringTicket.objects.select_related("customer"), user, pk)


def attachment_list(*, user: User, ticket: Ticket) -> QuerySet[TicketAttachment]:
    """A ticket's files; customer users see only the public ones."""
    qs = TicketAttachment.objects.filter(ticket=ticket).select_related("uploaded_by")
    if not user.is_provider_staff:
        qs = qs.filter(is_public=True)
    return qs


def attachment_get(*, user: User, pk: Any) -> TicketAttachment:
    attachment = get_visible(TicketAttachment.objects.select_related("ticket"), user, pk)
    # Scope the ticket as well: a plain customer user sees only their own tickets' files.
    ticket_get(user=user, pk=attachment.ticket_id)
    if not attachment.is_public and not user.is_provider_staff:
        raise Http404
    return attachment


# Canned replies -------------------------------------------------------------------------------


def canned_reply_list(
    *, user: User, q: str | None = None, team_id: int | None = None
) -> QuerySet[CannedReply]:
    """The canned replies the user may use: global ones and those of the user's teams."""
    qs = restrict(CannedReply.objects.select_related("team", "created_by"), user)
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(body__icontains=q))
    if team_id:
        qs = qs.filter(team_id=team_id)
    return qs


def canned_reply_get(*, user: User, pk: Any) -> CannedReply:
    return get_visible(CannedReply.objects.select_related("team"), user, pk)


def ticket_notification_recipients(event: DomainEvent) -> Recipients | None:
    """Who hears of an event about a ticket: its assignee, team and watchers (or, while nobody
    has it, the dispatchers serving its customer); the requester hears of the resolution."""
    ticket = (
        Ticket.objects.select_related("assignee", "requester_user", "customer")
        .filter(pk=event.object_id)
        .first()
    )
    if ticket is None:
        return None
    users: list[User] = list(ticket.watchers.all())
    if ticket.assignee_id:
        users.append(ticket.assignee)
    if ticket.team_id:
        users += list(ticket.team.members.filter(is_active=True))
    if not ticket.assignee_id and not ticket.team_id:
        users += list(
            User.objects.filter(role=Role.DISPATCHER, is_active=True)
            .filter(Q(customers=ticket.customer) | Q(teams__customers=ticket.customer))
            .distinct()
        )
    if event.name == "ticket.resolved" and ticket.requester_user_id:
        users.append(ticket.requester_user)
    return Recipients(
        users=users,
        subject=f"#{ticket.pk} {ticket.title}",
        url=reverse("ticket_detail", args=[ticket.pk]),
        team_id=ticket.team_id,
        priority=ticket.priority,
        details=f"{ticket.customer.name} · {ticket.priority} · {ticket.get_status_display()}",
    )


def canned_reply_team_choices(*, user: User) -> QuerySet[Team]:
    """The teams the user may share a canned reply with: their own (every team for admins and
    managers)."""
    qs = restrict(Team.objects.order_by("name"), user)
    if user.role not in ALL_SEEING_ROLES:
        qs = qs.filter(members=user)
    return qs


# Saved ticket views ---------------------------------------------------------------------------

SAVED_VIEWS_LIMIT = 50


def saved_ticket_view_list(*, user: User) -> QuerySet[SavedTicketView]:
    """The user's own saved queue views and those their team-mates share."""
    return restrict(SavedTicketView.objects.select_related("user"), user)


def saved_ticket_view_get(*, user: User, pk: Any) -> SavedTicketView:
    return get_visible(SavedTicketView.objects.all(), user, pk)


# Automatic assignment per team ----------------------------------------------------------------

ROUTING_TEAMS_LIMIT = 200


def team_routing_list(*, user: User) -> QuerySet[Team]:
    """The teams with their routing (`team.routing`, absent = manual), by name."""
    return restrict(
        Team.objects.select_related("routing", "routing__last_assigned").order_by("name", "pk"),
        user,
    )


# Email to ticket ------------------------------------------------------------------------------


def mailbox_list(*, user: User, q: str | None = None) -> QuerySet[Mailbox]:
    qs = restrict(Mailbox.objects.select_related("team"), user)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(address__icontains=q))
    return qs


def mailbox_get(*, user: User, pk: Any) -> Mailbox:
    return get_visible(Mailbox.objects.select_related("team"), user, pk)


def mailbox_active_ids() -> QuerySet:
    """For the poller, which acts for nobody: every active mailbox."""
    return Mailbox.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)


def mailbox_active(*, pk: int) -> Mailbox | None:
    return Mailbox.objects.select_related("team").filter(pk=pk, is_active=True).first()


def inbound_message_list(
    *,
    user: User,
    outcome: str | None = None,
    mailbox_id: int | None = None,
    q: str | None = None,
) -> QuerySet[InboundMessage]:
    """The received mail the user may see, newest first."""
    qs = restrict(
        InboundMessage.objects.select_related("mailbox", "customer", "ticket", "decided_by"),
        user,
    )
    if outcome:
        qs = qs.filter(outcome=outcome)
    if mailbox_id:
        qs = qs.filter(mailbox_id=mailbox_id)
    if q:
        qs = qs.filter(Q(from_address__icontains=q) | Q(subject__icontains=q))
    return qs


def inbound_message_get(*, user: User, pk: Any) -> InboundMessage:
    return get_visible(
        InboundMessage.objects.select_related("mailbox", "customer", "ticket"), user, pk
    )
