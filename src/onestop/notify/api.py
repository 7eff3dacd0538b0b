"""API for the caller's own notifications and preferences, and for the channels, rules and
delivery log that carry notifications outside the app."""

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from onestop.core.api import Cursor, NewestFirst, resolve_refs
from onestop.core.api_base import InputSchema
from onestop.core.models import Customer, Team
from onestop.core.permissions import require
from onestop.notify import selectors, services
from onestop.notify.models import Channel, Delivery, Rule

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


# Preferences ---------------------------------------------------------------------------------


class PreferenceOut(Schema):
    muted_events: list[str]
    email_events: list[str]
    quiet_from: dt.time | None
    quiet_until: dt.time | None


class PreferenceIn(InputSchema):
    muted_events: list[str] = []
    email_events: list[str] = []
    quiet_from: dt.time | None = None
    quiet_until: dt.time | None = None


@router.get("/notification-preferences", response=PreferenceOut, tags=["notifications"])
def get_preferences(request: HttpRequest):
    preference = selectors.preference_for(user=request.user)
    if preference is None:
        return {"muted_events": [], "email_events": [], "quiet_from": None, "quiet_until": None}
    return preference


@router.put("/notification-preferences", response=PreferenceOut, tags=["notifications"])
def set_preferences(request: HttpRequest, payload: PreferenceIn):
    return services.preference_set(user=request.user, **payload.dict())


# Channels ------------------------------------------------------------------------------------


class ChannelOut(Schema):
    id: int
    name: str
    kind: str
    email_to: str
    is_active: bool
    has_url: bool
    has_secret: bool

    @staticmethod
    def resolve_has_url(obj: Channel) -> bool:
        return bool(obj.url_encrypted)

    @staticmethod
    def resolve_has_secret(obj: Channel) -> bool:
        return bool(obj.secret_encrypted)


class ChannelIn(InputSchema):
    name: str = Field(max_length=100)
    kind: Channel.Kind
    url: str = Field("", max_length=2000, description="Write-only: never returned")
    secret: str = Field("", max_length=500, description="Write-only: never returned")
    email_to: str = Field("", max_length=2000)
    is_active: bool = True


class ChannelPatch(InputSchema):
    name: str | None = Field(None, max_length=100)
    url: str | None = Field(None, max_length=2000)
    secret: str | None = Field(None, max_length=500)
    email_to: str | None = Field(None, max_length=2000)
    is_active: bool | None = None


class DeliveryOut(Schema):
    id: int
    channel_id: int | None
    recipient: str
    rule_id: int | None
    event_name: str
    object_type: str
    object_id: str
    customer_id: int | None
    title: str
    text: str
    url: str
    state: str
    attempts: list[dict]
    next_attempt_at: dt.datetime | None
    digest_id: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


@router.get("/notification-channels", response=list[ChannelOut], tags=["channels"])
@paginate(Cursor)
def list_channels(request: HttpRequest):
    require(request.user, "view", Channel)
    return selectors.channel_list(user=request.user)


@router.get("/notification-channels/{int:id}", response=ChannelOut, tags=["channels"])
def get_channel(request: HttpRequest, id: int):
    channel = selectors.channel_get(user=request.user, pk=id)
    require(request.user, "view", channel)
    return channel


@router.post("/notification-channels", response={201: ChannelOut}, tags=["channels"])
def create_channel(request: HttpRequest, payload: ChannelIn):
    require(request.user, "add", Channel)
    return Status(201, services.channel_create(actor=request.user, **payload.dict()))


@router.patch("/notification-channels/{int:id}", response=ChannelOut, tags=["channels"])
def update_channel(request: HttpRequest, id: int, payload: ChannelPatch):
    channel = selectors.channel_get(user=request.user, pk=id)
    require(request.user, "change", channel)
    return services.channel_update(
        actor=request.user, channel=channel, **payload.dict(exclude_unset=True)
    )


@router.delete("/notification-channels/{int:id}", response={204: None}, tags=["channels"])
def delete_channel(request: HttpRequest, id: int):
    channel = selectors.channel_get(user=request.user, pk=id)
    require(request.user, "delete", channel)
    services.channel_delete(actor=request.user, channel=channel)
    return Status(204, None)


@router.post("/notification-channels/{int:id}/test", response=DeliveryOut, tags=["channels"])
def test_channel(request: HttpRequest, id: int):
    """Sends a test message now; the answer is its recorded delivery (sent or failed)."""
    channel = selectors.channel_get(user=request.user, pk=id)
    require(request.user, "change", channel)
    return services.channel_test(actor=request.user, channel=channel)


# Rules ---------------------------------------------------------------------------------------


class RuleOut(Schema):
    id: int
    name: str
    channel_id: int
    events: list[str]
    customer_id: int | None
    team_id: int | None
    priorities: list[str]
    language: str
    is_active: bool


class RuleIn(InputSchema):
    name: str = Field(max_length=100)
    channel_id: int
    events: list[str] = Field(min_length=1)
    customer_id: int | None = None
    team_id: int | None = None
    priorities: list[str] = []
    language: str = Field("zh-hans", pattern="^(zh-hans|en)$")
    is_active: bool = True


class RulePatch(InputSchema):
    name: str | None = Field(None, max_length=100)
    channel_id: int | None = None
    events: list[str] | None = None
    customer_id: int | None = None
    team_id: int | None = None
    priorities: list[str] | None = None
    language: str | None = Field(None, pattern="^(zh-hans|en)$")
    is_active: bool | None = None


class RuleFilters(Schema):
    channel_id: int | None = None


RULE_REFS = {
    "channel_id": ("channel", Channel),
    "customer_id": ("customer", Customer),
    "team_id": ("team", Team),
}


@router.get("/notification-rules", response=list[RuleOut], tags=["channels"])
@paginate(Cursor)
def list_rules(request: HttpRequest, filters: Query[RuleFilters]):
    require(request.user, "view", Rule)
    return selectors.rule_list(user=request.user, **filters.dict())


@router.get("/notification-rules/{int:id}", response=RuleOut, tags=["channels"])
def get_rule(request: HttpRequest, id: int):
    rule = selectors.rule_get(user=request.user, pk=id)
    require(request.user, "view", rule)
    return rule


@router.post("/notification-rules", response={201: RuleOut}, tags=["channels"])
def create_rule(request: HttpRequest, payload: RuleIn):
    require(request.user, "add", Rule)
    data = resolve_refs(request.user, payload.dict(), RULE_REFS)
    return Status(201, services.rule_create(actor=request.user, **data))


@router.patch("/notification-rules/{int:id}", response=RuleOut, tags=["channels"])
def update_rule(request: HttpRequest, id: int, payload: RulePatch):
    rule = selectors.rule_get(user=request.user, pk=id)
    require(request.user, "change", rule)
    data = resolve_refs(request.user, payload.dict(exclude_unset=True), RULE_REFS)
    return services.rule_update(actor=request.user, rule=rule, **data)


@router.delete("/notification-rules/{int:id}", response={204: None}, tags=["channels"])
def delete_rule(request: HttpRequest, id: int):
    rule = selectors.rule_get(user=request.user, pk=id)
    require(request.user, "delete", rule)
    services.rule_delete(actor=request.user, rule=rule)
    return Status(204, None)


# Deliveries (read only) ----------------------------------------------------------------------


class DeliveryFilters(Schema):
    state: Delivery.State | None = None
    channel_id: int | None = None
    event_name: str | None = None
    object_type: str | None = None
    object_id: str | None = None


@router.get("/deliveries", response=list[DeliveryOut], tags=["channels"])
@paginate(Cursor)
def list_deliveries(request: HttpRequest, filters: Query[DeliveryFilters]):
    require(request.user, "view", Delivery)
    return selectors.delivery_list(user=request.user, **filters.dict())


@router.get("/deliveries/{int:id}", response=DeliveryOut, tags=["channels"])
def get_delivery(request: HttpRequest, id: int):
    delivery = selectors.delivery_get(user=request.user, pk=id)
    require(request.user, "view", delivery)
    return delivery
