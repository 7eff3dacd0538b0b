"""Liveness of the parts OneStop needs: the database and the job queue."""

from __future__ import annotations

from django.db import connection
from huey.contrib.djhuey import HUEY


def check_database() -> str | None:
    """None when the database answers, else a one-line reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"database: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def check_queue() -> str | None:
    """None when the job queue's storage answers, else a one-line reason."""
    try:
        HUEY.storage.queue_size()
    except Exception as exc:
        return f"queue: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def problems() -> dict[str, str]:
    found = {}
    for name, check in (("database", check_database), ("queue", check_queue)):
        reason = check()
        if reason:
            found[name] = reason
    return found
