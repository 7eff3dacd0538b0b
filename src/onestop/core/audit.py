"""Audit events and domain events, written inside the caller's transaction."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import uuid
from typing import Any

from django.db import models
from django.db.models.fields.files import FieldFile

from onestop.core import context
from onestop.core.crypto import MASK
from onestop.core.models import AuditEvent, DomainEvent, User

Snapshot = dict[str, Any]


class _Secret:
    """A secret's value kept only to compare before/after; it is written out as the mask."""

    __slots__ = ("_digest", "is_set")

    def __init__(self, value: Any) -> None:
        self.is_set = bool(value)
        self._digest = hashlib.sha256(str(value).encode()).digest() if value else b""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Secret) and other._digest == self._digest

    def __hash__(self) -> int:
        return hash(self._digest)


def _public(value: Any) -> Any:
    if isinstance(value, _Secret):
        return MASK if value.is_set else ""
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, FieldFile):
        return value.name or ""
    return value


def snapshot(obj: models.Model) -> Snapshot:
    """The object's audited fields as JSON-ready values (secrets masked, M2M as sorted ids)."""
    excluded = set(getattr(obj, "audit_exclude", ())) | {"created_at", "updated_at"}
    secret = set(getattr(obj, "audit_secret", ()))
    data: Snapshot = {}
    for field in obj._meta.concrete_fields:
        if field.name in excluded:
            continue
        value = getattr(obj, field.attname)
        data[field.name] = _Secret(value) if field.name in secret else _plain(value)
    if obj.pk:
        for field in obj._meta.many_to_many:
            if field.name in excluded:
                continue
            data[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return data


def diff(before: Snapshot, after: Snapshot) -> dict[str, list[Any]]:
    """Changed fields as {field: [before, after]}; a changed secret shows as masked on both."""
    changes = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            changes[key] = [_public(old), _public(new)]
    return changes


def _customer_id(obj: models.Model) -> int | None:
    value = getattr(obj, "customer_id", None)
    return int(value) if value is not None else None


def record(
    *,
    actor: User | None,
    action: str,
    obj: models.Model,
    changes: dict[str, Any],
    event: str | None = None,
    object_id: Any = None,
) -> AuditEvent:
    """Appends the audit event and, if named, the domain event for one change."""
    ctx = context.current()
    object_type = obj._meta.label_lower
    pk = str(object_id if object_id is not None else obj.pk)
    customer_id = _customer_id(obj)
    audit_event = AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=(actor.get_username() if actor is not None else "system"),
        source=ctx.source,
        action=action,
        object_type=object_type,
        object_id=pk,
        object_repr=str(obj)[:200],
        customer_id=customer_id,
        changes=changes,
        ip_address=ctx.ip_address,
        request_id=ctx.request_id,
    )
    if event:
        DomainEvent.objects.create(
            name=event,
            object_type=object_type,
            object_id=pk,
            customer_id=customer_id,
            payload={"changes": changes, "actor_id": audit_event.actor_id},
        )
    return audit_event


def created_changes(obj: models.Model) -> dict[str, list[Any]]:
    """The fields of a new object as {field: [None, value]}, empty ones left out."""
    return {
        key: [None, _public(value)]
        for key, value in snapshot(obj).items()
        if _public(value) not in (None, "", [])
    }


def record_created(*, actor: User | None, obj: models.Model) -> AuditEvent:
    changes = created_changes(obj)
    return record(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        obj=obj,
        changes=changes,
        event=f"{obj._meta.model_name}.created",
    )


def record_updated(*, actor: User | None, obj: models.Model, before: Snapshot) -> AuditEvent | None:
    """Records the update, or nothing when no audited field changed."""
    changes = diff(before, snapshot(obj))
    if not changes:
        return None
    return record(
        actor=actor,
        action=AuditEvent.Action.UPDATE,
        obj=obj,
        changes=changes,
        event=f"{obj._meta.model_name}.updated",
    )


def record_deleted(
    *, actor: User | None, obj: models.Model, before: Snapshot, object_id: Any
) -> AuditEvent:
    changes = {
        key: [_public(value), None]
        for key, value in before.items()
        if _public(value) not in (None, "", [])
    }
    return record(
        actor=actor,
        action=AuditEvent.Action.DELETE,
        obj=obj,
        changes=changes,
        event=f"{obj._meta.model_name}.deleted",
        object_id=object_id,
    )
