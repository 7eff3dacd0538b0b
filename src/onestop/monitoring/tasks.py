"""Periodic jobs of monitoring; each only calls a service."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from onestop.monitoring import services


@db_periodic_task(crontab(minute="*"))
@lock_task("monitoring-templates")
def device_templates_apply() -> int:
    """Every minute: new and changed devices get the checks of the templates that match them."""
    return services.device_events_apply_templates()
