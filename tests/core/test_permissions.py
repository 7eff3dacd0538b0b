"""The role × action table, its documentation, and `can()` with scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from onestop.core import permissions, services
from onestop.core.models import Contact, Customer, Team, User
from onestop.core.permissions import can

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def test_docs_table_matches_the_code():
    text = DOC.read_text()
    start = text.index("<!-- permissions-table:start -->") + len("<!-- permissions-table:start -->")
    end = text.index("<!-- permissions-table:end -->")
    assert text[start:end].strip() == permissions.render_markdown_table()


def test_role_table(world):
    assert can(world.sales, "add", Customer)
    assert not can(world.engineer, "add", Customer)
    assert can(world.engineer, "change", world.contact_a)
    assert not can(world.portal_a, "change", world.contact_a)
    assert can(world.portal_admin_a, "change", world.contact_a)
    assert not can(world.portal_admin_a, "delete", world.customer_a)
    assert can(world.admin, "delete", world.customer_a)
    assert not can(world.portal_a, "view", Team)


def test_scope_comes_before_role(world):
    assert can(world.engineer, "view", world.contact_a)
    assert not can(world.engineer, "view", world.contact_b)
    assert not can(world.engineer, "change", world.contact_b)
    assert not can(world.portal_admin_a, "change", world.contact_b)


def test_only_admins_touch_admin_accounts(world):
    assert not can(world.manager, "change", world.admin)
    assert can(world.manager, "change", world.engineer)
    assert can(world.admin, "change", world.admin)


def test_inactive_user_may_do_nothing(world):
    services.user_update(actor=world.admin, user=world.manager, is_active=False)
    world.manager.refresh_from_db()
    assert not can(world.manager, "view", Contact)
    assert not can(world.manager, "view", world.customer_a)


def test_group_scope_covers_subsidiaries(world):
    group = services.customer_create(actor=None, name="某某集团", short_code="GRP")
    child = services.customer_create(actor=None, name="某某子公司", short_code="GRPC", parent=group)
    grandchild = services.customer_create(
        actor=None, name="某某孙公司", short_code="GRPCC", parent=child
    )
    engineer = services.user_create(
        actor=None, username="grp.eng", password=None, role="engineer", customers=[group]
    )
    assert can(engineer, "view", grandchild)
    portal_admin = services.user_create(
        actor=None,
        username="grp.admin",
        password=None,
        role="customer",
        customer=group,
        is_customer_admin=True,
    )
    portal = services.user_create(
        actor=None, username="grp.user", password=None, role="customer", customer=group
    )
    assert can(portal_admin, "view", child)
    assert not can(portal, "view", child)
    assert isinstance(portal, User)
