"""Template helpers for core pages: labels for stored codes, audit changes, the 2FA QR code."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import qrcode
import qrcode.image.svg
from django import template
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from onestop.core import navigation
from onestop.core.models import AuditEvent, ServiceLine

register = template.Library()


@register.filter
def service_line_labels(codes: list[str] | None) -> list[str]:
    labels = dict(ServiceLine.choices)
    return [str(labels.get(code, code)) for code in codes or []]


@register.filter
def audit_object_url(event: AuditEvent) -> str:
    """The page of the changed object, or "" when it has none (or no longer exists)."""
    name = navigation.detail_url_name(event.object_type)
    if not name or not event.object_id or event.action == AuditEvent.Action.DELETE:
        return ""
    return reverse(name, args=[event.object_id])


@register.filter
def audit_object_type(event: AuditEvent) -> str:
    try:
        return capfirst(apps.get_model(event.object_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return event.object_type


def _show(field: Any, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_show(None, item) for item in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_show(None, item)}" for key, item in value.items()) or "—"
    if isinstance(field, models.DateTimeField) and isinstance(value, str):
        try:
            instant = datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
        # Stored in UTC; shown in the zone the page is rendered in, like every other time.
        return date_format(timezone.localtime(instant), "Y-m-d H:i")
    choices = dict(field.flatchoices) if field is not None and field.choices else {}
    return str(choices.get(value, value))


@register.filter
def audit_changes(event: AuditEvent) -> list[dict[str, str]]:
    """The event's field changes as label, before and after, ready to show.

    A creation has no "before" worth showing and a deletion no "after"; `kind` says which.
    """
    try:
        model = apps.get_model(event.object_type)
    except (LookupError, ValueError):
        model = None
    rows = []
    for name, (before, after) in (event.changes or {}).items():
        if name == "id":
            continue  # the event names its object already
        try:
            field = model._meta.get_field(name) if model else None
        except FieldDoesNotExist:
            field = None
        if field is not None and field.auto_created and not field.concrete:
            field = None  # a reverse relation (e.g. an SLA policy's targets) has no label
        label = capfirst(field.verbose_name) if field is not None else name
        if name == "service_lines":
            before, after = service_line_labels(before), service_line_labels(after)
        rows.append(
            {
                "field": label,
                "before": _show(field, before),
                "after": _show(field, after),
                "kind": event.action,
            }
        )
    return rows


@register.filter
def qr_data_uri(text: str) -> str:
    """A QR code of `text` as an SVG data URI, so it needs no file and no inline markup."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
