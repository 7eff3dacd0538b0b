"""How notify learns who should hear of an event without importing the app that raised it.

An app registers, for its object type, a function that names the recipients of an event about
one of its objects (e.g. the service desk: a ticket's assignee, team and watchers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from onestop.core.models import DomainEvent, User


@dataclass(frozen=True)
class Recipients:
    users: Iterable[User]
    subject: str  # what the event is about, e.g. "#42 打印机卡纸"
    url: str = ""
    # What notification rules filter on, and a line or two for messages outside the app.
    team_id: int | None = None
    priority: str = ""
    details: str = ""


Resolver = Callable[[DomainEvent], Recipients | None]

_resolvers: dict[str, Resolver] = {}


def register_recipients(*, object_type: str, resolver: Resolver) -> None:
    _resolvers[object_type] = resolver


def resolver_for(object_type: str) -> Resolver | None:
    return _resolvers.get(object_type)
