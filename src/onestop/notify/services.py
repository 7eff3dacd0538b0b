"""Turning domain events into notifications: in the app (marked read by their reader), and out
through channels chosen by rules, with every delivery, its attempts and its result recorded."""

from __future__ import annotations

import datetime as dt
import smtplib
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from onestop.core import audit, crypto
from onestop.core.models import Customer, DomainEvent, EventCursor, Team, User
from onestop.core.services import object_delete
from onestop.core.smtp import smtp_failure
from onestop.notify import senders
from onestop.notify.models import Channel, Delivery, Notification, Preference, Rule
from onestop.notify.registry import Recipients, resolver_for

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
# The same events as rules and preferences name them.
EVENT_LABELS = {
    "ticket.created": _("Ticket created"),
    "ticket.customer_replied": _("Customer replied"),
    "ticket.sla_warning": _("SLA warning"),
    "ticket.sla_escalated": _("SLA escalated"),
    "ticket.sla_breached": _("SLA breached"),
    "ticket.resolved": _("Ticket resolved"),
    "ticket.csat_received": _("Satisfaction received"),
    "visit.created": _("On-site visit booked"),
    "visit.rescheduled": _("On-site visit moved"),
    "visit.cancelled": _("On-site visit cancelled"),
    "visit.completed": _("Work order signed"),
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
        muted = _muted_users(event.name)
        for user in recipients.users:
            if user is None or user.pk == actor_id or user.pk in seen or not user.is_active:
                continue
            if user.pk in muted:
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


def _muted_users(event_name: str) -> set[int]:
    """The users who asked not to be told of this kind of event."""
    return {
        user_id
        for user_id, muted in Preference.objects.values_list("user_id", "muted_events")
        if event_name in (muted or [])
    }


# Channels -------------------------------------------------------------------------------------

CHANNEL_CONSUMER = "notify.channels"
MAX_ATTEMPTS = 8
# Retries wait 30 s, 1, 2, 4 … minutes, at most an hour, or longer when the receiver says so.
BACKOFF_FIRST = dt.timedelta(seconds=30)
BACKOFF_MAX = dt.timedelta(hours=1)
RATE_WINDOW = dt.timedelta(seconds=60)
SEND_BATCH = 500
# The ticket priorities a rule may filter on (notify does not import the contracts app).
PRIORITIES = ("P1", "P2", "P3", "P4")
TEST_EVENT = "test"
DIGEST_EVENT = "digest"
CHANNEL_FIELDS = ("name", "kind", "email_to", "is_active")
RULE_FIELDS = (
    "name",
    "channel",
    "events",
    "customer",
    "team",
    "priorities",
    "language",
    "is_active",
)


def _check_channel(channel: Channel, url: str, secret: str) -> None:
    errors: dict[str, Any] = {}
    if channel.kind == Channel.Kind.EMAIL:
        addresses = channel.recipients
        if not addresses:
            errors["email_to"] = gettext("Give at least one email address.")
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                errors["email_to"] = gettext("“%(address)s” is not an email address.") % {
                    "address": address
                }
    elif not url:
        errors["url"] = gettext("Give the address messages are posted to.")
    else:
        try:
            senders.validate_endpoint_url(url)
        except ValidationError as exc:
            errors["url"] = exc.messages
    if secret and channel.kind in (Channel.Kind.EMAIL, Channel.Kind.WECOM):
        errors["secret"] = gettext("This kind of channel is not signed; leave the secret empty.")
    if errors:
        raise ValidationError(errors)
    channel.full_clean(exclude=["url_encrypted", "secret_encrypted"])


@transaction.atomic
def channel_create(
    *,
    actor: User | None,
    name: str,
    kind: str,
    url: str = "",
    secret: str = "",
    email_to: str = "",
    is_active: bool = True,
) -> Channel:
    """A channel; its URL (robots carry their token in it) and secret are stored encrypted."""
    url, secret = url.strip(), secret.strip()
    channel = Channel(name=name.strip(), kind=kind, email_to=email_to.strip(), is_active=is_active)
    _check_channel(channel, url, secret)
    channel.url_encrypted = crypto.encrypt(url)
    channel.secret_encrypted = crypto.encrypt(secret)
    channel.save()
    audit.record_created(actor=actor, obj=channel)
    return channel


@transaction.atomic
def channel_update(
    *,
    actor: User | None,
    channel: Channel,
    url: str | None = None,
    secret: str | None = None,
    **fields: Any,
) -> Channel:
    """Changes a channel; a URL or secret left out (or blank from a form) keeps the stored one."""
    unknown = set(fields) - set(CHANNEL_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a channel")
    before = audit.snapshot(channel)
    for name, value in fields.items():
        setattr(channel, name, value.strip() if isinstance(value, str) else value)
    new_url = (url or "").strip() or channel_url(channel)
    new_secret = (secret or "").strip() or crypto.decrypt(channel.secret_encrypted)
    _check_channel(channel, new_url, new_secret if secret else "")
    channel.url_encrypted = crypto.encrypt(new_url)
    if secret:
        channel.secret_encrypted = crypto.encrypt(new_secret)
    channel.save()
    audit.record_updated(actor=actor, obj=channel, before=before)
    return channel


@transaction.atomic
def channel_delete(*, actor: User | None, channel: Channel) -> None:
    """Removes a channel with its rules and delivery log."""
    object_delete(actor=actor, obj=channel)


def channel_url(channel: Channel) -> str:
    return crypto.decrypt(channel.url_encrypted)


def channel_test(*, actor: User, channel: Channel, client: httpx.Client | None = None) -> Delivery:
    """Sends a test message now and records it like any delivery (the "send test" button)."""
    with translation.override(actor.language or settings.LANGUAGE_CODE):
        title = gettext("OneStop test message")
        text = gettext("This channel works: %(name)s, sent by %(user)s.") % {
            "name": channel.name,
            "user": actor,
        }
    delivery = Delivery.objects.create(
        channel=channel,
        event_name=TEST_EVENT,
        title=title,
        text=text,
        url=settings.ONESTOP_PUBLIC_URL + "/",
        next_attempt_at=timezone.now(),
    )
    result = _send(delivery, client=client)
    _record_attempt(delivery, result, timezone.now(), final=True)
    audit.record(
        actor=actor,
        action="update",
        obj=channel,
        changes={"test": [None, "ok" if result.ok else result.detail[:200]]},
    )
    return delivery


def _check_rule(rule: Rule) -> None:
    errors = {}
    known = set(NOTIFIED_EVENTS)
    if not rule.events or not isinstance(rule.events, list):
        errors["events"] = gettext("Choose at least one event.")
    elif set(rule.events) - known:
        errors["events"] = gettext("Unknown events: %(names)s.") % {
            "names": ", ".join(sorted(set(rule.events) - known))
        }
    if not isinstance(rule.priorities, list) or set(rule.priorities) - set(PRIORITIES):
        errors["priorities"] = gettext("Priorities are P1 to P4.")
    if errors:
        raise ValidationError(errors)
    rule.full_clean(exclude=["channel", "customer", "team"])


@transaction.atomic
def rule_create(
    *,
    actor: User | None,
    name: str,
    channel: Channel,
    events: list[str],
    customer: Customer | None = None,
    team: Team | None = None,
    priorities: list[str] | None = None,
    language: str = "zh-hans",
    is_active: bool = True,
) -> Rule:
    """Sends the chosen events (of a customer, a team, priorities — or all) to a channel."""
    rule = Rule(
        name=name.strip(),
        channel=channel,
        events=sorted(set(events)),
        customer=customer,
        team=team,
        priorities=sorted(set(priorities or [])),
        language=language,
        is_active=is_active,
    )
    _check_rule(rule)
    rule.save()
    audit.record_created(actor=actor, obj=rule)
    return rule


@transaction.atomic
def rule_update(*, actor: User | None, rule: Rule, **fields: Any) -> Rule:
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a rule")
    before = audit.snapshot(rule)
    for name, value in fields.items():
        if name in ("events", "priorities"):
            value = sorted(set(value or []))
        setattr(rule, name, value.strip() if isinstance(value, str) else value)
    _check_rule(rule)
    rule.save()
    audit.record_updated(actor=actor, obj=rule, before=before)
    return rule


@transaction.atomic
def rule_delete(*, actor: User | None, rule: Rule) -> None:
    object_delete(actor=actor, obj=rule)


@transaction.atomic
def preference_set(
    *,
    user: User,
    muted_events: list[str],
    email_events: list[str],
    quiet_from: dt.time | None = None,
    quiet_until: dt.time | None = None,
) -> Preference:
    """The user's own choices: events muted, events also emailed, quiet hours for email."""
    known = set(NOTIFIED_EVENTS)
    errors = {}
    if set(muted_events) - known:
        errors["muted_events"] = gettext("Unknown event.")
    if set(email_events) - known:
        errors["email_events"] = gettext("Unknown event.")
    if email_events and not user.email:
        errors["email_events"] = gettext("Add an email address to your profile first.")
    if (quiet_from is None) != (quiet_until is None) or (quiet_from and quiet_from == quiet_until):
        errors["quiet_until"] = gettext("Give both ends of the quiet hours, and not the same time.")
    if errors:
        raise ValidationError(errors)
    preference, _new = Preference.objects.get_or_create(user=user)
    before = audit.snapshot(preference)
    preference.muted_events = sorted(set(muted_events))
    preference.email_events = sorted(set(email_events) - set(muted_events))
    preference.quiet_from, preference.quiet_until = quiet_from, quiet_until
    preference.save()
    audit.record_updated(actor=user, obj=preference, before=before)
    return preference


def quiet_end(preference: Preference | None, now: dt.datetime, zone: str) -> dt.datetime | None:
    """When the user's quiet hours end, if `now` falls inside them (in the user's zone)."""
    if preference is None or preference.quiet_from is None or preference.quiet_until is None:
        return None
    local = timezone.localtime(now, timezone=_zone(zone))
    start, end, clock = preference.quiet_from, preference.quiet_until, local.time()
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends += dt.timedelta(days=1)
    return ends


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name or settings.TIME_ZONE)


def _rule_matches(rule: Rule, event: DomainEvent, facts: Recipients) -> bool:
    if event.name not in rule.events:
        return False
    if rule.customer_id and rule.customer_id != event.customer_id:
        return False
    if rule.team_id and rule.team_id != facts.team_id:
        return False
    return not rule.priorities or facts.priority in rule.priorities


def _message_text(event: DomainEvent, facts: Recipients, language: str) -> tuple[str, str]:
    with translation.override(language):
        title = str(NOTIFIED_EVENTS[event.name]) % {"subject": facts.subject}
    return title[:300], facts.details


@transaction.atomic
def deliveries_plan(*, limit: int = 1000, now: dt.datetime | None = None) -> int:
    """Reads the events after the channels' cursor and records a pending delivery for each
    matching rule and for each personal email a user asked for.

    Like the in-app inbox: the cursor moves in the transaction that writes the rows, and a
    (rule, event) or (address, event) pair is unique, so nothing is planned twice or lost.
    """
    now = now or timezone.now()
    cursor, _new = EventCursor.objects.select_for_update().get_or_create(consumer=CHANNEL_CONSUMER)
    events = list(DomainEvent.objects.filter(id__gt=cursor.last_event_id).order_by("id")[:limit])
    rules = list(Rule.objects.filter(is_active=True, channel__is_active=True))
    preferences = {p.user_id: p for p in Preference.objects.exclude(email_events=[])}
    rows: list[Delivery] = []
    for event in events:
        if event.name not in NOTIFIED_EVENTS:
            continue
        matching = [rule for rule in rules if event.name in rule.events]
        wanted = [p for p in preferences.values() if event.name in p.email_events]
        if not matching and not wanted:
            continue
        resolver = resolver_for(event.object_type)
        facts = resolver(event) if resolver else None
        if facts is None:
            continue
        url = settings.ONESTOP_PUBLIC_URL + facts.url if facts.url else ""
        common = {
            "event": event,
            "event_name": event.name,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "customer_id": event.customer_id,
            "url": url,
        }
        for rule in matching:
            if _rule_matches(rule, event, facts):
                title, text = _message_text(event, facts, rule.language)
                rows.append(
                    Delivery(
                        channel_id=rule.channel_id,
                        rule=rule,
                        title=title,
                        text=text,
                        next_attempt_at=now,
                        **common,
                    )
                )
        actor_id = (event.payload or {}).get("actor_id")
        for user in {u.pk: u for u in facts.users if u is not None}.values():
            preference = preferences.get(user.pk)
            if preference is None or event.name not in preference.email_events:
                continue
            if user.pk == actor_id or not user.is_active or not user.email:
                continue
            title, text = _message_text(event, facts, user.language or settings.LANGUAGE_CODE)
            due = quiet_end(preference, now, user.time_zone) or now
            rows.append(
                Delivery(
                    recipient=user.email, title=title, text=text, next_attempt_at=due, **common
                )
            )
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    if events:
        cursor.last_event_id = events[-1].pk
        cursor.save(update_fields=["last_event_id", "updated_at"])
    return len(rows)


def deliveries_send(
    *, now: dt.datetime | None = None, client: httpx.Client | None = None
) -> dict[str, int]:
    """Sends the pending deliveries that are due, channel by channel.

    A robot gets at most its rate per minute; what exceeds it is folded into one digest
    message. A transient failure is retried with backoff up to MAX_ATTEMPTS; a permanent one
    ends the delivery as failed. Each outcome is committed as soon as it is known.
    """
    now = now or timezone.now()
    counts = {"sent": 0, "retry": 0, "failed": 0, "digested": 0}
    due = list(
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now)
        .select_related("channel")
        .order_by("id")[:SEND_BATCH]
    )
    by_channel: dict[int | None, list[Delivery]] = {}
    for delivery in due:
        by_channel.setdefault(delivery.channel_id, []).append(delivery)
    with _client(client) as http:
        for deliveries in by_channel.values():
            channel = deliveries[0].channel
            if channel is not None and not channel.is_active:
                continue
            if channel is not None and channel.is_robot:
                deliveries = _fit_rate(channel, deliveries, now, counts)
            for delivery in deliveries:
                result = _send(delivery, client=http)
                outcome = _record_attempt(delivery, result, now)
                counts[outcome] += 1
    return counts


class _client:
    """The caller's HTTP client, or one shared by this run and closed after it."""

    def __init__(self, client: httpx.Client | None) -> None:
        self.given = client
        self.own: httpx.Client | None = None

    def __enter__(self) -> httpx.Client:
        if self.given is not None:
            return self.given
        self.own = httpx.Client(trust_env=True, headers={"User-Agent": senders.USER_AGENT})
        return self.own

    def __exit__(self, *exc: object) -> None:
        if self.own is not None:
            self.own.close()


def _fit_rate(
    channel: Channel, deliveries: list[Delivery], now: dt.datetime, counts: dict[str, int]
) -> list[Delivery]:
    """The deliveries to send now within the robot's rate, the rest folded into a digest."""
    sent_recently = Delivery.objects.filter(
        channel=channel, state=Delivery.State.SENT, finished_at__gte=now - RATE_WINDOW
    ).count()
    single, fold = senders.split_for_rate(
        pending_count=len(deliveries), sent_in_last_minute=sent_recently
    )
    now_list, rest = deliveries[:single], deliveries[single:]
    if fold and rest:
        digest_message = senders.digest_message([_message(d) for d in rest])
        with transaction.atomic():
            digest = Delivery.objects.create(
                channel=channel,
                event_name=DIGEST_EVENT,
                title=digest_message.title[:300],
                text=digest_message.text,
                next_attempt_at=now,
            )
            Delivery.objects.filter(pk__in=[d.pk for d in rest]).update(
                state=Delivery.State.DIGESTED, digest=digest, finished_at=now
            )
        counts["digested"] += len(rest)
        now_list.append(digest)
    elif rest:
        # No room this minute: they wait, untouched, for the next run.
        Delivery.objects.filter(pk__in=[d.pk for d in rest]).update(
            next_attempt_at=now + RATE_WINDOW
        )
    return now_list


def _message(delivery: Delivery) -> senders.Message:
    return senders.Message(
        title=delivery.title,
        text=delivery.text,
        url=delivery.url,
        event=delivery.event_name,
        data={"object_type": delivery.object_type, "object_id": delivery.object_id},
    )


def _send(delivery: Delivery, *, client: httpx.Client | None) -> senders.SendResult:
    """One attempt; every failure comes back as a result, never as an exception."""
    channel = delivery.channel
    message = _message(delivery)
    if channel is None or channel.kind == Channel.Kind.EMAIL:
        to = [delivery.recipient] if channel is None else channel.recipients
        return _send_email(to, message)
    try:
        url = channel_url(channel)
        secret = crypto.decrypt(channel.secret_encrypted)
    except ValueError as exc:
        return senders.SendResult(ok=False, transient=False, status=None, detail=str(exc))
    if channel.kind == Channel.Kind.WEBHOOK:
        return senders.send_webhook(url=url, secret=secret, message=message, client=client)
    if channel.kind == Channel.Kind.DINGTALK:
        return senders.send_dingtalk(url=url, secret=secret, message=message, client=client)
    if channel.kind == Channel.Kind.WECOM:
        return senders.send_wecom(url=url, message=message, client=client)
    return senders.send_feishu(url=url, secret=secret, message=message, client=client)


def _send_email(to: list[str], message: senders.Message) -> senders.SendResult:
    body = message.text + (f"\n\n{message.url}" if message.url else "")
    email = EmailMessage(
        subject=message.title,
        body=body.strip() or message.title,
        to=to,
        headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
    )
    try:
        get_connection(fail_silently=False).send_messages([email])
    except (smtplib.SMTPException, OSError) as exc:
        permanent, reason = smtp_failure(exc)
        return senders.SendResult(
            ok=False,
            transient=not permanent,
            status=getattr(exc, "smtp_code", None),
            detail=f"SMTP {reason}"[:500],
        )
    return senders.SendResult(ok=True, transient=False, status=250, detail="accepted")


@transaction.atomic
def _record_attempt(
    delivery: Delivery, result: senders.SendResult, now: dt.datetime, *, final: bool = False
) -> str:
    """Appends the attempt and moves the delivery on: sent, retried later, or failed."""
    attempts = [
        *delivery.attempts,
        {"at": now.isoformat(), "ok": result.ok, "status": result.status, "detail": result.detail},
    ]
    delivery.attempts = attempts
    if result.ok:
        delivery.state, delivery.finished_at, outcome = Delivery.State.SENT, now, "sent"
    elif result.transient and not final and len(attempts) < MAX_ATTEMPTS:
        wait = min(BACKOFF_FIRST * 2 ** (len(attempts) - 1), BACKOFF_MAX)
        if result.retry_after:
            wait = max(wait, dt.timedelta(seconds=result.retry_after))
        delivery.next_attempt_at, outcome = now + wait, "retry"
    else:
        delivery.state, delivery.finished_at, outcome = Delivery.State.FAILED, now, "failed"
    delivery.save(update_fields=["attempts", "state", "finished_at", "next_attempt_at"])
    return outcome
