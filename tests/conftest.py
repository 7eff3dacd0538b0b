"""Shared fixtures: users of every role around two customers, A (served) and B (not)."""

from __future__ import annotations

import os
import shutil

import pytest
from django.test import Client

from tests import factories


def require_peer(available: bool, reason: str) -> None:
    """Skips a test whose system service is missing; under ONESTOP_REQUIRE_PEERS=1 fails instead."""
    if available:
        return
    if os.environ.get("ONESTOP_REQUIRE_PEERS") == "1":
        pytest.fail(f"required peer missing (ONESTOP_REQUIRE_PEERS=1): {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )


class World:
    """Two customers and one user per role; `engineer` serves A only."""

    def __init__(self) -> None:
        self.customer_a = factories.customer(name="上海甲方科技", short_code="AAA")
        self.customer_b = factories.customer(name="苏州乙方制造", short_code="BBB")
        self.site_a = factories.site(self.customer_a, name="A 总部")
        self.site_b = factories.site(self.customer_b, name="B 工厂")
        self.contact_a = factories.contact(self.customer_a, name="张伟")
        self.contact_b = factories.contact(self.customer_b, name="李娜")
        self.admin = factories.user("admin", username="admin1")
        self.manager = factories.user("manager", username="manager1")
        self.dispatcher = factories.user("dispatcher", username="dispatcher1")
        self.engineer = factories.user("engineer", username="engineer1")
        self.other_engineer = factories.user("engineer", username="engineer2")
        self.sales = factories.user("sales", username="sales1")
        self.team_a = factories.team(
            name="A 组",
            members=[self.engineer, self.dispatcher, self.sales],
            customers=[self.customer_a],
        )
        self.team_b = factories.team(
            name="B 组", members=[self.other_engineer], customers=[self.customer_b]
        )
        self.portal_a = factories.user("customer", username="portal_a", customer=self.customer_a)
        self.portal_admin_a = factories.user(
            "customer",
            username="portal_admin_a",
            customer=self.customer_a,
            is_customer_admin=True,
        )
        self.portal_b = factories.user("customer", username="portal_b", customer=self.customer_b)


@pytest.fixture
def world(db) -> World:
    return World()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def login():
    return client_for
