"""The one mechanism that decides which objects a user may see.

Admins and managers see everything. Dispatchers, engineers and sales see the customers they
serve (directly or through a team) and those customers' subsidiaries. A customer user sees
their own company; a customer administrator also sees its subsidiaries. Every queryset that
reaches a user goes through `restrict`.
"""

from __future__ import annotations

from django.db.models import Model, Q, QuerySet

from onestop.core.models import (
    ALL_SEEING_ROLES,
    ApiToken,
    AuditEvent,
    Contact,
    Customer,
    Role,
    Site,
    Team,
    User,
)

_CACHE_ATTR = "_onestop_visible_customer_ids"
MAX_GROUP_DEPTH = 6


def _with_subsidiaries(roots: set[int]) -> set[int]:
    found = set(roots)
    frontier = set(roots)
    for _level in range(MAX_GROUP_DEPTH):
        if not frontier:
            break
        children = set(Customer.objects.filter(parent_id__in=frontier).values_list("pk", flat=True))
        frontier = children - found
        found |= children
    return found


def visible_customer_ids(user: User) -> set[int] | None:
    """The ids of the customers the user may see, or None for all of them."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.role in ALL_SEEING_ROLES:
        return None
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if user.role == Role.CUSTOMER:
        roots = {user.customer_id} if user.customer_id else set()
        ids = _with_subsidiaries(roots) if user.is_customer_admin else roots
    else:
        direct = set(user.customers.values_list("pk", flat=True))
        via_teams = set(
            Team.customers.through.objects.filter(team__members=user).values_list(
                "customer_id", flat=True
            )
        )
        ids = _with_subsidiaries(direct | via_teams)
    setattr(user, _CACHE_ATTR, ids)
    return ids


def forget(user: User) -> None:
    """Drops the cached scope after the user's assignments change."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def _by_customer(queryset: QuerySet, user: User, field: str) -> QuerySet:
    ids = visible_customer_ids(user)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{field}__in": ids})


def restrict(queryset: QuerySet, user: User) -> QuerySet:
    """Narrows any queryset to what the user may see; unknown models see nothing."""
    model = queryset.model
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return queryset.none()
    if model is Customer:
        return _by_customer(queryset, user, "pk")
    if model in (Site, Contact):
        return _by_customer(queryset, user, "customer_id")
    if model is Team:
        return queryset if user.is_provider_staff else queryset.none()
    if model is User:
        return _restrict_users(queryset, user)
    if model is AuditEvent:
        if user.role in ALL_SEEING_ROLES:
            return queryset
        if not user.is_provider_staff:
            return queryset.none()
        return _by_customer(queryset, user, "customer_id")
    if model is ApiToken:
        return queryset.filter(user=user)
    custom = getattr(model, "scope_filter", None)
    if custom is not None:
        condition = custom(user, visible_customer_ids(user))
        return queryset if condition is None else queryset.filter(condition).distinct()
    if getattr(model, "scope_provider_wide", False):
        # The provider's own configuration (calendars, SLA policies): staff only.
        return queryset if user.is_provider_staff else queryset.none()
    scope_field = getattr(model, "scope_customer_field", None)
    if scope_field:
        queryset = _by_customer(queryset, user, scope_field)
        own = getattr(model, "scope_own_records", None)
        if own is not None and user.role == Role.CUSTOMER and not user.is_customer_admin:
            # A plain customer user sees only their own records; their admin sees the company's.
            queryset = queryset.filter(own(user))
        return queryset
    return queryset.none()


def _restrict_users(queryset: QuerySet, user: User) -> QuerySet:
    ids = visible_customer_ids(user)
    if ids is None:
        return queryset
    if user.is_provider_staff:
        return queryset.filter(~Q(role=Role.CUSTOMER) | Q(customer_id__in=ids))
    if user.is_customer_admin:
        return queryset.filter(role=Role.CUSTOMER, customer_id__in=ids)
    return queryset.filter(pk=user.pk)


def is_visible(user: User, obj: Model) -> bool:
    return restrict(type(obj)._default_manager.filter(pk=obj.pk), user).exists()
