"""Every write to tickets: creation with SLA selection, workflow, replies, and the SLA sweep."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import mimetypes
import os
import smtplib
from collections import Counter
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.mail import EmailMessage as DjangoEmailMessage
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from onestop.assets.models import Device
from onestop.contracts.models import (
    BusinessCalendar,
    Contract,
    Priority,
    SlaEscalation,
    SlaPolicy,
)
from onestop.contracts.selectors import calendar_engine
from onestop.core import audit, crypto, scoping
from onestop.core.errors import ConflictError
from onestop.core.models import ALL_SEEING_ROLES, Contact, Customer, Role, Site, Team, User
from onestop.core.search import search_key
from onestop.core.services import contact_create, object_delete
from onestop.core.smtp import smtp_failure
from onestop.servicedesk import sla
from onestop.servicedesk.imap import ImapSession, MailboxError, MailboxSettings
from onestop.servicedesk.mail import Attachment as MailAttachment
from onestop.servicedesk.mail import (
    InboundMail,
    build_reply,
    make_message_id,
    parse_mail,
    ticket_number_in_subject,
)
from onestop.servicedesk.models import (
    OPEN_STATUSES,
    PAUSING_STATUSES,
    PRIORITY_MATRIX,
    SIGNATURE_HEIGHT,
    SIGNATURE_WIDTH,
    TRANSITIONS,
    CannedReply,
    Channel,
    EmailState,
    InboundMessage,
    KnowledgeArticle,
    Mailbox,
    RecurringTicket,
    SavedTicketView,
    Status,
    TeamRouting,
    Ticket,
    TicketAttachment,
    TicketEntry,
    TicketType,
    TimeEntry,
    Visit,
)

SLA_WARNING_PERCENT = 75
logger = logging.getLogger(__name__)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def sla_select(
    *, customer: Customer, contract: Contract | None
) -> tuple[Contract | None, SlaPolicy | None, BusinessCalendar | None]:
    """The ticket's contract, else the customer's default contract; its policy and calendar,
    else the global defaults."""
    if contract is None:
        contract = Contract.objects.filter(customer=customer, is_customer_default=True).first()
    policy = contract.sla_policy if contract and contract.sla_policy_id else None
    calendar = contract.calendar if contract and contract.calendar_id else None
    policy = policy or SlaPolicy.objects.filter(is_default=True).first()
    calendar = calendar or BusinessCalendar.objects.filter(is_default=True).first()
    return contract, policy, calendar


def _targets(ticket: Ticket) -> sla.Targets | None:
    if ticket.sla_policy is None:
        return None
    target = ticket.sla_policy.targets.filter(priority=ticket.priority).first()
    if target is None:
        return None
    return sla.Targets(
        target.first_response_minutes, target.resolution_minutes, target.next_update_minutes
    )


def _clock(ticket: Ticket) -> sla.Clock:
    return sla.Clock(
        opened_at=ticket.opened_at,
        paused_seconds=ticket.sla_paused_seconds,
        paused_since=ticket.sla_paused_since,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
    )


def _engine(ticket: Ticket):
    return calendar_engine(ticket.calendar) if ticket.calendar_id else None


def _recompute_due(ticket: Ticket) -> None:
    """Due times from opened_at, the current target and the paused time (see servicedesk.sla)."""
    targets, engine = _targets(ticket), _engine(ticket)
    if targets is None or engine is None:
        ticket.first_response_due_at = ticket.resolution_due_at = None
        ticket.sla_provisional = False
        return
    due = sla.due_times(engine, _clock(ticket), targets)
    ticket.first_response_due_at = due.first_response_due_at
    ticket.resolution_due_at = due.resolution_due_at
    ticket.sla_provisional = due.provisional


def _search_text(ticket: Ticket) -> str:
    """Title, description and public replies; internal notes stay out of the key, so a
    customer's search can never match text they may not read."""
    replies = TicketEntry.objects.filter(
        ticket=ticket, is_public=True, kind__in=[TicketEntry.Kind.REPLY, TicketEntry.Kind.CALL]
    ).values_list("body", flat=True)
    return search_key(ticket.title, ticket.description, *replies)


def _check_refs(ticket: Ticket) -> None:
    errors = {}
    if ticket.contract_id and ticket.contract.customer_id != ticket.customer_id:
        errors["contract"] = _("The contract belongs to another customer.")
    if ticket.site_id and ticket.site.customer_id != ticket.customer_id:
        errors["site"] = _("The site belongs to another customer.")
    if ticket.device_id and ticket.device.customer_id != ticket.customer_id:
        errors["device"] = _("The device belongs to another customer.")
    if ticket.requester_id and ticket.requester.customer_id != ticket.customer_id:
        errors["requester"] = _("The contact belongs to another customer.")
    if ticket.assignee_id and not ticket.assignee.is_provider_staff:
        errors["assignee"] = _("Only the provider's staff can be assigned.")
    if errors:
        raise ValidationError(errors)


def _entry(
    *,
    ticket: Ticket,
    kind: str,
    body: str,
    at: dt.datetime,
    author: User | None,
    is_public: bool = True,
    author_contact: Contact | None = None,
    message_id: str = "",
) -> TicketEntry:
    return TicketEntry.objects.create(
        ticket=ticket,
        kind=kind,
        body=body,
        created_at=at,
        author=author if author is not None and author.pk else None,
        author_contact=author_contact,
        is_public=is_public,
        message_id=message_id,
    )


@transaction.atomic
def ticket_create(
    *,
    actor: User | None,
    customer: Customer,
    title: str,
    channel: str,
    description: str = "",
    type: str = TicketType.INCIDENT,
    category: str = "",
    impact: int = 2,
    urgency: int = 2,
    priority: str | None = None,
    contract: Contract | None = None,
    site: Site | None = None,
    device: Device | None = None,
    requester: Contact | None = None,
    requester_user: User | None = None,
    team: Team | None = None,
    assignee: User | None = None,
    opened_at: dt.datetime | None = None,
    imported: bool = False,
    mailbox: Mailbox | None = None,
) -> Ticket:
    """Opens a ticket and starts its SLA clock at `opened_at` (now unless imported). A ticket
    from a `mailbox` is answered from that mailbox's address."""
    now = timezone.now()
    if opened_at is not None and opened_at > now + dt.timedelta(minutes=1):
        raise ValidationError({"opened_at": _("A ticket cannot be opened in the future.")})
    contract, policy, calendar = sla_select(customer=customer, contract=contract)
    ticket = Ticket(
        customer=customer,
        contract=contract,
        site=site,
        device=device,
        requester=requester,
        requester_user=requester_user,
        title=title.strip(),
        description=description,
        type=type,
        category=category.strip(),
        channel=channel,
        impact=impact,
        urgency=urgency,
        priority=priority or PRIORITY_MATRIX.get((impact, urgency), Priority.P3),
        team=team,
        assignee=assignee,
        status=Status.ASSIGNED if assignee else Status.NEW,
        opened_at=opened_at or now,
        imported=imported,
        mailbox=mailbox,
        sla_policy=policy,
        calendar=calendar,
    )
    _check_refs(ticket)
    ticket.search_text = search_key(ticket.title, description)
    _recompute_due(ticket)
    ticket.full_clean()
    ticket.save()
    if team is not None and assignee is None:
        # The team's routing may pick the engineer now, so the creation record names them.
        ticket_auto_assign(ticket=ticket)
    audit.record(
        actor=actor,
        action="create",
        obj=ticket,
        changes=audit.created_changes(ticket),
        # Imported history must not page anyone: no domain event, so no notification.
        event=None if imported else "ticket.created",
    )
    return ticket


TICKET_FIELDS = (
    "title",
    "description",
    "type",
    "category",
    "impact",
    "urgency",
    "priority",
    "contract",
    "site",
    "device",
    "requester",
    "team",
    "assignee",
    "parent",
)


@transaction.atomic
def ticket_update(
    *,
    actor: User | None,
    ticket: Ticket,
    watchers: list[User] | None = None,
    cc_contacts: list[Contact] | None = None,
    related: list[Ticket] | None = None,
    **fields: Any,
) -> Ticket:
    """Changes a ticket's fields; `watchers`, `cc_contacts` and `related`, when given, replace
    those sets. A new priority, impact/urgency or contract recomputes the due times from the
    same opened_at and paused time."""
    unknown = set(fields) - set(TICKET_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a ticket")
    if not ticket.is_open:
        raise ConflictError(_("A resolved or closed ticket cannot be edited; reopen it first."))
    before = audit.snapshot(ticket)
    for name, value in fields.items():
        setattr(ticket, name, value)
    if ("impact" in fields or "urgency" in fields) and "priority" not in fields:
        ticket.priority = PRIORITY_MATRIX[(ticket.impact, ticket.urgency)]
    if "contract" in fields:
        ticket.contract, ticket.sla_policy, ticket.calendar = sla_select(
            customer=ticket.customer, contract=ticket.contract
        )
    if ticket.assignee_id and ticket.status == Status.NEW:
        ticket.status = Status.ASSIGNED
    _check_refs(ticket)
    _check_people(ticket, watchers, cc_contacts, related)
    ticket.search_text = _search_text(ticket)
    _recompute_due(ticket)
    ticket.full_clean()
    ticket.save()
    if watchers is not None:
        ticket.watchers.set(watchers)
    if cc_contacts is not None:
        ticket.cc_contacts.set(cc_contacts)
    if related is not None:
        ticket.related.set(related)
    audit.record_updated(actor=actor, obj=ticket, before=before)
    return ticket


def _check_people(
    ticket: Ticket,
    watchers: list[User] | None,
    cc_contacts: list[Contact] | None,
    related: list[Ticket] | None,
) -> None:
    errors = {}
    if watchers and any(not w.is_provider_staff for w in watchers):
        errors["watchers"] = _("Watchers are the provider's staff; copy contacts instead.")
    if cc_contacts and any(c.customer_id != ticket.customer_id for c in cc_contacts):
        errors["cc_contacts"] = _("Contacts in copy must be the customer's own.")
    if related and any(t.pk == ticket.pk for t in related):
        errors["related"] = _("A ticket is not related to itself.")
    if ticket.parent_id:
        ancestor, depth = ticket.parent, 0
        while ancestor is not None and depth < 10:
            if ancestor.pk == ticket.pk:
                errors["parent"] = _("A ticket cannot be its own parent.")
                break
            ancestor, depth = ancestor.parent, depth + 1
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def ticket_set_status(
    *, actor: User | None, ticket: Ticket, status: str, now: dt.datetime | None = None
) -> Ticket:
    """Moves a ticket along the workflow, pausing and resuming its SLA clock."""
    now = _now(now)
    old = ticket.status
    if status == old:
        return ticket
    if status not in TRANSITIONS.get(old, frozenset()):
        raise ValidationError(
            {
                "status": _("A ticket cannot go from “%(old)s” to “%(new)s”.")
                % {"old": Status(old).label, "new": Status(status).label}
                if status in Status.values
                else _("Unknown status.")
            }
        )
    before = audit.snapshot(ticket)
    engine = _engine(ticket)
    if old in PAUSING_STATUSES and ticket.sla_paused_since is not None:
        if engine is not None:
            ticket.sla_paused_seconds += engine.seconds_between(ticket.sla_paused_since, now)
        ticket.sla_paused_since = None
    if status in PAUSING_STATUSES:
        ticket.sla_paused_since = now
    if status == Status.RESOLVED:
        ticket.resolved_at = now
        if engine is not None:
            used = sla.used_seconds(engine, _clock(ticket), now)
            ticket.resolution_minutes = used // 60
        ticket.resolution_breached = bool(
            ticket.resolution_due_at and now > ticket.resolution_due_at
        )
    elif old == Status.RESOLVED and status == Status.IN_PROGRESS:
        # Reopened: the resolved interval counts as paused, so the clock resumes.
        if engine is not None and ticket.resolved_at:
            ticket.sla_paused_seconds += engine.seconds_between(ticket.resolved_at, now)
        ticket.resolved_at = None
        ticket.resolution_minutes = None
    if status == Status.CLOSED:
        ticket.closed_at = now
    ticket.status = status
    _recompute_due(ticket)
    ticket.save()
    _entry(
        ticket=ticket,
        kind=TicketEntry.Kind.EVENT,
        body=f"status: {old} → {status}",
        at=now,
        author=actor,
    )
    audit.record(
        actor=actor,
        action="update",
        obj=ticket,
        changes=audit.diff(before, audit.snapshot(ticket)),
        event=f"ticket.{status}"
        if status in (Status.RESOLVED, Status.CLOSED)
        else "ticket.updated",
    )
    return ticket


@transaction.atomic
def ticket_reply(
    *,
    actor: User | None,
    ticket: Ticket,
    body: str,
    kind: str = TicketEntry.Kind.REPLY,
    is_public: bool = True,
    author_contact: Contact | None = None,
    at: dt.datetime | None = None,
    message_id: str = "",
) -> TicketEntry:
    """Adds a reply, internal note or logged phone call. The first public reply or call by
    staff stops the first-response clock; a customer's reply resumes a ticket waiting for them.
    A public reply by staff is emailed to the requester (`ticket_email_queue`). Without an
    actor but with `author_contact`, the reply is the customer's, by mail (`message_id`)."""
    if ticket.status == Status.CLOSED:
        raise ConflictError(_("The ticket is closed; open a new ticket instead."))
    if not body.strip():
        raise ValidationError({"body": _("The text is empty.")})
    if kind not in TicketEntry.Kind.values or kind == TicketEntry.Kind.EVENT:
        raise ValidationError({"kind": _("Unknown kind of entry.")})
    by_customer = (actor is not None and actor.is_customer_user) or (
        actor is None and author_contact is not None and kind == TicketEntry.Kind.REPLY
    )
    if by_customer and (kind != TicketEntry.Kind.REPLY or not is_public):
        raise ValidationError({"kind": _("Customers can only add public replies.")})
    if kind == TicketEntry.Kind.NOTE:
        is_public = False
    at = _now(at)
    entry = _entry(
        ticket=ticket,
        kind=kind,
        body=body,
        at=at,
        author=actor,
        is_public=is_public,
        author_contact=author_contact,
        message_id=message_id,
    )
    if is_public:
        ticket.search_text = _search_text(ticket)
        Ticket.objects.filter(pk=ticket.pk).update(search_text=ticket.search_text)
    staff = actor is not None and actor.is_provider_staff
    if staff and is_public and ticket.first_response_at is None and not by_customer:
        before = audit.snapshot(ticket)
        ticket.first_response_at = at
        engine = _engine(ticket)
        if engine is not None:
            ticket.first_response_minutes = engine.seconds_between(ticket.opened_at, at) // 60
        ticket.first_response_breached = bool(
            ticket.first_response_due_at and at > ticket.first_response_due_at
        )
        ticket.save()
        audit.record_updated(actor=actor, obj=ticket, before=before)
    audit.record(
        actor=actor,
        action="create",
        obj=entry,
        changes={"kind": [None, kind], "is_public": [None, is_public]},
        event=None
        if not is_public
        else ("ticket.customer_replied" if by_customer else "ticket.replied"),
        object_id=entry.pk,
    )
    if by_customer and ticket.status == Status.WAITING_CUSTOMER:
        ticket_set_status(actor=actor, ticket=ticket, status=Status.IN_PROGRESS, now=at)
    if staff and is_public and kind == TicketEntry.Kind.REPLY:
        ticket_email_queue(entry=entry)
    return entry


# Without escalation levels of its own, a policy warns once at 75 % of the resolution target.
DEFAULT_ESCALATIONS = (SlaEscalation(percent=SLA_WARNING_PERCENT, action="notify"),)
RAISE = {Priority.P4: Priority.P3, Priority.P3: Priority.P2, Priority.P2: Priority.P1}


@transaction.atomic
def sla_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Flags breaches and applies escalation levels; run every minute. Idempotent: each flag
    and each level is applied once, so a sweep repeated or missed changes nothing."""
    now = _now(now)
    counts = {"first_response_breached": 0, "resolution_breached": 0, "escalated": 0}
    open_tickets = Ticket.objects.filter(
        status__in=[s for s in Status.values if s not in (Status.RESOLVED, Status.CLOSED)]
    ).select_related("calendar", "sla_policy")
    for ticket in open_tickets.filter(
        first_response_at__isnull=True,
        first_response_breached=False,
        first_response_due_at__lt=now,
    ):
        _flag_breach(ticket, "first_response_breached")
        counts["first_response_breached"] += 1
    for ticket in open_tickets.filter(
        sla_paused_since__isnull=True, resolution_breached=False, resolution_due_at__lt=now
    ):
        _flag_breach(ticket, "resolution_breached")
        counts["resolution_breached"] += 1
    levels_by_policy: dict[int, tuple[SlaEscalation, ...]] = {}
    engines: dict[int, Any] = {}
    for ticket in open_tickets.filter(
        sla_paused_since__isnull=True, resolution_due_at__isnull=False
    ):
        levels = levels_by_policy.get(ticket.sla_policy_id)
        if levels is None:
            levels = tuple(ticket.sla_policy.escalations.all()) or DEFAULT_ESCALATIONS
            levels_by_policy[ticket.sla_policy_id] = levels
        pending = [level for level in levels if level.percent > ticket.sla_warned_percent]
        if not pending:
            continue
        targets = _targets(ticket)
        engine = engines.get(ticket.calendar_id)
        if engine is None:
            engine = engines[ticket.calendar_id] = _engine(ticket)
        if targets is None or engine is None:
            continue
        used = sla.used_fraction(engine, _clock(ticket), targets, now) * 100
        for level in pending:
            if level.percent <= used:
                _escalate(ticket, level)
                counts["escalated"] += 1
    return counts


def _flag_breach(ticket: Ticket, field: str) -> None:
    before = audit.snapshot(ticket)
    setattr(ticket, field, True)
    ticket.save(update_fields=[field])
    audit.record(
        actor=None,
        action="update",
        obj=ticket,
        changes=audit.diff(before, audit.snapshot(ticket)),
        event="ticket.sla_breached",
    )


def _escalate(ticket: Ticket, level: SlaEscalation) -> None:
    """Applies one escalation level: notify (the event alone), reassign, or raise priority."""
    before = audit.snapshot(ticket)
    ticket.sla_warned_percent = level.percent
    if level.action == SlaEscalation.Action.REASSIGN:
        if level.team_id:
            ticket.team_id = level.team_id
        if level.assignee_id:
            ticket.assignee_id = level.assignee_id
    elif level.action == SlaEscalation.Action.RAISE_PRIORITY and ticket.priority in RAISE:
        ticket.priority = RAISE[ticket.priority]
        _recompute_due(ticket)
    ticket.save()
    changes = audit.diff(before, audit.snapshot(ticket))
    changes["escalation"] = [None, f"{level.percent}% {level.action}"]
    audit.record(
        actor=None,
        action="update",
        obj=ticket,
        changes=changes,
        event="ticket.sla_warning" if level.percent < 100 else "ticket.sla_escalated",
    )
    _entry(
        ticket=ticket,
        kind=TicketEntry.Kind.EVENT,
        body=f"SLA {level.percent}%: {level.action}",
        at=timezone.now(),
        author=None,
        is_public=False,
    )


@transaction.atomic
def ticket_rate(
    *, actor: User, ticket: Ticket, score: int, comment: str = "", now: dt.datetime | None = None
) -> Ticket:
    """Records the customer's satisfaction (1–5 and a comment) once the ticket is resolved."""
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        raise ConflictError(_("The survey opens when the ticket is resolved."))
    if ticket.csat_score is not None:
        raise ConflictError(_("This ticket has already been rated."))
    if not actor.is_customer_user:
        raise ValidationError({"score": _("Only the customer rates a ticket.")})
    if not 1 <= score <= 5:
        raise ValidationError({"score": _("Choose 1 to 5.")})
    before = audit.snapshot(ticket)
    ticket.csat_score, ticket.csat_comment, ticket.csat_at = score, comment.strip(), _now(now)
    ticket.save(update_fields=["csat_score", "csat_comment", "csat_at"])
    audit.record(
        actor=actor,
        action="update",
        obj=ticket,
        changes=audit.diff(before, audit.snapshot(ticket)),
        event="ticket.csat_received",
    )
    return ticket


@transaction.atomic
def ticket_delete(*, actor: User | None, ticket: Ticket) -> None:
    """Deletes a ticket and its timeline (for mistakes and spam; close real work instead)."""
    object_delete(actor=actor, obj=ticket)


# Time entries ---------------------------------------------------------------------------------


def block_minutes_used(contract: Contract) -> int:
    """Billable minutes already charged to a block-of-hours contract."""
    return (
        TimeEntry.objects.filter(contract=contract, billable=True).aggregate(total=Sum("minutes"))[
            "total"
        ]
        or 0
    )


@transaction.atomic
def time_entry_create(
    *,
    actor: User,
    ticket: Ticket,
    minutes: int,
    date: dt.date | None = None,
    kind: str = TimeEntry.Kind.REMOTE,
    billable: bool = True,
    note: str = "",
    user: User | None = None,
) -> TimeEntry:
    """Logs work time; billable time under a block of hours is refused beyond its balance."""
    worker = user or actor
    if not worker.is_provider_staff:
        raise ValidationError({"user": _("Only the provider's staff log work time.")})
    if minutes < 1 or minutes > 24 * 60:
        raise ValidationError({"minutes": _("Between 1 minute and 24 hours per entry.")})
    contract = ticket.contract
    charged = contract if contract and contract.pricing == Contract.Pricing.BLOCK_HOURS else None
    if charged is not None and billable:
        # Lock the contract row so two engineers cannot both spend the last hour.
        charged = Contract.objects.select_for_update().get(pk=charged.pk)
        left = (charged.block_minutes or 0) - block_minutes_used(charged)
        if minutes > left:
            raise ValidationError(
                {
                    "minutes": _(
                        "This would overdraw the block of hours of %(contract)s: "
                        "%(left)s minutes left."
                    )
                    % {"contract": charged.number, "left": max(left, 0)}
                }
            )
    entry = TimeEntry(
        ticket=ticket,
        user=worker,
        date=date or timezone.localdate(),
        minutes=minutes,
        kind=kind,
        billable=billable,
        note=note.strip(),
        contract=charged,
    )
    entry.full_clean()
    entry.save()
    audit.record_created(actor=actor, obj=entry)
    return entry


@transaction.atomic
def time_entry_delete(*, actor: User, entry: TimeEntry) -> None:
    """Removes a time entry; its minutes return to the block of hours."""
    object_delete(actor=actor, obj=entry)


# Knowledge base -------------------------------------------------------------------------------

ARTICLE_FIELDS = ("title", "body", "category", "visibility", "is_published")


def _check_article(article: KnowledgeArticle, customers: list[Customer] | None) -> None:
    if article.visibility == KnowledgeArticle.Visibility.SELECTED and customers == []:
        raise ValidationError({"customers": _("Choose the customers who may read it.")})
    article.search_text = search_key(article.title, article.category, article.body)


@transaction.atomic
def knowledge_article_create(
    *,
    actor: User,
    title: str,
    body: str,
    category: str = "",
    visibility: str = KnowledgeArticle.Visibility.INTERNAL,
    is_published: bool = False,
    customers: list[Customer] | None = None,
) -> KnowledgeArticle:
    """Writes a knowledge-base article."""
    article = KnowledgeArticle(
        title=title.strip(),
        body=body,
        category=category.strip(),
        visibility=visibility,
        is_published=is_published,
        author=actor,
    )
    _check_article(article, customers or [])
    article.full_clean()
    article.save()
    article.customers.set(customers or [])
    audit.record_created(actor=actor, obj=article)
    return article


@transaction.atomic
def knowledge_article_update(
    *,
    actor: User,
    article: KnowledgeArticle,
    customers: list[Customer] | None = None,
    **fields: Any,
) -> KnowledgeArticle:
    """Changes an article; `customers`, when given, replaces who may read a selected one."""
    unknown = set(fields) - set(ARTICLE_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on an article")
    before = audit.snapshot(article)
    for name, value in fields.items():
        setattr(article, name, value)
    current = list(article.customers.all()) if customers is None else customers
    _check_article(article, current)
    article.full_clean()
    article.save()
    if customers is not None:
        article.customers.set(customers)
    audit.record_updated(actor=actor, obj=article, before=before)
    return article


@transaction.atomic
def knowledge_article_delete(*, actor: User, article: KnowledgeArticle) -> None:
    """Deletes an article."""
    object_delete(actor=actor, obj=article)


# Recurring tickets ----------------------------------------------------------------------------

RECURRING_FIELDS = (
    "title",
    "description",
    "type",
    "priority",
    "team",
    "assignee",
    "frequency",
    "weekday",
    "day_of_month",
    "time_of_day",
    "is_active",
)


def next_occurrence(recurring: RecurringTicket, after: dt.datetime) -> dt.datetime:
    """The first scheduled instant strictly after `after`, in the server's time zone."""
    zone = timezone.get_default_timezone()
    local = after.astimezone(zone)
    day = local.date()
    for _step in range(400):
        candidate = dt.datetime.combine(day, recurring.time_of_day, tzinfo=zone)
        matches = (
            recurring.frequency == RecurringTicket.Frequency.DAILY
            or (
                recurring.frequency == RecurringTicket.Frequency.WEEKLY
                and day.weekday() == recurring.weekday
            )
            or (
                recurring.frequency == RecurringTicket.Frequency.MONTHLY
                and day.day == min(recurring.day_of_month or 1, _month_length(day))
            )
        )
        if matches and candidate > after:
            return candidate
        day += dt.timedelta(days=1)
    raise ValidationError({"frequency": _("The schedule never fires.")})


def _month_length(day: dt.date) -> int:
    following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (following - dt.timedelta(days=1)).day


def _check_recurring(recurring: RecurringTicket) -> None:
    if recurring.frequency == RecurringTicket.Frequency.WEEKLY and not (
        recurring.weekday is not None and 0 <= recurring.weekday <= 6
    ):
        raise ValidationError({"weekday": _("Choose a weekday (0 = Monday … 6 = Sunday).")})
    if recurring.frequency == RecurringTicket.Frequency.MONTHLY and not (
        recurring.day_of_month and 1 <= recurring.day_of_month <= 31
    ):
        raise ValidationError({"day_of_month": _("Choose a day of the month, 1 to 31.")})
    if recurring.assignee_id and not recurring.assignee.is_provider_staff:
        raise ValidationError({"assignee": _("Only the provider's staff can be assigned.")})


@transaction.atomic
def recurring_ticket_create(
    *, actor: User | None, customer: Customer, title: str, frequency: str, **fields: Any
) -> RecurringTicket:
    """Schedules a ticket to be opened regularly for a customer."""
    unknown = set(fields) - set(RECURRING_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a recurring ticket")
    recurring = RecurringTicket(customer=customer, title=title.strip(), frequency=frequency)
    for name, value in fields.items():
        setattr(recurring, name, value)
    recurring.priority = recurring.priority or Priority.P3
    _check_recurring(recurring)
    recurring.next_run_at = next_occurrence(recurring, timezone.now())
    recurring.full_clean()
    recurring.save()
    audit.record_created(actor=actor, obj=recurring)
    return recurring


@transaction.atomic
def recurring_ticket_update(
    *, actor: User | None, recurring: RecurringTicket, **fields: Any
) -> RecurringTicket:
    """Changes a schedule; the next run is recomputed from now."""
    unknown = set(fields) - set(RECURRING_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a recurring ticket")
    before = audit.snapshot(recurring)
    for name, value in fields.items():
        setattr(recurring, name, value)
    _check_recurring(recurring)
    recurring.next_run_at = next_occurrence(recurring, timezone.now())
    recurring.full_clean()
    recurring.save()
    audit.record_updated(actor=actor, obj=recurring, before=before)
    return recurring


@transaction.atomic
def recurring_ticket_delete(*, actor: User | None, recurring: RecurringTicket) -> None:
    """Stops and removes a schedule; tickets it opened stay."""
    object_delete(actor=actor, obj=recurring)


def recurring_tickets_run(*, now: dt.datetime | None = None) -> int:
    """Opens the tickets whose time has come; run every minute.

    After an outage only one ticket is opened per schedule (not one per missed run), and the
    next run moves past now, so nothing is opened twice.
    """
    now = _now(now)
    opened = 0
    for recurring_id in RecurringTicket.objects.filter(
        is_active=True, next_run_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            recurring = (
                RecurringTicket.objects.select_for_update()
                .select_related("customer")
                .filter(pk=recurring_id, is_active=True, next_run_at__lte=now)
                .first()
            )
            if recurring is None:
                continue
            ticket = ticket_create(
                actor=None,
                customer=recurring.customer,
                title=recurring.title,
                description=recurring.description,
                type=recurring.type,
                priority=recurring.priority,
                channel=Channel.SCHEDULE,
                team=recurring.team,
                assignee=recurring.assignee,
            )
            recurring.last_ticket = ticket
            recurring.next_run_at = next_occurrence(recurring, now)
            recurring.save(update_fields=["last_ticket", "next_run_at"])
            opened += 1
    return opened


# Merge and attachments ------------------------------------------------------------------------


@transaction.atomic
def ticket_merge(*, actor: User, source: Ticket, target: Ticket) -> Ticket:
    """Merges a duplicate into another ticket of the same customer: its timeline, files,
    watchers and copies move over, and the duplicate is closed pointing at the target."""
    if source.pk == target.pk:
        raise ValidationError({"target": _("A ticket cannot be merged into itself.")})
    if source.customer_id != target.customer_id:
        raise ValidationError({"target": _("Only tickets of the same customer can be merged.")})
    if source.status == Status.CLOSED or target.status == Status.CLOSED:
        raise ConflictError(_("Closed tickets cannot be merged."))
    before = audit.snapshot(source)
    source.entries.update(ticket=target)
    source.attachments.update(ticket=target)
    target.watchers.add(*source.watchers.all())
    target.cc_contacts.add(*source.cc_contacts.all())
    now = timezone.now()
    _entry(
        ticket=target,
        kind=TicketEntry.Kind.EVENT,
        body=f"merged #{source.pk}",
        at=now,
        author=actor,
        is_public=False,
    )
    source.merged_into = target
    source.status = Status.CLOSED
    source.closed_at = now
    source.sla_paused_since = None
    source.save()
    _entry(
        ticket=source,
        kind=TicketEntry.Kind.EVENT,
        body=f"merged into #{target.pk}",
        at=now,
        author=actor,
        is_public=True,
    )
    audit.record(
        actor=actor,
        action="update",
        obj=source,
        changes=audit.diff(before, audit.snapshot(source)),
        event="ticket.merged",
    )
    return target


ALLOWED_EXTENSIONS = frozenset(
    {
        "png", "jpg", "jpeg", "gif", "webp", "bmp", "heic",
        "pdf", "txt", "log", "csv", "json", "xml", "md",
        "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "wps", "et",
        "zip", "7z", "rar", "gz", "tar",
        "eml", "msg", "mp4", "mov", "m4a", "mp3", "wav", "pcap", "pcapng", "cfg", "conf",
    }
)  # fmt: skip


@transaction.atomic
def ticket_attach(
    *,
    actor: User | None,
    ticket: Ticket,
    upload: Any,
    entry: TicketEntry | None = None,
    is_public: bool = True,
) -> TicketAttachment:
    """Stores a file on a ticket, within the size limit and the allowed types."""
    if ticket.status == Status.CLOSED:
        raise ConflictError(_("The ticket is closed; open a new ticket instead."))
    name = os.path.basename(str(upload.name or "")).strip()[:255]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    limit = settings.ONESTOP_ATTACHMENT_MAX_BYTES
    if not name:
        raise ValidationError({"file": _("The file has no name.")})
    if extension not in ALLOWED_EXTENSIONS:
        raise ValidationError(
            {"file": _("Files of type “.%(ext)s” are not accepted.") % {"ext": extension or "?"}}
        )
    if upload.size > limit:
        raise ValidationError(
            {"file": _("The file is larger than %(mb)s MB.") % {"mb": limit // (1024 * 1024)}}
        )
    if actor is not None and actor.is_customer_user:
        is_public = True
    if entry is not None and entry.ticket_id != ticket.pk:
        raise ValidationError({"entry": _("The entry belongs to another ticket.")})
    attachment = TicketAttachment(
        ticket=ticket,
        entry=entry,
        name=name,
        size=upload.size,
        content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        is_public=is_public,
        uploaded_by=actor,
    )
    attachment.file.save(name, upload, save=False)
    # The file is on disk before the row: if saving the row fails, remove the file again so
    # nothing is left that no row points to.
    stored = attachment.file.name
    try:
        attachment.save()
        audit.record_created(actor=actor, obj=attachment)
    except Exception:
        attachment.file.storage.delete(stored)
        raise
    return attachment


# Canned replies -------------------------------------------------------------------------------

CANNED_REPLY_FIELDS = ("title", "body", "team")


def _check_canned_team(reply: CannedReply, actor: User | None) -> None:
    # Sharing with a team one is not in would show the text to strangers and hide it from oneself.
    if reply.team is None or actor is None or actor.role in ALL_SEEING_ROLES:
        return
    if not reply.team.members.filter(pk=actor.pk).exists():
        raise ValidationError({"team": _("Choose one of your own teams, or none.")})


@transaction.atomic
def canned_reply_create(
    *, actor: User | None, title: str, body: str, team: Team | None = None
) -> CannedReply:
    """Writes a canned reply, global or shared with one of the author's teams."""
    reply = CannedReply(title=title.strip(), body=body, team=team, created_by=actor)
    _check_canned_team(reply, actor)
    reply.full_clean()
    reply.save()
    audit.record_created(actor=actor, obj=reply)
    return reply


@transaction.atomic
def canned_reply_update(*, actor: User | None, reply: CannedReply, **fields: Any) -> CannedReply:
    """Changes a canned reply's title, text or team."""
    unknown = set(fields) - set(CANNED_REPLY_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a canned reply")
    before = audit.snapshot(reply)
    for name, value in fields.items():
        setattr(reply, name, value.strip() if name == "title" else value)
    if "team" in fields:
        _check_canned_team(reply, actor)
    reply.full_clean()
    reply.save()
    audit.record_updated(actor=actor, obj=reply, before=before)
    return reply


@transaction.atomic
def canned_reply_delete(*, actor: User | None, reply: CannedReply) -> None:
    """Deletes a canned reply."""
    object_delete(actor=actor, obj=reply)


# Saved ticket views ---------------------------------------------------------------------------


@transaction.atomic
def saved_ticket_view_create(
    *, actor: User, name: str, query: str, is_shared: bool = False
) -> SavedTicketView:
    """Saves the queue's current filters under a name, for the actor (and their teams)."""
    view = SavedTicketView(user=actor, name=name.strip(), query=query, is_shared=is_shared)
    view.full_clean()
    view.save()
    audit.record_created(actor=actor, obj=view)
    return view


@transaction.atomic
def saved_ticket_view_delete(*, actor: User, view: SavedTicketView) -> None:
    """Deletes one of the actor's own saved views; a team-mate's shared view is not theirs."""
    if view.user_id != actor.pk:
        raise PermissionDenied(_("Only its owner may delete a saved view."))
    object_delete(actor=actor, obj=view)


# Automatic assignment per team ----------------------------------------------------------------


def routing_candidates(team: Team):
    """The team's active engineers, in the stable order round robin walks."""
    return team.members.filter(is_active=True, role=Role.ENGINEER).order_by("pk")


@transaction.atomic
def ticket_auto_assign(*, ticket: Ticket) -> User | None:
    """Assigns a new unassigned ticket by its team's routing; None when the team routes by
    hand or has no active engineer. The caller records the ticket's audit."""
    if ticket.team_id is None or ticket.assignee_id is not None:
        return None
    routing = TeamRouting.objects.select_for_update().filter(team_id=ticket.team_id).first()
    if routing is None or routing.mode == TeamRouting.Mode.MANUAL:
        return None
    candidates = routing_candidates(ticket.team)
    if routing.mode == TeamRouting.Mode.ROUND_ROBIN:
        after = routing.last_assigned_id or 0
        engineer = candidates.filter(pk__gt=after).first() or candidates.first()
    else:
        engineer = (
            candidates.annotate(
                open_count=Count(
                    "assigned_tickets",
                    filter=Q(assigned_tickets__status__in=OPEN_STATUSES)
                    & ~Q(assigned_tickets__pk=ticket.pk),
                )
            )
            .order_by("open_count", "pk")
            .first()
        )
    if engineer is None:
        return None
    ticket.assignee = engineer
    if ticket.status == Status.NEW:
        ticket.status = Status.ASSIGNED
    ticket.save(update_fields=["assignee", "status"])
    routing.last_assigned = engineer
    routing.save(update_fields=["last_assigned"])
    return engineer


@transaction.atomic
def team_routing_set(*, actor: User | None, team: Team, mode: str) -> TeamRouting:
    """Sets how the team's new tickets are assigned."""
    routing, created = TeamRouting.objects.select_for_update().get_or_create(team=team)
    before = audit.snapshot(routing)
    routing.mode = mode
    routing.full_clean()
    routing.save()
    if created:
        audit.record_created(actor=actor, obj=routing)
    else:
        audit.record_updated(actor=actor, obj=routing, before=before)
    return routing


# On-site visits (派工单) ------------------------------------------------------------------------

MAX_SIGNATURE_POINTS = 4000
# A visit may be recorded after the fact (a morning visit entered at noon) but not invented
# for last month, and not booked beyond a year.
VISIT_PAST_LIMIT = dt.timedelta(days=7)
VISIT_FUTURE_LIMIT = dt.timedelta(days=366)
# Staff who may act on any engineer's visit; an engineer acts on their own.
VISIT_COORDINATORS = frozenset({Role.ADMIN, Role.MANAGER, Role.DISPATCHER})


def signature_clean(strokes: Any) -> list[list[list[float]]]:
    """The drawn strokes, each a list of [x, y] points inside the signature canvas, rounded to
    a tenth of a pixel; anything else is refused, so only lines can ever be drawn back."""
    error = ValidationError({"signature": _("The customer has not signed yet.")})
    if not isinstance(strokes, list) or not strokes:
        raise error
    cleaned: list[list[list[float]]] = []
    total = 0
    for stroke in strokes:
        if not isinstance(stroke, list) or not stroke:
            raise error
        points = []
        for point in stroke:
            if (
                not isinstance(point, list | tuple)
                or len(point) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
                or not (0 <= point[0] <= SIGNATURE_WIDTH and 0 <= point[1] <= SIGNATURE_HEIGHT)
            ):
                raise ValidationError(
                    {"signature": _("The signature holds something other than drawn lines.")}
                )
            points.append([round(float(point[0]), 1), round(float(point[1]), 1)])
        total += len(points)
        cleaned.append(points)
    if total > MAX_SIGNATURE_POINTS:
        raise ValidationError(
            {"signature": _("The signature is too long; clear it and sign again.")}
        )
    if total < 2:
        raise error
    return cleaned


def _check_visit_actor(actor: User, visit: Visit) -> None:
    if actor.pk != visit.engineer_id and actor.role not in VISIT_COORDINATORS:
        raise PermissionDenied(_("Only the engineer of this visit or a dispatcher may do this."))


def _check_visit(visit: Visit, now: dt.datetime) -> None:
    errors = {}
    engineer = visit.engineer
    if not engineer.is_provider_staff or not engineer.is_active:
        errors["engineer"] = _("Only an active member of the provider's staff can go on site.")
    elif not scoping.is_visible(engineer, visit.ticket):
        errors["engineer"] = _("%(name)s does not serve this customer.") % {"name": engineer}
    if visit.scheduled_at < now - VISIT_PAST_LIMIT:
        errors["scheduled_at"] = _("A visit can be recorded up to 7 days after it took place.")
    elif visit.scheduled_at > now + VISIT_FUTURE_LIMIT:
        errors["scheduled_at"] = _("A visit can be booked up to a year ahead.")
    if errors:
        raise ValidationError(errors)
    visit.full_clean(exclude=["ticket", "engineer", "time_entry"])


def _record_visit(actor: User, visit: Visit, before: audit.Snapshot, event: str) -> None:
    """The audit record of a visit's change, under the event name notifications listen to."""
    audit.record(
        actor=actor,
        action="update",
        obj=visit,
        changes=audit.diff(before, audit.snapshot(visit)),
        event=event,
    )


def _visit_event(visit: Visit, text: str, actor: User | None, at: dt.datetime) -> None:
    _entry(ticket=visit.ticket, kind=TicketEntry.Kind.EVENT, body=text, at=at, author=actor)


@transaction.atomic
def visit_schedule(
    *,
    actor: User,
    ticket: Ticket,
    engineer: User,
    scheduled_at: dt.datetime,
    planned_minutes: int = 120,
    instructions: str = "",
    now: dt.datetime | None = None,
) -> Visit:
    """Dispatches an engineer on site. The ticket waits in "visit scheduled" (its SLA clock
    paused) and, if nobody has it yet, goes to that engineer."""
    now = _now(now)
    if not ticket.is_open:
        raise ConflictError(_("A resolved or closed ticket gets no visit; reopen it first."))
    visit = Visit(
        ticket=ticket,
        engineer=engineer,
        scheduled_at=scheduled_at,
        planned_minutes=planned_minutes,
        instructions=instructions.strip(),
    )
    _check_visit(visit, now)
    visit.save()
    audit.record_created(actor=actor, obj=visit)
    _visit_event(
        visit,
        f"visit {visit.number} scheduled: {engineer}, {scheduled_at:%Y-%m-%d %H:%M}",
        actor,
        now,
    )
    if not ticket.assignee_id:
        ticket_update(actor=actor, ticket=ticket, assignee=engineer)
    if Status.VISIT_SCHEDULED in TRANSITIONS.get(ticket.status, frozenset()):
        ticket_set_status(actor=actor, ticket=ticket, status=Status.VISIT_SCHEDULED, now=now)
    return visit


@transaction.atomic
def visit_update(
    *,
    actor: User,
    visit: Visit,
    engineer: User | None = None,
    scheduled_at: dt.datetime | None = None,
    planned_minutes: int | None = None,
    instructions: str | None = None,
    now: dt.datetime | None = None,
) -> Visit:
    """Moves a scheduled visit to another time or engineer."""
    now = _now(now)
    if visit.state != Visit.State.SCHEDULED:
        raise ConflictError(_("Only a visit that has not started can be changed."))
    _check_visit_actor(actor, visit)
    before = audit.snapshot(visit)
    if engineer is not None:
        visit.engineer = engineer
    if scheduled_at is not None:
        visit.scheduled_at = scheduled_at
    if planned_minutes is not None:
        visit.planned_minutes = planned_minutes
    if instructions is not None:
        visit.instructions = instructions.strip()
    _check_visit(visit, now)
    visit.save()
    _record_visit(actor, visit, before, "visit.rescheduled")
    return visit


@transaction.atomic
def visit_check_in(*, actor: User, visit: Visit, now: dt.datetime | None = None) -> Visit:
    """The engineer is on site: the visit starts and the ticket's clock runs again."""
    now = _now(now)
    _check_visit_actor(actor, visit)
    if visit.state != Visit.State.SCHEDULED:
        raise ConflictError(_("This visit has already started, ended or been cancelled."))
    before = audit.snapshot(visit)
    visit.state = Visit.State.ON_SITE
    visit.arrived_at = now
    visit.save()
    _record_visit(actor, visit, before, "visit.updated")
    _visit_event(visit, f"visit {visit.number}: engineer on site", actor, now)
    ticket = visit.ticket
    if ticket.status == Status.VISIT_SCHEDULED:
        ticket_set_status(actor=actor, ticket=ticket, status=Status.IN_PROGRESS, now=now)
    return visit


@transaction.atomic
def visit_sign_off(
    *,
    actor: User,
    visit: Visit,
    work_done: str,
    signer_name: str,
    signature: Any,
    signer_comment: str = "",
    billable: bool = True,
    now: dt.datetime | None = None,
) -> Visit:
    """Closes the work order with the customer's signature and logs the time on site as an
    on-site time entry (drawn from a block of hours like any other billable time)."""
    now = _now(now)
    _check_visit_actor(actor, visit)
    if visit.state != Visit.State.ON_SITE:
        raise ConflictError(_("Only a visit in progress can be signed off; check in first."))
    errors = {}
    if not work_done.strip():
        errors["work_done"] = _("Describe the work done: the customer signs for it.")
    if not signer_name.strip():
        errors["signer_name"] = _("Who signs for the customer?")
    try:
        strokes = signature_clean(signature)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    before = audit.snapshot(visit)
    assert visit.arrived_at is not None  # set by the check-in, which ON_SITE implies
    minutes = max(1, -(-int((now - visit.arrived_at).total_seconds()) // 60))
    visit.time_entry = time_entry_create(
        actor=actor,
        user=visit.engineer,
        ticket=visit.ticket,
        minutes=minutes,
        date=timezone.localdate(visit.arrived_at),
        kind=TimeEntry.Kind.ONSITE,
        billable=billable,
        note=visit.number,
    )
    visit.state = Visit.State.COMPLETED
    visit.departed_at = now
    visit.work_done = work_done.strip()
    visit.signer_name = signer_name.strip()
    visit.signer_comment = signer_comment.strip()
    visit.signature = strokes
    visit.signed_at = now
    visit.full_clean(exclude=["ticket", "engineer", "time_entry"])
    visit.save()
    _record_visit(actor, visit, before, "visit.completed")
    _visit_event(
        visit, f"visit {visit.number} completed, signed by {visit.signer_name}", actor, now
    )
    return visit


@transaction.atomic
def visit_cancel(
    *, actor: User, visit: Visit, reason: str, now: dt.datetime | None = None
) -> Visit:
    """Calls a visit off; a ticket left waiting for no visit goes back to "in progress"."""
    now = _now(now)
    _check_visit_actor(actor, visit)
    if visit.state != Visit.State.SCHEDULED:
        raise ConflictError(_("Only a visit that has not started can be cancelled."))
    if not reason.strip():
        raise ValidationError({"cancel_reason": _("Say why the visit is cancelled.")})
    before = audit.snapshot(visit)
    visit.state = Visit.State.CANCELLED
    visit.cancel_reason = reason.strip()[:300]
    visit.save()
    _record_visit(actor, visit, before, "visit.cancelled")
    _visit_event(visit, f"visit {visit.number} cancelled: {visit.cancel_reason}", actor, now)
    ticket = visit.ticket
    still_booked = ticket.visits.filter(state=Visit.State.SCHEDULED).exists()
    if ticket.status == Status.VISIT_SCHEDULED and not still_booked:
        ticket_set_status(actor=actor, ticket=ticket, status=Status.IN_PROGRESS, now=now)
    return visit


# Email to ticket: mailboxes ---------------------------------------------------------------------

MAILBOX_FIELDS = (
    "name",
    "address",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "password",
    "oauth2_token",
    "folder",
    "processed_folder",
    "team",
    "default_priority",
    "is_active",
    "is_default_outgoing",
)
_MAILBOX_SECRETS = ("password", "oauth2_token")


def _apply_mailbox(mailbox: Mailbox, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(MAILBOX_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a mailbox")
    for name, value in fields.items():
        if name in _MAILBOX_SECRETS:
            value = crypto.encrypt(value or "")
        elif isinstance(value, str):
            value = value.strip()
        setattr(mailbox, name, value)
    mailbox.address = mailbox.address.lower()
    if bool(mailbox.password) == bool(mailbox.oauth2_token):
        raise ValidationError(
            {"password": _("Give either a password or an OAuth 2.0 access token, not both.")}
        )
    mailbox.full_clean()
    if mailbox.is_default_outgoing:
        # One default sender: choosing another one replaces it.
        Mailbox.objects.exclude(pk=mailbox.pk).filter(is_default_outgoing=True).update(
            is_default_outgoing=False
        )


@transaction.atomic
def mailbox_create(
    *,
    actor: User | None,
    name: str,
    address: str,
    imap_host: str,
    imap_username: str,
    password: str = "",
    oauth2_token: str = "",
    **fields: Any,
) -> Mailbox:
    """Adds a support mailbox; its password or OAuth 2.0 token is stored encrypted."""
    mailbox = Mailbox()
    _apply_mailbox(
        mailbox,
        {
            "name": name,
            "address": address,
            "imap_host": imap_host,
            "imap_username": imap_username,
            "password": password,
            "oauth2_token": oauth2_token,
            **fields,
        },
    )
    mailbox.save()
    audit.record_created(actor=actor, obj=mailbox)
    return mailbox


@transaction.atomic
def mailbox_update(*, actor: User | None, mailbox: Mailbox, **fields: Any) -> Mailbox:
    """Changes a mailbox (any of MAILBOX_FIELDS); a secret given replaces the stored one."""
    before = audit.snapshot(mailbox)
    _apply_mailbox(mailbox, fields)
    mailbox.save()
    audit.record_updated(actor=actor, obj=mailbox, before=before)
    return mailbox


@transaction.atomic
def mailbox_delete(*, actor: User | None, mailbox: Mailbox) -> None:
    """Removes a mailbox; its tickets and the log of its mail stay."""
    object_delete(actor=actor, obj=mailbox)


def mailbox_settings(mailbox: Mailbox) -> MailboxSettings:
    """How to log in to the mailbox, secrets decrypted; MailboxError when they cannot be."""
    try:
        password = crypto.decrypt(mailbox.password)
        token = crypto.decrypt(mailbox.oauth2_token)
    except ValueError as exc:
        raise MailboxError(str(exc)) from exc
    return MailboxSettings(
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        security=mailbox.imap_security,  # type: ignore[arg-type]  # the model's choices
        username=mailbox.imap_username,
        password=password,
        oauth2_token=token,
        folder=mailbox.folder,
        processed_folder=mailbox.processed_folder,
    )


def mailbox_test_connection(*, mailbox: Mailbox) -> int:
    """Logs in and opens the folders; the number of unprocessed messages, or MailboxError."""
    with ImapSession(mailbox_settings(mailbox)) as session:
        return len(session.unprocessed_uids())


# Email to ticket: polling and filing -----------------------------------------------------------

PREVIEW_CHARS = 2000


def _message_key(message_id: str, raw: bytes) -> str:
    """The idempotency key: the Message-ID, else a digest of the bytes (no angle brackets, so
    it is never mistaken for a Message-ID when threading)."""
    return message_id or f"sha256:{hashlib.sha256(raw).hexdigest()}"


def mailbox_poll(*, mailbox: Mailbox, now: dt.datetime | None = None) -> dict[str, int]:
    """Files every unprocessed message of the mailbox, each in its own transaction, and marks
    it processed only after that committed. A crash in between leaves the message unseen; the
    next poll finds its Message-ID on file and only marks it. Returns the count per outcome."""
    counts: Counter[str] = Counter()
    error = ""
    try:
        with ImapSession(mailbox_settings(mailbox)) as session:
            for uid in session.unprocessed_uids():
                raw = session.fetch(uid)
                counts[_inbound_file(mailbox, raw, now)] += 1
                session.mark_processed(uid)
    except MailboxError as exc:
        error = str(exc)
        logger.warning("mailbox %s: %s", mailbox.address, error)
    Mailbox.objects.filter(pk=mailbox.pk).update(last_polled_at=_now(now), last_error=error)
    mailbox.last_polled_at, mailbox.last_error = _now(now), error
    return dict(counts)


def _inbound_file(mailbox: Mailbox, raw: bytes, now: dt.datetime | None) -> str:
    """Files one message; whatever goes wrong is recorded as a rejection with the raw message,
    so one bad message never stops the others and is never lost."""
    try:
        return inbound_mail_process(mailbox=mailbox, raw=raw, now=now).outcome
    except Exception as exc:
        logger.exception("mailbox %s: a message could not be filed", mailbox.address)
        return inbound_message_reject(
            mailbox=mailbox, raw=raw, reason=f"{type(exc).__name__}: {exc}", now=now
        ).outcome


def _store_raw(message: InboundMessage, raw: bytes) -> str:
    message.raw.save("message.eml", ContentFile(raw), save=False)
    return message.raw.name


@transaction.atomic
def inbound_message_reject(
    *, mailbox: Mailbox | None, raw: bytes, reason: str, now: dt.datetime | None = None
) -> InboundMessage:
    """Records a message that could not be filed, with the raw bytes and the reason."""
    mail = parse_mail(raw)
    key = _message_key(mail.message_id, raw)
    existing = InboundMessage.objects.filter(message_id=key).first()
    if existing is not None:
        return existing
    message = InboundMessage(
        mailbox=mailbox,
        message_id=key,
        from_address=mail.from_address[:320],
        from_name=mail.from_name[:200],
        subject=mail.subject[:500],
        preview=mail.body_text[:PREVIEW_CHARS],
        received_at=_now(now),
        outcome=InboundMessage.Outcome.REJECTED,
        detail=reason[:4000],
    )
    stored = _store_raw(message, raw)
    try:
        message.save()
        audit.record_created(actor=None, obj=message)
    except BaseException:
        message.raw.storage.delete(stored)
        raise
    return message


@transaction.atomic
def inbound_mail_process(
    *, mailbox: Mailbox, raw: bytes, now: dt.datetime | None = None
) -> InboundMessage:
    """Files one raw message: a new ticket, a reply on its ticket, a bounce note, the triage
    queue, or ignored when automatic. A message filed before (same Message-ID) is returned as
    it was, so filing twice changes nothing."""
    now = _now(now)
    mail = parse_mail(raw, own_domain=mailbox.domain)
    key = _message_key(mail.message_id, raw)
    existing = InboundMessage.objects.filter(message_id=key).first()
    if existing is not None:
        return existing
    message = InboundMessage(
        mailbox=mailbox,
        message_id=key,
        from_address=mail.from_address[:320],
        from_name=mail.from_name[:200],
        subject=mail.subject[:500],
        preview=mail.body_text[:PREVIEW_CHARS],
        received_at=now,
    )
    # The file is on disk before the row: if filing fails, remove it so nothing is left that
    # no row points to (the rejection stores it again).
    stored = _store_raw(message, raw)
    try:
        _inbound_route(message, mail, mailbox, now)
        message.save()
        audit.record_created(actor=None, obj=message)
    except BaseException:
        message.raw.storage.delete(stored)
        raise
    return message


def _inbound_route(
    message: InboundMessage, mail: InboundMail, mailbox: Mailbox, now: dt.datetime
) -> None:
    """Decides what the message becomes and does it; sets outcome, detail and links."""
    Outcome = InboundMessage.Outcome
    if mail.bounce is not None:
        _inbound_bounce(message, mail, now)
        return
    if mail.auto_reason:
        # Never answered and never a ticket: answering an auto-reply starts a mail loop.
        message.outcome, message.detail = Outcome.IGNORED, mail.auto_reason
        return
    if "@" not in mail.from_address:
        message.outcome = Outcome.REJECTED
        message.detail = "; ".join(mail.problems) or "no sender address"
        return
    ticket = _thread_target(mail)
    if ticket is not None:
        if not _may_write(ticket.customer, mail.from_address):
            # A stranger must not write into someone's ticket by copying its number.
            message.outcome = Outcome.TRIAGE
            message.detail = _(
                "The sender is neither a contact nor in a mail domain of the customer of "
                "ticket #%(id)s."
            ) % {"id": ticket.pk}
            return
        contact = _sender_contact(ticket.customer, mail)
        if ticket.status != Status.CLOSED:
            entry = ticket_reply(
                actor=None,
                ticket=ticket,
                body=mail.reply_text or mail.body_text or "—",
                author_contact=contact,
                message_id=mail.message_id,
                at=now,
            )
            _inbound_attachments(ticket, entry, mail, now)
            message.outcome, message.ticket, message.entry = Outcome.REPLY, ticket, entry
            message.customer = ticket.customer
            return
        new = _inbound_ticket(message, mail, mailbox, ticket.customer, contact, now)
        ticket_update(actor=None, ticket=new, related=[ticket])
        message.detail = _("A reply to closed ticket #%(id)s.") % {"id": ticket.pk}
        return
    customer, contact, reason = _sender_customer(mail)
    if customer is None:
        message.outcome, message.detail = Outcome.TRIAGE, reason
        return
    _inbound_ticket(message, mail, mailbox, customer, contact, now)


def _thread_target(mail: InboundMail) -> Ticket | None:
    """The ticket a reply belongs to: the "[#id]" in its subject, else the newest ticket
    entry or filed mail that its In-Reply-To or References name; merged tickets followed."""
    ticket = None
    number = ticket_number_in_subject(mail.subject)
    if number is not None:
        ticket = Ticket.objects.select_related("customer").filter(pk=number).first()
    ids = [i for i in (mail.in_reply_to, *mail.references) if i]
    if ticket is None and ids:
        entry = (
            TicketEntry.objects.filter(message_id__in=ids)
            .select_related("ticket__customer")
            .order_by("-created_at", "-id")
            .first()
        )
        filed = (
            InboundMessage.objects.filter(message_id__in=ids, ticket__isnull=False)
            .select_related("ticket__customer")
            .order_by("-received_at", "-id")
            .first()
        )
        ticket = entry.ticket if entry else filed.ticket if filed else None
    for _depth in range(10):
        if ticket is None or ticket.merged_into_id is None:
            break
        ticket = Ticket.objects.select_related("customer").get(pk=ticket.merged_into_id)
    return ticket


def _may_write(customer: Customer, address: str) -> bool:
    domain = address.rpartition("@")[2]
    return domain in customer.mail_domains or (
        Contact.objects.filter(customer=customer, email__iexact=address).exists()
    )


def _sender_contact(customer: Customer, mail: InboundMail) -> Contact:
    """The customer's contact with the sender's address; created from the From header when
    the customer has none yet (the sender is in one of its mail domains)."""
    contact = (
        Contact.objects.filter(customer=customer, email__iexact=mail.from_address)
        .order_by("-is_active", "pk")
        .first()
    )
    if contact is not None:
        return contact
    return contact_create(
        actor=None,
        customer=customer,
        name=(mail.from_name or mail.from_address.partition("@")[0])[:100],
        email=mail.from_address,
        notes=_("Added from an email."),
    )


def _sender_customer(mail: InboundMail) -> tuple[Customer | None, Contact | None, str]:
    """The sender's customer and contact: by the contact's address, then by the customer's
    mail domains (creating the contact); else (None, None, why)."""
    contacts = list(
        Contact.objects.filter(email__iexact=mail.from_address)
        .select_related("customer")
        .order_by("-is_active", "pk")[:10]
    )
    if len({contact.customer_id for contact in contacts}) > 1:
        return None, None, _("The sender is a contact of more than one customer.")
    if contacts:
        return contacts[0].customer, contacts[0], ""
    domain = mail.from_address.rpartition("@")[2]
    for customer in Customer.objects.exclude(mail_domains=[]):
        if domain in customer.mail_domains:
            return customer, _sender_contact(customer, mail), ""
    return None, None, _("Unknown sender: neither a contact nor in a customer's mail domains.")


def _inbound_ticket(
    message: InboundMessage,
    mail: InboundMail,
    mailbox: Mailbox | None,
    customer: Customer,
    contact: Contact | None,
    now: dt.datetime,
    actor: User | None = None,
) -> Ticket:
    ticket = ticket_create(
        actor=actor,
        customer=customer,
        title=(mail.subject or _("(no subject)"))[:200],
        description=mail.body_text,
        channel=Channel.EMAIL,
        requester=contact,
        team=mailbox.team if mailbox else None,
        priority=mailbox.default_priority if mailbox else None,
        mailbox=mailbox,
    )
    _inbound_attachments(ticket, None, mail, now)
    message.outcome = InboundMessage.Outcome.TICKET
    message.ticket, message.customer = ticket, customer
    return ticket


def _inbound_attachments(
    ticket: Ticket, entry: TicketEntry | None, mail: InboundMail, now: dt.datetime
) -> None:
    """Keeps the mail's files within the attachment limits; the refused ones are named in an
    internal note instead, so staff know to ask for them another way."""
    refused = []
    for attachment in mail.attachments:
        upload = SimpleUploadedFile(
            attachment.filename, attachment.content, attachment.content_type
        )
        try:
            ticket_attach(actor=None, ticket=ticket, upload=upload, entry=entry)
        except ValidationError as exc:
            refused.append(f"{attachment.filename or '?'}: {' '.join(exc.messages)}")
    if refused:
        _entry(
            ticket=ticket,
            kind=TicketEntry.Kind.NOTE,
            body=_("Attachments of the email not kept:") + "\n" + "\n".join(refused),
            at=now,
            author=None,
            is_public=False,
        )


def _inbound_bounce(message: InboundMessage, mail: InboundMail, now: dt.datetime) -> None:
    """A delivery report: a failure is noted on the ticket whose reply bounced, and the failed
    addresses' contacts are marked so that no more mail goes there."""
    bounce = mail.bounce
    assert bounce is not None
    message.outcome = InboundMessage.Outcome.BOUNCE
    recipients = ", ".join(bounce.recipients)
    message.detail = f"{bounce.action} {bounce.status} {recipients}: {bounce.diagnostic}"[:4000]
    if not bounce.failed:
        return
    original = (
        TicketEntry.objects.filter(message_id=bounce.original_message_id)
        .select_related("ticket__customer")
        .first()
        if bounce.original_message_id
        else None
    )
    if original is not None:
        ticket = original.ticket
        message.ticket, message.customer = ticket, ticket.customer
        message.entry = _entry(
            ticket=ticket,
            kind=TicketEntry.Kind.NOTE,
            body=_("The email to %(to)s was not delivered: %(why)s")
            % {"to": recipients or "?", "why": bounce.diagnostic or bounce.status},
            at=now,
            author=None,
            is_public=False,
        )
        before = audit.snapshot(original)
        original.email_state = EmailState.FAILED
        original.email_error = message.detail
        original.save(update_fields=["email_state", "email_error"])
        audit.record_updated(actor=None, obj=original, before=before)
    addresses = [address.lower() for address in bounce.recipients]
    for contact in Contact.objects.filter(email__in=addresses, email_bounced_at__isnull=True):
        before = audit.snapshot(contact)
        contact.email_bounced_at = now
        contact.save(update_fields=["email_bounced_at"])
        audit.record_updated(actor=None, obj=contact, before=before)


# Email to ticket: triage -------------------------------------------------------------------------


def _check_triage(message: InboundMessage) -> None:
    if message.outcome != InboundMessage.Outcome.TRIAGE:
        raise ConflictError(_("This email has already been dealt with."))


@transaction.atomic
def inbound_message_link(
    *, actor: User, message: InboundMessage, customer: Customer, create_contact: bool
) -> Ticket:
    """Files a triaged email under `customer`: a new ticket from the stored raw message, its
    requester the customer's contact with the sender's address, created if asked."""
    message = InboundMessage.objects.select_for_update().get(pk=message.pk)
    _check_triage(message)
    with message.raw.open("rb") as stored:
        raw = stored.read()
    mailbox = message.mailbox
    mail = parse_mail(raw, own_domain=mailbox.domain if mailbox else "")
    contact = (
        Contact.objects.filter(customer=customer, email__iexact=mail.from_address).first()
        if mail.from_address
        else None
    )
    if contact is None and create_contact and mail.from_address:
        contact = contact_create(
            actor=actor,
            customer=customer,
            name=(mail.from_name or mail.from_address.partition("@")[0])[:100],
            email=mail.from_address,
        )
    before = audit.snapshot(message)
    ticket = _inbound_ticket(message, mail, mailbox, customer, contact, timezone.now(), actor)
    message.decided_by = actor
    message.save()
    audit.record_updated(actor=actor, obj=message, before=before)
    return ticket


@transaction.atomic
def inbound_message_discard(*, actor: User, message: InboundMessage) -> InboundMessage:
    """Drops a triaged email (spam, a wrong address); it stays in the log as discarded."""
    message = InboundMessage.objects.select_for_update().get(pk=message.pk)
    _check_triage(message)
    before = audit.snapshot(message)
    message.outcome = InboundMessage.Outcome.DISCARDED
    message.decided_by = actor
    message.save(update_fields=["outcome", "decided_by"])
    audit.record_updated(actor=actor, obj=message, before=before)
    return message


# Email to ticket: outbound replies ---------------------------------------------------------------

EMAIL_MAX_ATTEMPTS = 8
# Minutes before the next attempt after the 1st, 2nd, … failure: about 4 hours in all.
EMAIL_BACKOFF_MINUTES = (1, 2, 5, 10, 20, 60, 120)


def _email_recipients(ticket: Ticket) -> tuple[str, list[str]]:
    """(to, cc): the requester's address unless it bounced, and the copied contacts'."""
    to = ""
    # Read afresh: a bounce may have marked the contact since the ticket was loaded.
    requester = Contact.objects.filter(pk=ticket.requester_id).first()
    if requester is not None and requester.email:
        to = "" if requester.email_bounced_at else requester.email
    elif ticket.requester_user_id and ticket.requester_user.email:
        address = ticket.requester_user.email.lower()
        bounced = Contact.objects.filter(email=address, email_bounced_at__isnull=False)
        to = "" if bounced.exists() else address
    if not to:
        return "", []
    cc = [
        contact.email
        for contact in ticket.cc_contacts.all()
        if contact.email and not contact.email_bounced_at and contact.email != to
    ]
    return to, cc


def _email_sender(ticket: Ticket) -> tuple[str, str]:
    """(From header, domain of our Message-IDs): the ticket's mailbox, else the default
    sender mailbox, else ONESTOP_MAIL_FROM."""
    mailbox = ticket.mailbox or Mailbox.objects.filter(is_default_outgoing=True).first()
    if mailbox is not None:
        return str(Address(display_name=mailbox.name, addr_spec=mailbox.address)), mailbox.domain
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return settings.DEFAULT_FROM_EMAIL, address.rpartition("@")[2] or "localhost"


def ticket_email_queue(*, entry: TicketEntry) -> bool:
    """Marks a staff member's public reply to be emailed, within the caller's transaction, and
    sends it once that commits. Imported tickets and requesters without a deliverable address
    get no mail. True when queued."""
    ticket = entry.ticket
    if ticket.imported or not _email_recipients(ticket)[0]:
        return False
    # Made now and kept through retries: every attempt sends the same message.
    entry.message_id = make_message_id(domain=_email_sender(ticket)[1])
    entry.email_state = EmailState.PENDING
    entry.email_next_at = entry.created_at
    entry.save(update_fields=["message_id", "email_state", "email_next_at"])
    transaction.on_commit(lambda: _email_enqueue(entry.pk))
    return True


def _email_enqueue(entry_id: int) -> None:
    # Imported here: the tasks module imports this one. A worker that is down loses nothing:
    # the entry stays pending and the every-minute sweep sends it.
    from onestop.servicedesk import tasks

    tasks.ticket_email_send(entry_id)


def _thread_ids(ticket: Ticket, entry: TicketEntry) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References): the customer's latest mail on the ticket, and every
    Message-ID of the ticket's mail so far, oldest first."""
    inbound = list(
        InboundMessage.objects.filter(
            ticket=ticket,
            outcome__in=[InboundMessage.Outcome.TICKET, InboundMessage.Outcome.REPLY],
            message_id__startswith="<",
        ).values_list("received_at", "message_id")
    )
    outbound = list(
        TicketEntry.objects.filter(ticket=ticket, created_at__lte=entry.created_at)
        .exclude(message_id="")
        .exclude(pk=entry.pk)
        .values_list("created_at", "message_id")
    )
    ordered = [message_id for _at, message_id in sorted(inbound + outbound)]
    latest = max(inbound)[1] if inbound else None
    return latest, list(dict.fromkeys(ordered))


class _PreparedEmail(DjangoEmailMessage):
    """A message built by `mail.build_reply`, sent through Django's configured backend."""

    def __init__(self, prepared: Any, *, from_email: str, recipients: list[str]) -> None:
        super().__init__(from_email=from_email, to=recipients)
        self.prepared = prepared

    def message(self, **kwargs: Any) -> Any:
        return _WithLinesep(self.prepared)


class _WithLinesep:
    """The message as Django's backends read it: they pass `linesep` to as_bytes(), which the
    standard library takes through the policy instead."""

    def __init__(self, message: Any) -> None:
        self._message = message

    def as_bytes(self, linesep: str = "\n", **kwargs: Any) -> bytes:
        return self._message.as_bytes(policy=self._message.policy.clone(linesep=linesep))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)


def ticket_email_send(*, entry_id: int, now: dt.datetime | None = None) -> str:
    """Sends one pending reply email if it is due; records the attempt on the entry. Returns
    the entry's email state afterwards ("" when there was nothing to send)."""
    now = _now(now)
    entry = (
        TicketEntry.objects.select_related(
            "ticket__requester", "ticket__requester_user", "ticket__mailbox"
        )
        .filter(pk=entry_id, email_state=EmailState.PENDING)
        .first()
    )
    if entry is None or (entry.email_next_at and entry.email_next_at > now):
        return ""
    ticket = entry.ticket
    to, cc = _email_recipients(ticket)
    if not to:
        return _email_attempt(entry, now, permanent=True, reason="no deliverable address")
    sender, _domain = _email_sender(ticket)
    in_reply_to, references = _thread_ids(ticket, entry)
    files = [
        MailAttachment(
            filename=attachment.name,
            content_type=attachment.content_type,
            content=attachment.file.open("rb").read(),
        )
        for attachment in entry.attachments.filter(is_public=True)
    ]
    prepared = build_reply(
        from_address=sender,
        to=[to],
        cc=cc,
        subject=f"Re: {ticket.title}",
        text=entry.body,
        ticket_id=ticket.pk,
        message_id=entry.message_id,
        in_reply_to=in_reply_to,
        references=references,
        attachments=files,
    )
    try:
        get_connection(fail_silently=False).send_messages(
            [_PreparedEmail(prepared, from_email=sender, recipients=[to, *cc])]
        )
    except (smtplib.SMTPException, OSError) as exc:
        permanent, reason = smtp_failure(exc)
        logger.warning("reply email of ticket #%s not sent: %s", ticket.pk, reason)
        return _email_attempt(entry, now, permanent=permanent, reason=reason)
    return _email_attempt(entry, now, permanent=False, reason="")


@transaction.atomic
def _email_attempt(entry: TicketEntry, now: dt.datetime, *, permanent: bool, reason: str) -> str:
    """Records one attempt: sent (no reason), failed for good, or due again after a pause."""
    before = audit.snapshot(entry)
    attempts = [*entry.email_attempts, {"at": now.isoformat(), "error": reason}]
    entry.email_attempts = attempts
    entry.email_error = reason
    if not reason:
        entry.email_state, entry.email_next_at = EmailState.SENT, None
    elif permanent or len(attempts) >= EMAIL_MAX_ATTEMPTS:
        entry.email_state, entry.email_next_at = EmailState.FAILED, None
    else:
        pause = EMAIL_BACKOFF_MINUTES[min(len(attempts), len(EMAIL_BACKOFF_MINUTES)) - 1]
        entry.email_next_at = now + dt.timedelta(minutes=pause)
    entry.save(update_fields=["email_attempts", "email_error", "email_state", "email_next_at"])
    if entry.email_state != EmailState.PENDING:
        audit.record(
            actor=None,
            action="update",
            obj=entry,
            changes=audit.diff(
                {"email_state": before["email_state"]}, {"email_state": entry.email_state}
            ),
        )
    return entry.email_state


def ticket_emails_send(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Sends every pending reply email that is due; run every minute, so a reply queued while
    the worker was down, or due for another attempt, goes out. Counts per resulting state."""
    now = _now(now)
    due = TicketEntry.objects.filter(email_state=EmailState.PENDING).filter(
        Q(email_next_at__isnull=True) | Q(email_next_at__lte=now)
    )
    counts: Counter[str] = Counter()
    for entry_id in due.order_by("email_next_at", "pk").values_list("pk", flat=True):
        counts[ticket_email_send(entry_id=entry_id, now=now) or "skipped"] += 1
    return dict(counts)
