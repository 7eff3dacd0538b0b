"""The nightly audit retention job prunes exactly the events past the retention period."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.utils import timezone

from onestop.core import retention, tasks
from onestop.core.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def _events_aged(days: int) -> set[int]:
    """Writes audit events (through a service) as if `days` ago; returns their ids."""
    then = timezone.now() - datetime.timedelta(days=days)
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    with mock.patch("django.utils.timezone.now", return_value=then):
        factories.contact(name=f"联系人{days}")
    return set(AuditEvent.objects.values_list("pk", flat=True)) - before


def test_prune_removes_only_events_older_than_the_retention(settings):
    settings.ONESTOP_AUDIT_RETENTION_DAYS = 200
    old = _events_aged(201)
    kept = _events_aged(199) | _events_aged(0)

    assert retention.audit_events_prune() == len(old)

    remaining = set(AuditEvent.objects.values_list("pk", flat=True))
    assert remaining & old == set()
    assert kept <= remaining


def test_prune_works_in_batches(settings, monkeypatch):
    settings.ONESTOP_AUDIT_RETENTION_DAYS = 180
    monkeypatch.setattr(retention, "PRUNE_BATCH_SIZE", 1)
    old = _events_aged(181) | _events_aged(190)
    assert len(old) > 1

    assert retention.audit_events_prune() == len(old)
    assert not AuditEvent.objects.filter(pk__in=old).exists()


def test_prune_refuses_a_retention_below_the_floor(settings):
    settings.ONESTOP_AUDIT_RETENTION_DAYS = 30
    with pytest.raises(ValueError, match="180"):
        retention.audit_events_prune()


def test_periodic_task_calls_the_prune(settings):
    settings.ONESTOP_AUDIT_RETENTION_DAYS = 365
    old = _events_aged(400)

    assert tasks.audit_events_prune.call_local() == len(old)
    assert not AuditEvent.objects.filter(pk__in=old).exists()


def test_task_runs_nightly():
    task = tasks.audit_events_prune.task_class()
    assert task.validate_datetime(datetime.datetime(2025, 3, 1, 19, 17))
    assert not task.validate_datetime(datetime.datetime(2025, 3, 1, 12, 0))
