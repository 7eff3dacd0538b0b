"""Reads of core objects, always narrowed to what the user may see (core.scoping)."""

from __future__ import annotations

from typing import Any

import pyotp
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from onestop.core import crypto
from onestop.core.models import ApiToken, AuditEvent, Contact, Customer, Role, Site, Team, User
from onestop.core.scoping import restrict
from onestop.core.search import apply_search


def get_visible(queryset: QuerySet, user: User, pk: Any) -> Any:
    """One object the user may see, or Http404 (never 403: existence is not revealed)."""
    try:
        return restrict(queryset, user).get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def customer_list(
    *,
    user: User,
    q: str | None = None,
    status: str | None = None,
    industry: str | None = None,
    service_line: str | None = None,
    parent_id: int | None = None,
) -> QuerySet[Customer]:
    qs = restrict(Customer.objects.select_related("parent"), user)
    qs = apply_search(qs, q)
    if status:
        qs = qs.filter(status=status)
    if industry:
        qs = qs.filter(industry=industry)
    if service_line:
        # JSON containment differs between SQLite and PostgreSQL; the quoted code matches both.
        qs = qs.filter(service_lines__icontains=f'"{service_line}"')
    if parent_id:
        qs = qs.filter(parent_id=parent_id)
    return qs


def customer_get(*, user: User, pk: Any) -> Customer:
    return get_visible(Customer.objects.select_related("parent"), user, pk)


def customer_choices(*, user: User) -> QuerySet[Customer]:
    return restrict(Customer.objects.only("pk", "name", "short_code"), user)


def site_list(
    *, user: User, q: str | None = None, customer_id: int | None = None
) -> QuerySet[Site]:
    qs = restrict(Site.objects.select_related("customer"), user)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(address__icontains=q) | Q(city__icontains=q))
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    return qs


def site_get(*, user: User, pk: Any) -> Site:
    return get_visible(Site.objects.select_related("customer"), user, pk)


def contact_list(
    *,
    user: User,
    q: str | None = None,
    customer_id: int | None = None,
    site_id: int | None = None,
    is_vip: bool | None = None,
) -> QuerySet[Contact]:
    qs = restrict(Contact.objects.select_related("customer", "site"), user)
    qs = apply_search(qs, q)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if site_id:
        qs = qs.filter(site_id=site_id)
    if is_vip is not None:
        qs = qs.filter(is_vip=is_vip)
    return qs


def contact_get(*, user: User, pk: Any) -> Contact:
    return get_visible(Contact.objects.select_related("customer", "site"), user, pk)


def team_list(*, user: User, q: str | None = None) -> QuerySet[Team]:
    qs = restrict(
        Team.objects.select_related("lead").annotate(member_count=Count("members", distinct=True)),
        user,
    ).prefetch_related("members", "customers")
    if q:
        qs = qs.filter(name__icontains=q)
    return qs


def team_get(*, user: User, pk: Any) -> Team:
    return get_visible(
        Team.objects.select_related("lead").prefetch_related("members", "customers"), user, pk
    )


def user_list(
    *,
    user: User,
    q: str | None = None,
    role: str | None = None,
    customer_id: int | None = None,
    is_active: bool | None = None,
) -> QuerySet[User]:
    qs = restrict(User.objects.select_related("customer"), user).prefetch_related("customers")
    qs = apply_search(qs, q)
    if role:
        qs = qs.filter(role=role)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    return qs


def user_get(*, user: User, pk: Any) -> User:
    return get_visible(
        User.objects.select_related("customer").prefetch_related("customers", "teams"), user, pk
    )


def audit_event_list(
    *,
    user: User,
    object_type: str | None = None,
    object_id: str | None = None,
    actor_id: int | None = None,
    action: str | None = None,
    source: str | None = None,
    customer_id: int | None = None,
    since: Any = None,
    until: Any = None,
) -> QuerySet[AuditEvent]:
    qs = restrict(AuditEvent.objects.all(), user)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=str(object_id))
    if actor_id:
        qs = qs.filter(actor_id=actor_id)
    if action:
        qs = qs.filter(action=action)
    if source:
        qs = qs.filter(source=source)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if since:
        qs = qs.filter(occurred_at__gte=since)
    if until:
        qs = qs.filter(occurred_at__lt=until)
    return qs


def audit_event_get(*, user: User, pk: Any) -> AuditEvent:
    return get_visible(AuditEvent.objects.all(), user, pk)


def audit_history(*, user: User, obj: Any) -> QuerySet[AuditEvent]:
    """The audit events of one object, newest first."""
    return audit_event_list(user=user, object_type=obj._meta.label_lower, object_id=str(obj.pk))[
        :100
    ]


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    return restrict(ApiToken.objects.all(), user)


def api_token_get(*, user: User, pk: Any) -> ApiToken:
    return get_visible(ApiToken.objects.all(), user, pk)


# Web UI reads --------------------------------------------------------------------------------


def staff_choices(*, user: User) -> QuerySet[User]:
    """Active provider staff the user may see, for team lead and member pickers."""
    return restrict(User.objects.exclude(role=Role.CUSTOMER).filter(is_active=True), user)


def customer_teams(*, user: User, customer: Customer) -> QuerySet[Team]:
    """The teams serving a customer."""
    return restrict(Team.objects.filter(customers=customer).select_related("lead"), user)


def customer_staff(*, user: User, customer: Customer) -> QuerySet[User]:
    """Staff serving a customer directly or through one of its teams."""
    qs = User.objects.filter(Q(customers=customer) | Q(teams__customers=customer))
    return restrict(qs.exclude(role=Role.CUSTOMER).distinct(), user)


def user_for_login(*, username: str) -> User | None:
    """The account a login attempt names, so a failed attempt can be audited against it."""
    return User.objects.filter(username=username).first() if username else None


def user_totp_pending(*, user: User, issuer: str = "OneStop") -> dict[str, str] | None:
    """The secret and authenticator URI of a begun, unconfirmed two-factor setup, else None."""
    if user.totp_enabled or not user.totp_secret:
        return None
    secret = crypto.decrypt(user.totp_secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.get_username(), issuer_name=issuer)
    return {"secret": secret, "uri": uri}
