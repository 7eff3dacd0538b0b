"""Periodic jobs of monitoring; each only calls a service."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from onestop.monitoring import services


@db_periodic_task(crontab(minute="*"))
@lock_task("monitoring-templates")
def device_templates_apply() -> int:
    """Every minute: new and changed devices get the checks of the templates that match them."""
    return services.device_events_apply_templates()


@db_task()
def discovery_job_run(job_id: int) -> str | None:
    """Runs one SNMP discovery right after it was created (a job that is not queued any more,
    e.g. already run by another worker, is left alone). Returns its final status."""
    job = services.discovery_job_run(job_id=job_id)
    return job.status if job is not None else None


@db_periodic_task(crontab(minute="*/5"))
@lock_task("monitoring-discovery-recover")
def discovery_jobs_recover() -> dict[str, int]:
    """Every five minutes: discoveries whose worker stopped are marked failed, queued ones
    whose wake-up was lost are started."""
    return services.discovery_jobs_recover()


@db_periodic_task(crontab(minute="*"))
@lock_task("monitoring-agent-checks")
def agent_checks_evaluate() -> int:
    """Every minute: agent-metric checks judge the newest samples their agents reported."""
    return services.agent_checks_evaluate()
