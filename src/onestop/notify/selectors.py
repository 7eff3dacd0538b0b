"""Reads of a user's own notifications."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from onestop.core.models import User
from onestop.core.scoping import restrict
from onestop.core.selectors import get_visible
from onestop.notify.models import Notification


def notification_list(*, user: User, unread: bool | None = None) -> QuerySet[Notification]:
    qs = restrict(Notification.objects.all(), user)
    if unread is not None:
        qs = qs.filter(read_at__isnull=unread)
    return qs


def notification_get(*, user: User, pk: Any) -> Notification:
    return get_visible(Notification.objects.all(), user, pk)


def unread_count(*, user: User) -> int:
    return notification_list(user=user, unread=True).count()
