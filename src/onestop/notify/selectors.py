"""Reads of a user's own notifications."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from onestop.core.models import User
from onestop.core.scoping import restrict
from onestop.core.selectors import get_visible
from onestop.notify.models import Channel, Delivery, Notification, Preference, Rule


def notification_list(*, user: User, unread: bool | None = None) -> QuerySet[Notification]:
    qs = restrict(Notification.objects.all(), user)
    if unread is not None:
        qs = qs.filter(read_at__isnull=unread)
    return qs


def notification_get(*, user: User, pk: Any) -> Notification:
    return get_visible(Notification.objects.all(), user, pk)


def unread_count(*, user: User) -> int:
    return notification_list(user=user, unread=True).count()


def channel_list(*, user: User) -> QuerySet[Channel]:
    return restrict(Channel.objects.all(), user)


def channel_get(*, user: User, pk: Any) -> Channel:
    return get_visible(Channel.objects.all(), user, pk)


def rule_list(*, user: User, channel_id: int | None = None) -> QuerySet[Rule]:
    qs = restrict(Rule.objects.select_related("channel", "customer", "team"), user)
    if channel_id:
        qs = qs.filter(channel_id=channel_id)
    return qs


def rule_get(*, user: User, pk: Any) -> Rule:
    return get_visible(Rule.objects.select_related("channel", "customer", "team"), user, pk)


def delivery_list(
    *,
    user: User,
    state: str | None = None,
    channel_id: int | None = None,
    event_name: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
) -> QuerySet[Delivery]:
    """The delivery log, newest first; per ticket with object_type/object_id."""
    qs = restrict(Delivery.objects.select_related("channel", "rule"), user)
    if state:
        qs = qs.filter(state=state)
    if channel_id:
        qs = qs.filter(channel_id=channel_id)
    if event_name:
        qs = qs.filter(event_name=event_name)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=str(object_id))
    return qs


def delivery_get(*, user: User, pk: Any) -> Delivery:
    return get_visible(Delivery.objects.select_related("channel", "rule"), user, pk)


def preference_for(*, user: User) -> Preference | None:
    return Preference.objects.filter(user=user).first()
