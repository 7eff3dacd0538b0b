"""Turning domain events into in-app notifications, and marking them read."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from onestop.core.models import DomainEvent, EventCursor, User
from onestop.notify.models import Notification
from onestop.notify.registry import resolver_for

CONSUMER = "notify.inapp"

# The events people are told about, with how each reads in their inbox.
NOTIFIED_EVENTS = {
    "ticket.created": _("New ticket: %(subject)s"),
    "ticket.customer_replied": _("The customer replied: %(subject)s"),
    "ticket.sla_warning": _("SLA warning: %(subject)s"),
    "ticket.sla_escalated": _("SLA escalated: %(subject)s"),
    "ticket.sla_breached": _("SLA breached: %(subject)s"),
    "ticket.resolved": _("Resolved: %(subject)s"),
    "ticket.csat_received": _("Satisfaction received: %(subject)s"),
    "visit.created": _("On-site visit booked: %(subject)s"),
    "visit.rescheduled": _("On-site visit moved: %(subject)s"),
    "visit.cancelled": _("On-site visit cancelled: %(subject)s"),
    "visit.completed": _("Work order signed: %(subject)s"),
}


@transaction.atomic
def notifications_dispatch(*, limit: int = 1000) -> int:
    """Reads the events after this consumer's cursor and notifies their recipients.

    The cursor moves in the same transaction as the rows it produced, and a user is told of an
    event at most once, so a crash repeats nothing and loses nothing.
    """
    cursor, _created = EventCursor.objects.select_for_update().get_or_create(consumer=CONSUMER)
    events = list(DomainEvent.objects.filter(id__gt=cursor.last_event_id).order_by("id")[:limit])
    rows: list[Notification] = []
    for event in events:
        template = NOTIFIED_EVENTS.get(event.name)
        resolver = resolver_for(event.object_type) if template else None
        recipients = resolver(event) if resolver else None
        if recipients is None:
            continue
        actor_id = (event.payload or {}).get("actor_id")
        seen: set[int] = set()
        for user in recipients.users:
            if user is None or user.pk == actor_id or user.pk in seen or not user.is_active:
                continue
            seen.add(user.pk)
            rows.append(
                Notification(
                    user=user,
                    event=event,
                    kind=event.name,
                    subject=str(recipients.subject)[:300],
                    url=recipients.url,
                    customer_id=event.customer_id,
                )
            )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    if events:
        cursor.last_event_id = events[-1].pk
        cursor.save(update_fields=["last_event_id", "updated_at"])
    return len(rows)


def notification_title(notification: Notification) -> str:
    """The line shown in the inbox, in the reader's language."""
    template = NOTIFIED_EVENTS.get(notification.kind)
    return str(template) % {"subject": notification.subject} if template else notification.subject


@transaction.atomic
def notification_mark_read(*, user: User, notification: Notification) -> Notification:
    """Marks one of the user's notifications read (a personal flag: not audited)."""
    if notification.user_id != user.pk:
        raise PermissionError("not your notification")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user: User) -> int:
    """Marks all of the user's unread notifications read."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
