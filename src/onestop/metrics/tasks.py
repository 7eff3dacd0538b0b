"""Periodic jobs of the metric store; each only calls a service."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from onestop.metrics import services


@db_periodic_task(crontab(minute="*/10"))
@lock_task("metrics-maintain")
def store_maintain() -> dict[str, int]:
    """Every 10 minutes: compacts the buffer, rolls up closed days, drops expired data."""
    return services.store_maintain()
