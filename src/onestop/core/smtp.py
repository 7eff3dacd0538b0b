"""How a failed SMTP send is judged, the same for ticket replies and notification emails."""

from __future__ import annotations

import smtplib
from typing import Any


def smtp_failure(exc: Exception) -> tuple[bool, str]:
    """(permanent, reason) of a failed send: 5xx answers are permanent; 4xx answers, lost
    connections and unreachable servers are tried again later."""

    def text(value: Any) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = exc.recipients.items()
        reason = "; ".join(f"{to}: {code} {text(why)}" for to, (code, why) in refusals)
        return all(code >= 500 for _to, (code, _why) in refusals), reason
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500, f"{exc.smtp_code} {text(exc.smtp_error)}"
    return False, f"{type(exc).__name__}: {exc}"
