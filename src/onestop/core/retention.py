"""Pruning of audit events past the retention period (ONESTOP_AUDIT_RETENTION_DAYS)."""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from onestop.core.models import AuditEvent

logger = logging.getLogger(__name__)

# The promise made to customers; on PostgreSQL a trigger (core migration 0002) enforces it too.
RETENTION_FLOOR_DAYS = 180
# Small batches keep each write transaction short, so SQLite's other writers never wait long.
PRUNE_BATCH_SIZE = 2000


def audit_events_prune(*, now: datetime.datetime | None = None) -> int:
    """Deletes audit events older than the retention period; returns how many went."""
    days = settings.ONESTOP_AUDIT_RETENTION_DAYS
    if days < RETENTION_FLOOR_DAYS:
        raise ValueError(f"audit retention must be at least {RETENTION_FLOOR_DAYS} days")
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    expired = AuditEvent.objects.filter(occurred_at__lt=cutoff).order_by()
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(expired.values_list("pk", flat=True)[:PRUNE_BATCH_SIZE])
            if not batch:
                break
            # The append-only manager refuses .delete(); this is the one sanctioned way past it.
            doomed = AuditEvent.objects.filter(pk__in=batch)
            deleted += doomed._raw_delete(doomed.db)
    if deleted:
        logger.info("pruned %d audit events older than %s", deleted, cutoff.isoformat())
    return deleted
