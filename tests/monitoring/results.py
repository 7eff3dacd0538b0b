"""One check result at a time, as tests feed them (production records them in batches through
`services.check_results_record`)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from onestop.monitoring import services
from onestop.monitoring.models import RESULT_FIELDS, Check, CheckStateChange
from onestop.monitoring.probes.base import Note


def record_result(
    *,
    check: Check,
    value: float | None,
    status: str | None = None,
    message: Note | None = None,
    at: dt.datetime | None = None,
) -> CheckStateChange | None:
    """Feeds one result to the check's state engine and updates `check` in place; returns the
    change, or None."""
    result = services.CheckResult(check.pk, at or timezone.now(), value, status, message)
    changes = services.check_results_record(results=[result])
    check.refresh_from_db(fields=RESULT_FIELDS)
    return changes[0] if changes else None
