"""Generic API test support: resources are declared once, the tests in
tests/core/test_api_resources.py and test_api_scoping.py walk every declaration.

Each declaration says how to make an object that belongs to a given customer, a valid create
payload, a valid patch, the list filters to check, and which role is refused a write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.test import Client

from onestop.core import services
from onestop.core.models import Customer


def api_client(user) -> Client:
    """A client authenticated with a real personal API token (the Bearer path)."""
    _token, raw = services.api_token_create(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def call(client: Client, method: str, path: str, body: Any = None, **query) -> Any:
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    if query:
        path = path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    response = getattr(client, method)(path, **kwargs)
    response.body = response.json() if response.content else None
    return response


@dataclass
class Resource:
    """One API resource under /api/v1."""

    name: str
    path: str
    make: Callable[[Any, Customer], Any]  # (world, customer) -> object owned by that customer
    create: Callable[[Any], dict] | None = None  # (world) -> valid payload for customer A
    patch: dict | None = None
    patch_check: Callable[[Any], bool] | None = None
    filters: list[tuple[str, Callable[[Any], Any]]] = field(default_factory=list)
    refused_writer: str | None = "portal_a"  # a role inside the scope that may not write
    deletable: bool = True
    customer_scoped: bool = True  # False: the object has no customer (teams)

    def item(self, obj) -> str:
        return f"{self.path}/{obj.pk}"


_n = iter(range(1, 10**6))


def _make_customer(world, customer):
    return customer


def _make_site(world, customer):
    return services.site_create(actor=None, customer=customer, name=f"站点{next(_n)}")


def _make_contact(world, customer):
    return services.contact_create(actor=None, customer=customer, name=f"王芳{next(_n)}")


def _make_team(world, customer):
    return services.team_create(actor=None, name=f"团队{next(_n)}", customers=[customer])


def _make_user(world, customer):
    return services.user_create(
        actor=None, username=f"cu{next(_n)}", password=None, role="customer", customer=customer
    )


def _make_audit_event(world, customer):
    contact = _make_contact(world, customer)
    return services.AuditEvent.objects.filter(
        object_type="core.contact", object_id=str(contact.pk)
    ).latest("id")


RESOURCES = [
    Resource(
        name="customers",
        path="/api/v1/customers",
        make=lambda w, c: services.customer_create(
            actor=None, name=f"子公司{next(_n)}", short_code=f"S{next(_n):05d}", parent=c
        ),
        create=lambda w: {
            "name": "上海新客户",
            "short_code": "NEW1",
            "industry": "finance",
            "service_lines": ["desktop", "cloud"],
        },
        patch={"status": "suspended", "notes": "暂停服务"},
        patch_check=lambda obj: obj.status == "suspended",
        filters=[("parent_id", lambda w: w.customer_a.pk), ("q", lambda w: "shjf")],
        refused_writer="engineer",
    ),
    Resource(
        name="sites",
        path="/api/v1/sites",
        make=_make_site,
        create=lambda w: {"customer_id": w.customer_a.pk, "name": "浦东机房", "city": "上海"},
        patch={"address": "上海市浦东新区张江路 1 号"},
        patch_check=lambda obj: obj.address.startswith("上海市"),
        filters=[("customer_id", lambda w: w.customer_a.pk), ("q", lambda w: "总部")],
    ),
    Resource(
        name="contacts",
        path="/api/v1/contacts",
        make=_make_contact,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "site_id": w.site_a.pk,
            "name": "赵敏",
            "email": "zhao.min@example.cn",
            "is_vip": True,
        },
        patch={"phone": "+86 138 0000 0000", "is_vip": True},
        patch_check=lambda obj: obj.is_vip,
        filters=[("customer_id", lambda w: w.customer_a.pk), ("q", lambda w: "zw")],
    ),
    Resource(
        name="teams",
        path="/api/v1/teams",
        make=_make_team,
        create=lambda w: {
            "name": "网络运维组",
            "member_ids": [w.engineer.pk],
            "customer_ids": [w.customer_a.pk],
        },
        patch={"description": "负责网络与服务器"},
        patch_check=lambda obj: obj.description == "负责网络与服务器",
        filters=[("q", lambda w: "A")],
        refused_writer="engineer",
        customer_scoped=False,
    ),
    Resource(
        name="users",
        path="/api/v1/users",
        make=_make_user,
        create=lambda w: {
            "username": "new.portal",
            "password": "a-Long-enough-pass-42",
            "role": "customer",
            "customer_id": w.customer_a.pk,
            "display_name": "新门户用户",
        },
        patch={"display_name": "改名", "is_active": False},
        patch_check=lambda obj: obj.is_active is False,
        filters=[("role", lambda w: "engineer"), ("customer_id", lambda w: w.customer_a.pk)],
        refused_writer="engineer",
    ),
    Resource(
        name="audit-events",
        path="/api/v1/audit-events",
        make=_make_audit_event,
        filters=[
            ("object_type", lambda w: "core.contact"),
            ("customer_id", lambda w: w.customer_a.pk),
        ],
        refused_writer=None,
        deletable=False,
    ),
]

BY_PATH = {resource.path: resource for resource in RESOURCES}
