"""Test data built through the services, so tests see what users see (audited, validated)."""

from __future__ import annotations

import itertools

from onestop.core import services
from onestop.core.models import Contact, Customer, Site, Team, User

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-9"


def customer(**fields) -> Customer:
    n = next(_seq)
    fields.setdefault("name", f"测试客户{n}")
    fields.setdefault("short_code", f"C{n:04d}")
    return services.customer_create(actor=None, **fields)


def site(customer_obj: Customer | None = None, **fields) -> Site:
    n = next(_seq)
    fields.setdefault("name", f"办公室{n}")
    return services.site_create(actor=None, customer=customer_obj or customer(), **fields)


def contact(customer_obj: Customer | None = None, **fields) -> Contact:
    n = next(_seq)
    fields.setdefault("name", f"联系人{n}")
    fields.setdefault("email", f"contact{n}@example.cn")
    return services.contact_create(actor=None, customer=customer_obj or customer(), **fields)


def user(role: str = "engineer", *, customers=(), password: str = PASSWORD, **fields) -> User:
    n = next(_seq)
    fields.setdefault("username", f"{role}{n}")
    if role == "customer" and "customer" not in fields:
        fields["customer"] = customer()
    return services.user_create(
        actor=None, role=role, password=password, customers=list(customers), **fields
    )


def team(*, members=(), customers=(), **fields) -> Team:
    n = next(_seq)
    fields.setdefault("name", f"团队{n}")
    return services.team_create(
        actor=None, members=list(members), customers=list(customers), **fields
    )
