"""Periodic jobs of the service desk; each only calls a service."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from onestop.servicedesk import services


@db_periodic_task(crontab(minute="*"))
@lock_task("servicedesk-sla-sweep")
def sla_sweep() -> dict[str, int]:
    """Every minute: SLA warnings and breaches (idempotent, so a missed minute loses nothing)."""
    return services.sla_sweep()


@db_periodic_task(crontab(minute="*"))
@lock_task("servicedesk-recurring-tickets")
def recurring_tickets_run() -> int:
    """Every minute: opens the scheduled tickets whose time has come."""
    return services.recurring_tickets_run()
