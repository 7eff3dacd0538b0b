"""API for the caller's own notifications."""

import datetime as dt

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.pagination import paginate

from onestop.core.api import NewestFirst
from onestop.notify import selectors, services

router = Router()


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    subject: str
    url: str
    customer_id: int | None
    created_at: dt.datetime
    read_at: dt.datetime | None

    @staticmethod
    def resolve_title(obj) -> str:
        return services.notification_title(obj)


class NotificationFilters(Schema):
    unread: bool | None = None


class ReadAllOut(Schema):
    marked: int


@router.get("/notifications", response=list[NotificationOut], tags=["notifications"])
@paginate(NewestFirst)
def list_notifications(request: HttpRequest, filters: Query[NotificationFilters]):
    return selectors.notification_list(user=request.user, **filters.dict())


@router.get("/notifications/{int:id}", response=NotificationOut, tags=["notifications"])
def get_notification(request: HttpRequest, id: int):
    return selectors.notification_get(user=request.user, pk=id)


@router.post("/notifications/{int:id}/read", response=NotificationOut, tags=["notifications"])
def read_notification(request: HttpRequest, id: int):
    notification = selectors.notification_get(user=request.user, pk=id)
    return services.notification_mark_read(user=request.user, notification=notification)


@router.post("/notifications/read-all", response=ReadAllOut, tags=["notifications"])
def read_all_notifications(request: HttpRequest):
    return {"marked": services.notifications_mark_all_read(user=request.user)}
