"""Periodic jobs of the core app; each only calls a service."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from onestop.core import retention


# Huey's schedule runs in UTC: 19:17 UTC is 03:17 in Shanghai, when nobody is working.
@db_periodic_task(crontab(hour="19", minute="17"))
def audit_events_prune() -> int:
    """Nightly: drops audit events older than ONESTOP_AUDIT_RETENTION_DAYS."""
    return retention.audit_events_prune()
