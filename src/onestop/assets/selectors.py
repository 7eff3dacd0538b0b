"""Reads of the asset register, scoped to the user."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from onestop.assets.models import Device, InventoryChange
from onestop.core.models import User
from onestop.core.scoping import restrict
from onestop.core.selectors import get_visible


def device_list(
    *,
    user: User,
    q: str | None = None,
    customer_id: int | None = None,
    site_id: int | None = None,
    kind: str | None = None,
) -> QuerySet[Device]:
    qs = restrict(Device.objects.select_related("customer", "site"), user)
    if q:
        qs = qs.filter(
            Q(name__icontains=q)
            | Q(hostname__icontains=q)
            | Q(serial__icontains=q)
            | Q(ip_address__startswith=q)
        )
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if site_id:
        qs = qs.filter(site_id=site_id)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def device_get(*, user: User, pk: Any) -> Device:
    return get_visible(Device.objects.select_related("customer", "site", "contract"), user, pk)


def inventory_change_list(*, user: User, device: Device) -> QuerySet[InventoryChange]:
    return restrict(InventoryChange.objects.filter(device=device), user)
