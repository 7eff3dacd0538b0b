"""Every write to the asset register: devices by hand or from an agent, and inventory updates
with their change history."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from onestop.assets.models import Device, InventoryChange
from onestop.core import audit
from onestop.core.models import Customer, Site, User
from onestop.core.services import object_delete

DEVICE_FIELDS = (
    "name",
    "kind",
    "site",
    "hostname",
    "vendor",
    "model",
    "serial",
    "os_name",
    "os_version",
    "cpu_model",
    "memory_bytes",
    "ip_address",
    "mac_address",
    "contract",
    "warranty_end",
    "tags",
    "notes",
)
# Inventory fields copied onto the device, by (device field, path in the agent's inventory).
INVENTORY_FIELDS = (
    ("hostname", ("hostname",)),
    ("os_name", ("os", "name")),
    ("os_version", ("os", "version")),
    ("cpu_model", ("cpu", "model")),
    ("memory_bytes", ("memory_bytes",)),
    ("vendor", ("vendor",)),
    ("model", ("model",)),
    ("serial", ("serial",)),
)
MAX_SOFTWARE = 5000


def _check_device(device: Device) -> None:
    errors = {}
    if device.site_id and device.site.customer_id != device.customer_id:
        errors["site"] = _("The site belongs to another customer.")
    if device.contract_id and device.contract.customer_id != device.customer_id:
        errors["contract"] = _("The contract belongs to another customer.")
    if not isinstance(device.tags, list) or not all(
        isinstance(tag, str) and 0 < len(tag) <= 50 for tag in device.tags
    ):
        errors["tags"] = _("Tags are short words.")
    if errors:
        raise ValidationError(errors)
    device.tags = sorted({tag.strip() for tag in device.tags})
    device.full_clean(exclude=["customer", "site", "contract"])


@transaction.atomic
def device_create(
    *,
    actor: User | None,
    customer: Customer,
    name: str,
    source: str = Device.Source.MANUAL,
    **fields: Any,
) -> Device:
    """A device of a customer (by hand, import, discovery or a newly enrolled agent)."""
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a device")
    device = Device(customer=customer, name=name.strip(), source=source, **fields)
    _check_device(device)
    device.save()
    audit.record_created(actor=actor, obj=device)
    return device


@transaction.atomic
def device_update(*, actor: User | None, device: Device, **fields: Any) -> Device:
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a device")
    before = audit.snapshot(device)
    for name, value in fields.items():
        setattr(device, name, value.strip() if isinstance(value, str) else value)
    _check_device(device)
    device.save()
    audit.record_updated(actor=actor, obj=device, before=before)
    return device


@transaction.atomic
def device_delete(*, actor: User | None, device: Device) -> None:
    object_delete(actor=actor, obj=device)


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _primary_nic(inventory: dict[str, Any]) -> tuple[str | None, str]:
    """The first NIC's first routable address and its MAC: what people look a device up by."""
    for nic in inventory.get("nics") or []:
        for raw in nic.get("ips") or []:
            try:
                address = ipaddress.ip_address(str(raw).split("/")[0])
            except ValueError:
                continue
            if not (address.is_loopback or address.is_link_local):
                return str(address), str(nic.get("mac") or "")[:17]
    return None, ""


def _keyed(items: Any, key: str, value: str) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {
        str(item.get(key))[:200]: str(item.get(value) or "")[:200]
        for item in items[:MAX_SOFTWARE]
        if isinstance(item, dict) and item.get(key)
    }


def _inventory_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(item, kind, before, after) for each difference between two inventories."""
    changes: list[tuple[str, str, str, str]] = []
    for field, path in INVENTORY_FIELDS:
        before, after = _dig(old, path), _dig(new, path)
        if after is not None and before is not None and str(before) != str(after):
            changes.append((field, InventoryChange.Kind.CHANGED, str(before), str(after)))
    for label, key, value in (
        ("software", "name", "version"),
        ("disk", "mount", "total_bytes"),
        ("nic", "name", "mac"),
    ):
        collection = {"software": "software", "disk": "disks", "nic": "nics"}[label]
        if collection not in new:
            continue  # the agent could not read it this time: nothing was removed
        before, after = _keyed(old.get(collection), key, value), _keyed(new[collection], key, value)
        for name in sorted(after.keys() - before.keys()):
            changes.append((f"{label}: {name}", InventoryChange.Kind.ADDED, "", after[name]))
        for name in sorted(before.keys() - after.keys()):
            changes.append((f"{label}: {name}", InventoryChange.Kind.REMOVED, before[name], ""))
        for name in sorted(before.keys() & after.keys()):
            if before[name] != after[name]:
                changes.append(
                    (f"{label}: {name}", InventoryChange.Kind.CHANGED, before[name], after[name])
                )
    return changes


@transaction.atomic
def device_inventory_apply(*, device: Device, inventory: dict[str, Any], at: dt.datetime) -> int:
    """Stores an agent's inventory on the device and records what changed since the last one
    (the first inventory is the baseline). Returns the number of changes."""
    changes = _inventory_changes(device.inventory or {}, inventory) if device.inventory_at else []
    for field, path in INVENTORY_FIELDS:
        value = _dig(inventory, path)
        if value is None:
            continue
        if field == "memory_bytes":
            value = int(value) if isinstance(value, int | float) and value >= 0 else None
        else:
            value = str(value)[: Device._meta.get_field(field).max_length]
        setattr(device, field, value)
    address, mac = _primary_nic(inventory)
    if address:
        device.ip_address, device.mac_address = address, mac
    device.inventory, device.inventory_at = inventory, at
    device.save()
    InventoryChange.objects.bulk_create(
        InventoryChange(
            device=device, at=at, item=item[:100], kind=kind, before=before[:500], after=after[:500]
        )
        for item, kind, before, after in changes
    )
    return len(changes)


def device_for_site(*, site: Site, name: str, kind: str = Device.Kind.DESKTOP) -> Device:
    """A new device at a site, for an agent enrolling there."""
    return device_create(
        actor=None,
        customer=site.customer,
        site=site,
        name=name,
        kind=kind,
        source=Device.Source.AGENT,
    )
