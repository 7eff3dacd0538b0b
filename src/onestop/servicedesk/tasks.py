"""Periodic jobs of the service desk; each only calls a service."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, lock_task
from huey.exceptions import TaskLockedException

from onestop.notify import tasks as notify_tasks
from onestop.servicedesk import selectors, services


@db_periodic_task(crontab(minute="*"))
@lock_task("servicedesk-sla-sweep")
def sla_sweep() -> dict[str, int]:
    """Every minute: SLA warnings and breaches (idempotent, so a missed minute loses nothing)."""
    counts = services.sla_sweep()
    if any(counts.values()):
        # Warnings and breaches go out to their channels now, not at notify's next minute.
        notify_tasks.deliveries_run()
    return counts


@db_periodic_task(crontab(minute="*"))
@lock_task("servicedesk-recurring-tickets")
def recurring_tickets_run() -> int:
    """Every minute: opens the scheduled tickets whose time has come."""
    return services.recurring_tickets_run()


@db_periodic_task(crontab(minute="*"))
def mailboxes_poll() -> int:
    """Every minute: one poll per active mailbox, each its own task, so a slow server does not
    hold up the others. Returns how many were started."""
    mailbox_ids = list(selectors.mailbox_active_ids())
    for mailbox_id in mailbox_ids:
        mailbox_poll(mailbox_id)
    return len(mailbox_ids)


@db_task()
def mailbox_poll(mailbox_id: int) -> dict[str, int] | None:
    """Polls one mailbox; the per-mailbox lock keeps two polls of it from filing the same
    message at once (the Message-ID would catch that too, but one would then be rejected)."""
    try:
        with HUEY.lock_task(f"servicedesk-mailbox-{mailbox_id}"):
            mailbox = selectors.mailbox_active(pk=mailbox_id)
            if mailbox is None:
                return None
            return services.mailbox_poll(mailbox=mailbox)
    except TaskLockedException:
        return None  # the previous poll is still running; the next minute tries again


@db_task()
@lock_task("servicedesk-ticket-email")
def ticket_email_send(entry_id: int) -> str:
    """Sends one reply email right after the reply is saved. If the sweep holds the lock, the
    task stops here and the sweep (or its next run) sends the mail."""
    return services.ticket_email_send(entry_id=entry_id)


@db_periodic_task(crontab(minute="*"))
@lock_task("servicedesk-ticket-email")
def ticket_emails_send() -> dict[str, int]:
    """Every minute: reply emails still pending (the worker was down) or due for a retry."""
    return services.ticket_emails_send()
