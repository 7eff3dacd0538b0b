"""The core resources of the user API: customers, sites, contacts, teams, users, audit events,
and personal API tokens."""

import datetime
from typing import Annotated, Any

from axes.exceptions import AxesBackendPermissionDenied
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from ninja.pagination import paginate
from pydantic import EmailStr

from onestop.core import selectors, services
from onestop.core.api_base import (
    Cursor,
    InputSchema,
    NewestFirst,
    crud_endpoints,
    problem_response,
)
from onestop.core.models import (
    AuditEvent,
    Contact,
    Customer,
    Industry,
    Role,
    ServiceLine,
    Site,
    Team,
    User,
)
from onestop.core.permissions import require
from onestop.core.scoping import restrict, visible_customer_ids

router = Router()

NameStr = Field(min_length=1, max_length=200)


def resolve_one(user: User, model, pk: int | None, field: str):
    """A referenced object the user may see, else a field error (never reveals existence)."""
    if pk is None:
        return None
    obj = restrict(model._default_manager.filter(pk=pk), user).first()
    if obj is None:
        raise ValidationError({field: _("No such %(what)s.") % {"what": model._meta.verbose_name}})
    return obj


def resolve_many(user: User, model, pks: list[int] | None, field: str):
    """Referenced objects the user may see, else a field error naming the list."""
    if pks is None:
        return None
    found = list(restrict(model._default_manager.filter(pk__in=pks), user))
    if len(found) != len(set(pks)):
        raise ValidationError({field: _("No such %(what)s.") % {"what": model._meta.verbose_name}})
    return found


def resolve_refs(
    user: User, data: dict[str, Any], refs: dict[str, tuple[str, Any]]
) -> dict[str, Any]:
    """Replaces each id field named in `refs` ({"team_id": ("team", Team)}) by the object the
    user may see; a field ending in "_ids" holds a list. Absent fields stay absent (PATCH)."""
    for key, (name, model) in refs.items():
        if key in data:
            resolve = resolve_many if key.endswith("_ids") else resolve_one
            data[name] = resolve(user, model, data.pop(key), key)
    return data


def visible_ids(context, customers) -> list[int]:
    """Ids of related customers, without those the requesting user may not see."""
    visible = visible_customer_ids(context["request"].user)
    return sorted(c.pk for c in customers if visible is None or c.pk in visible)


# Customers -----------------------------------------------------------------------------------


# Checked as a domain name by the service; here only bounded.
MailDomain = Annotated[str, Field(min_length=1, max_length=253)]


class CustomerOut(Schema):
    id: int
    name: str
    short_code: str
    industry: str
    status: str
    service_lines: list[str]
    parent_id: int | None
    phone: str
    website: str
    mail_domains: list[str]
    notes: str
    created_at: datetime.datetime
    updated_at: datetime.datetime


class CustomerIn(InputSchema):
    name: str = NameStr
    short_code: str = Field(min_length=2, max_length=16)
    industry: Industry = Industry.OTHER
    status: Customer.Status = Customer.Status.ACTIVE
    service_lines: list[ServiceLine] = []
    parent_id: int | None = None
    phone: str = Field("", max_length=40)
    website: str = Field("", max_length=200)
    mail_domains: list[MailDomain] = Field([], max_length=50)
    notes: str = Field("", max_length=10000)


class CustomerPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=200)
    short_code: str | None = Field(None, min_length=2, max_length=16)
    industry: Industry | None = None
    status: Customer.Status | None = None
    service_lines: list[ServiceLine] | None = None
    parent_id: int | None = None
    phone: str | None = Field(None, max_length=40)
    website: str | None = Field(None, max_length=200)
    mail_domains: list[MailDomain] | None = Field(None, max_length=50)
    notes: str | None = Field(None, max_length=10000)


class CustomerFilters(Schema):
    q: str | None = None
    status: Customer.Status | None = None
    industry: Industry | None = None
    service_line: ServiceLine | None = None
    parent_id: int | None = None


def _customer_refs(user: User, data: dict[str, Any]) -> dict[str, Any]:
    return resolve_refs(user, data, {"parent_id": ("parent", Customer)})


crud_endpoints(
    router,
    "/customers",
    module=__name__,
    name="customer",
    plural="customers",
    tag="customers",
    model=Customer,
    out=CustomerOut,
    filters=CustomerFilters,
    create_in=CustomerIn,
    patch_in=CustomerPatch,
    list=selectors.customer_list,
    get=selectors.customer_get,
    create=services.customer_create,
    update=services.customer_update,
    delete=services.customer_delete,
    refs=_customer_refs,
)


# Sites ---------------------------------------------------------------------------------------


class SiteOut(Schema):
    id: int
    customer_id: int
    name: str
    address: str
    city: str
    time_zone: str
    notes: str
    created_at: datetime.datetime
    updated_at: datetime.datetime


class SiteIn(InputSchema):
    customer_id: int
    name: str = NameStr
    address: str = Field("", max_length=400)
    city: str = Field("", max_length=100)
    time_zone: str = Field("Asia/Shanghai", max_length=64)
    notes: str = Field("", max_length=10000)


class SitePatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=200)
    address: str | None = Field(None, max_length=400)
    city: str | None = Field(None, max_length=100)
    time_zone: str | None = Field(None, max_length=64)
    notes: str | None = Field(None, max_length=10000)


class SiteFilters(Schema):
    q: str | None = None
    customer_id: int | None = None


def _site_refs(user: User, data: dict[str, Any]) -> dict[str, Any]:
    return resolve_refs(user, data, {"customer_id": ("customer", Customer)})


crud_endpoints(
    router,
    "/sites",
    module=__name__,
    name="site",
    plural="sites",
    tag="sites",
    model=Site,
    out=SiteOut,
    filters=SiteFilters,
    create_in=SiteIn,
    patch_in=SitePatch,
    list=selectors.site_list,
    get=selectors.site_get,
    create=services.site_create,
    update=services.site_update,
    delete=services.site_delete,
    refs=_site_refs,
)


# Contacts ------------------------------------------------------------------------------------


class ContactOut(Schema):
    id: int
    customer_id: int
    site_id: int | None
    name: str
    title: str
    phone: str
    email: str
    is_vip: bool
    is_active: bool
    notes: str
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ContactIn(InputSchema):
    customer_id: int
    site_id: int | None = None
    name: str = Field(min_length=1, max_length=100)
    title: str = Field("", max_length=100)
    phone: str = Field("", max_length=40)
    email: EmailStr | None = None
    is_vip: bool = False
    is_active: bool = True
    notes: str = Field("", max_length=10000)


class ContactPatch(InputSchema):
    site_id: int | None = None
    name: str | None = Field(None, min_length=1, max_length=100)
    title: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)
    email: EmailStr | None = None
    is_vip: bool | None = None
    is_active: bool | None = None
    notes: str | None = Field(None, max_length=10000)


class ContactFilters(Schema):
    q: str | None = None
    customer_id: int | None = None
    site_id: int | None = None
    is_vip: bool | None = None


_CONTACT_REFS = {"customer_id": ("customer", Customer), "site_id": ("site", Site)}


def _contact_refs(user: User, data: dict[str, Any]) -> dict[str, Any]:
    resolve_refs(user, data, _CONTACT_REFS)
    if "email" in data:
        data["email"] = data["email"] or ""
    return data


crud_endpoints(
    router,
    "/contacts",
    module=__name__,
    name="contact",
    plural="contacts",
    tag="contacts",
    model=Contact,
    out=ContactOut,
    filters=ContactFilters,
    create_in=ContactIn,
    patch_in=ContactPatch,
    list=selectors.contact_list,
    get=selectors.contact_get,
    create=services.contact_create,
    update=services.contact_update,
    delete=services.contact_delete,
    refs=_contact_refs,
)


# Teams ---------------------------------------------------------------------------------------


class TeamOut(Schema):
    id: int
    name: str
    description: str
    lead_id: int | None
    member_ids: list[int]
    customer_ids: list[int]

    @staticmethod
    def resolve_member_ids(obj: Team) -> list[int]:
        return sorted(member.pk for member in obj.members.all())

    @staticmethod
    def resolve_customer_ids(obj: Team, context) -> list[int]:
        return visible_ids(context, obj.customers.all())


class TeamIn(InputSchema):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=10000)
    lead_id: int | None = None
    member_ids: list[int] = []
    customer_ids: list[int] = []


class TeamPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=10000)
    lead_id: int | None = None
    member_ids: list[int] | None = None
    customer_ids: list[int] | None = None


class TeamFilters(Schema):
    q: str | None = None


_TEAM_REFS = {
    "lead_id": ("lead", User),
    "member_ids": ("members", User),
    "customer_ids": ("customers", Customer),
}


def _team_refs(user: User, data: dict[str, Any]) -> dict[str, Any]:
    return resolve_refs(user, data, _TEAM_REFS)


crud_endpoints(
    router,
    "/teams",
    module=__name__,
    name="team",
    plural="teams",
    tag="teams",
    model=Team,
    out=TeamOut,
    filters=TeamFilters,
    create_in=TeamIn,
    patch_in=TeamPatch,
    list=selectors.team_list,
    get=selectors.team_get,
    create=services.team_create,
    update=services.team_update,
    delete=services.team_delete,
    refs=_team_refs,
)


# Users ---------------------------------------------------------------------------------------


class UserOut(Schema):
    id: int
    username: str
    display_name: str
    email: str
    phone: str
    role: str
    customer_id: int | None
    is_customer_admin: bool
    customer_ids: list[int]
    language: str
    time_zone: str
    is_active: bool
    totp_enabled: bool
    last_login: datetime.datetime | None
    date_joined: datetime.datetime

    @staticmethod
    def resolve_customer_ids(obj: User, context) -> list[int]:
        return visible_ids(context, obj.customers.all())


class UserIn(InputSchema):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    password: str | None = Field(None, min_length=1, max_length=128)
    role: Role
    display_name: str = Field("", max_length=100)
    email: EmailStr | None = None
    phone: str = Field("", max_length=40)
    customer_id: int | None = None
    is_customer_admin: bool = False
    customer_ids: list[int] = []
    language: str = Field("", pattern=r"^(|zh-hans|en)$")
    time_zone: str = Field("Asia/Shanghai", max_length=64)
    is_active: bool = True


class UserPatch(InputSchema):
    role: Role | None = None
    display_name: str | None = Field(None, max_length=100)
    email: EmailStr | None = None
    phone: str | None = Field(None, max_length=40)
    customer_id: int | None = None
    is_customer_admin: bool | None = None
    customer_ids: list[int] | None = None
    language: str | None = Field(None, pattern=r"^(|zh-hans|en)$")
    time_zone: str | None = Field(None, max_length=64)
    is_active: bool | None = None
    password: str | None = Field(None, min_length=1, max_length=128)


class UserFilters(Schema):
    q: str | None = None
    role: Role | None = None
    customer_id: int | None = None
    is_active: bool | None = None


_USER_REFS = {"customer_id": ("customer", Customer), "customer_ids": ("customers", Customer)}


def _user_refs(user: User, data: dict[str, Any]) -> dict[str, Any]:
    resolve_refs(user, data, _USER_REFS)
    if "email" in data:
        data["email"] = data["email"] or ""
    return data


crud_endpoints(
    router,
    "/users",
    module=__name__,
    name="user",
    plural="users",
    tag="users",
    model=User,
    out=UserOut,
    filters=UserFilters,
    create_in=UserIn,
    list=selectors.user_list,
    get=selectors.user_get,
    create=services.user_create,
    delete=services.user_delete,
    refs=_user_refs,
)


# By hand: a new password is set apart from the other fields, in the same transaction.
@router.patch("/users/{int:id}", response=UserOut, tags=["users"])
def update_user(request: HttpRequest, id: int, payload: UserPatch):
    target = selectors.user_get(user=request.user, pk=id)
    require(request.user, "change", target)
    data = _user_refs(request.user, payload.dict(exclude_unset=True))
    password = data.pop("password", None)
    with transaction.atomic():
        target = services.user_update(actor=request.user, user=target, **data)
        if password:
            services.user_set_password(actor=request.user, user=target, password=password)
    return selectors.user_get(user=request.user, pk=id)


# Audit events (read only) --------------------------------------------------------------------


class AuditEventOut(Schema):
    id: int
    occurred_at: datetime.datetime
    actor_id: int | None
    actor_name: str
    source: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    customer_id: int | None
    changes: dict[str, Any]
    ip_address: str | None
    request_id: str


class AuditEventFilters(Schema):
    object_type: str | None = None
    object_id: str | None = None
    actor_id: int | None = None
    action: str | None = None
    source: str | None = None
    customer_id: int | None = None
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None


crud_endpoints(
    router,
    "/audit-events",
    module=__name__,
    name="audit_event",
    plural="audit_events",
    tag="audit",
    model=AuditEvent,
    out=AuditEventOut,
    filters=AuditEventFilters,
    list=selectors.audit_event_list,
    get=selectors.audit_event_get,
    require_view=("list", "get"),
    pagination=NewestFirst,
)


# API tokens ----------------------------------------------------------------------------------


class TokenRequest(InputSchema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=128)
    name: str = Field("", max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=3650)
    otp: str | None = Field(None, max_length=10, description="Current TOTP code, if 2FA is on")


class TokenCreated(Schema):
    id: int
    token: str
    name: str
    expires_at: datetime.datetime | None


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    revoked_at: datetime.datetime | None


@router.post("/auth/tokens", response={201: TokenCreated}, auth=None, tags=["auth"], throttle=[])
def create_token(request: HttpRequest, payload: TokenRequest):
    """Exchanges username, password (and TOTP code) for a personal API token, shown once."""
    try:
        user = authenticate(request, username=payload.username, password=payload.password)
    except AxesBackendPermissionDenied:
        user = None
        locked = True
    else:
        locked = getattr(request, "axes_locked_out", False)
    if locked:
        return problem_response(
            429, _("Too many failed logins; try again later."), code="locked-out"
        )
    if user is None:
        raise HttpError(401, _("Wrong username or password."))
    if user.totp_enabled and not services.totp_verify(user=user, code=payload.otp or ""):
        raise HttpError(401, _("This account needs the current two-factor code in 'otp'."))
    token, raw = services.api_token_create(
        user=user, name=payload.name, expires_in_days=payload.expires_in_days
    )
    return Status(
        201, {"id": token.pk, "token": raw, "name": token.name, "expires_at": token.expires_at}
    )


@router.get("/auth/tokens", response=list[TokenOut], tags=["auth"])
@paginate(Cursor)
def list_tokens(request: HttpRequest):
    return selectors.api_token_list(user=request.user)


@router.delete("/auth/tokens/{int:id}", response={204: None}, tags=["auth"])
def revoke_token(request: HttpRequest, id: int):
    token = selectors.api_token_get(user=request.user, pk=id)
    require(request.user, "delete", token)
    services.api_token_revoke(actor=request.user, token=token)
    return Status(204, None)
