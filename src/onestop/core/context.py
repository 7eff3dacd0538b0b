"""Who is acting and through which door (UI, API, CLI, system), for the audit trail.

Set once per request by middleware, per API call by the API, per command by the CLI; services
read it so that they do not need a request object.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ActionContext:
    source: str = "system"
    ip_address: str | None = None
    request_id: str = ""


_DEFAULT = ActionContext()
_current: contextvars.ContextVar[ActionContext | None] = contextvars.ContextVar(
    "onestop_action_context", default=None
)


def current() -> ActionContext:
    return _current.get() or _DEFAULT


@contextmanager
def acting(source: str, *, ip_address: str | None = None, request_id: str = "") -> Iterator[None]:
    token = _current.set(
        ActionContext(
            source=source, ip_address=ip_address, request_id=request_id or str(uuid.uuid4())
        )
    )
    try:
        yield
    finally:
        _current.reset(token)
