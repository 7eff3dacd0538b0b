"""The main menu as a registry. Each app adds its entries from its AppConfig.ready(), so core
draws the menu without importing the apps built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Model

from onestop.core.models import User
from onestop.core.permissions import can


@dataclass(frozen=True)
class NavItem:
    """One menu entry: `key` is also the URL-name prefix of its pages (customer_detail …)."""

    key: str
    label: Any
    url_name: str
    model: type[Model]
    order: int

    def covers(self, url_name: str) -> bool:
        return url_name.startswith(f"{self.key}_")


_items: dict[str, NavItem] = {}


def register(*, key: str, label: Any, url_name: str, model: type[Model], order: int) -> None:
    """Adds a menu entry shown to users who may view `model`; a second call with a key replaces
    the first, so a repeated ready() adds nothing twice."""
    _items[key] = NavItem(key=key, label=label, url_name=url_name, model=model, order=order)


def items_for(user: User) -> list[NavItem]:
    """The entries the user may see, in menu order."""
    ordered = sorted(_items.values(), key=lambda item: (item.order, item.key))
    return [item for item in ordered if can(user, "view", item.model)]


_detail_urls: dict[str, str] = {}


def register_detail(*, object_type: str, url_name: str) -> None:
    """Names the detail page of a model (by its label, e.g. "servicedesk.ticket"), so the audit
    log can link to objects of apps core does not import."""
    _detail_urls[object_type] = url_name


def detail_url_name(object_type: str) -> str | None:
    return _detail_urls.get(object_type)
