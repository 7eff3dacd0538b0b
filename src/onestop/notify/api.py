"""API for the caller's own notifications and preferences, and for the channels, rules and
delivery log that carry notifications outside the app."""

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Router, Schema

from onestop.core.api import resolve_refs
from onestop.core.api_base import InputSchema, NewestFirst, crud_endpoints
from onestop.core.models import Customer, Team
from onestop.core.permissions import require
from onestop.notify import selectors, services
from onestop.notify.models import Channel, Delivery, Notification, Rule

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


crud_endpoints(
    router,
    "/notifications",
    module=__name__,
    name="notification",
    plural="notifications",
    tag="notifications",
    model=Notification,
    out=NotificationOut,
    filters=NotificationFilters,
    list=selectors.notification_list,
    get=selectors.notification_get,
    pagination=NewestFirst,
)


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


crud_endpoints(
    router,
    "/notification-channels",
    module=__name__,
    name="channel",
    plural="channels",
    tag="channels",
    model=Channel,
    out=ChannelOut,
    create_in=ChannelIn,
    patch_in=ChannelPatch,
    list=selectors.channel_list,
    get=selectors.channel_get,
    create=services.channel_create,
    update=services.channel_update,
    delete=services.channel_delete,
    require_view=("list", "get"),
)


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


def _rule_refs(user, data: dict) -> dict:
    return resolve_refs(user, data, RULE_REFS)


crud_endpoints(
    router,
    "/notification-rules",
    module=__name__,
    name="rule",
    plural="rules",
    tag="channels",
    model=Rule,
    out=RuleOut,
    filters=RuleFilters,
    create_in=RuleIn,
    patch_in=RulePatch,
    list=selectors.rule_list,
    get=selectors.rule_get,
    create=services.rule_create,
    update=services.rule_update,
    delete=services.rule_delete,
    refs=_rule_refs,
    require_view=("list", "get"),
)


# Deliveries (read only) ----------------------------------------------------------------------


class DeliveryFilters(Schema):
    state: Delivery.State | None = None
    channel_id: int | None = None
    event_name: str | None = None
    object_type: str | None = None
    object_id: str | None = None


crud_endpoints(
    router,
    "/deliveries",
    module=__name__,
    name="delivery",
    plural="deliveries",
    tag="channels",
    model=Delivery,
    out=DeliveryOut,
    filters=DeliveryFilters,
    list=selectors.delivery_list,
    get=selectors.delivery_get,
    require_view=("list", "get"),
)
