"""Periodic jobs of notify; each only calls a service."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from onestop.notify import services


@db_periodic_task(crontab(minute="*"))
@lock_task("notify-dispatch")
def notifications_dispatch() -> int:
    """Every minute: notifies the recipients of new domain events (idempotent)."""
    return services.notifications_dispatch()


@db_periodic_task(crontab(minute="*"))
@lock_task("notify-deliver")
def deliveries_run() -> dict[str, int]:
    """Every minute: plans the deliveries of new events to channels, then sends those due.
    The lock keeps two workers from sending the same delivery at once."""
    planned = services.deliveries_plan()
    return {"planned": planned, **services.deliveries_send()}
