"""The demo seed: the documented world, the same every time, seeded once, with working logins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from onestop.core import demo, scoping
from onestop.core.models import (
    AuditEvent,
    Contact,
    Customer,
    Role,
    ServiceLine,
    Site,
    Team,
    User,
)
from tests import factories

pytestmark = pytest.mark.django_db


def _world() -> dict[str, int]:
    return {
        "customers": Customer.objects.count(),
        "sites": Site.objects.count(),
        "contacts": Contact.objects.count(),
        "vip": Contact.objects.filter(is_vip=True).count(),
        "teams": Team.objects.count(),
        "staff": User.objects.exclude(role=Role.CUSTOMER).count(),
        "portal": User.objects.filter(role=Role.CUSTOMER).count(),
    }


def test_seed_writes_the_documented_world():
    assert demo.seed_demo() is True

    # The same figures are in demo.py's docstring and in README.md.
    assert _world() == {
        "customers": 20,
        "sites": 35,
        "contacts": 70,
        "vip": 14,
        "teams": 4,
        "staff": 16,
        "portal": 2,
    }
    group = Customer.objects.get(short_code=demo.GROUP_CODE)
    assert "集团" in group.name
    assert group.subsidiaries.count() == 2
    assert len(set(Customer.objects.values_list("industry", flat=True))) >= 8
    lines = {line for c in Customer.objects.all() for line in c.service_lines}
    assert lines == set(ServiceLine.values)
    for customer in Customer.objects.all():
        assert 1 <= customer.sites.count() <= 3
        assert 2 <= customer.contacts.count() <= 5
        domain = customer.website.removeprefix("https://www.")
        for contact in customer.contacts.all():
            assert contact.email.endswith(f"@{domain}")
            assert contact.phone.startswith("+86 1")
            assert contact.site.customer_id == customer.pk
    assert {s.city for s in Site.objects.all()} == {"上海", "苏州", "杭州"}
    roles = set(User.objects.values_list("role", flat=True))
    assert roles == set(Role.values)
    assert User.objects.filter(role=Role.CUSTOMER, is_customer_admin=True).count() == 1
    assert all(team.members.exists() and team.customers.exists() for team in Team.objects.all())


def test_seed_is_audited_like_any_other_change():
    demo.seed_demo()
    created = AuditEvent.objects.filter(action=AuditEvent.Action.CREATE)
    assert created.filter(object_type="core.customer").count() == 20
    assert created.filter(object_type="core.contact").count() == 70
    assert created.filter(object_type="core.user").count() == 18


def test_seeding_twice_changes_nothing():
    demo.seed_demo()
    before, events = _world(), AuditEvent.objects.count()

    assert demo.seed_demo() is False
    assert _world() == before
    assert AuditEvent.objects.count() == events


def test_seed_skips_a_database_that_already_has_customers():
    factories.customer(name="已有客户", short_code="OWN")
    assert demo.seed_demo() is False
    assert not demo.demo_is_seeded()
    assert User.objects.count() == 0


def test_the_seed_follows_the_plan_and_the_plan_never_changes():
    assert demo.plan_customers() == demo.plan_customers()
    demo.seed_demo()
    for plan in demo.plan_customers():
        customer = Customer.objects.get(short_code=plan.spec.code)
        assert customer.phone == plan.phone
        assert sorted(customer.sites.values_list("address", flat=True)) == sorted(
            site.address for site in plan.sites
        )
        assert sorted(customer.contacts.values_list("name", "phone")) == sorted(
            (contact.name, contact.phone) for contact in plan.contacts
        )


def test_the_plan_is_the_same_in_another_process():
    script = (
        "import django, hashlib; django.setup();"
        "from onestop.core import demo;"
        "print(hashlib.sha256(repr(demo.plan_customers()).encode()).hexdigest())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_printed_logins_authenticate_with_their_roles():
    demo.seed_demo()
    logins = demo.demo_logins()
    assert demo.demo_is_seeded()
    roles = {account.role for account in logins.accounts}
    assert {Role.ADMIN, Role.MANAGER, Role.DISPATCHER, Role.ENGINEER, Role.CUSTOMER} <= roles
    for account in logins.accounts:
        request = RequestFactory().post("/login/")
        user = authenticate(request, username=account.username, password=logins.password)
        assert user is not None, account.username
        assert user.role == account.role


def test_demo_password_passes_the_password_rules():
    from django.contrib.auth import password_validation

    password_validation.validate_password(demo.DEMO_PASSWORD, User(username="admin"))


def test_demo_users_see_a_sensible_part_of_the_world():
    demo.seed_demo()
    group = Customer.objects.get(short_code=demo.GROUP_CODE)
    engineer = User.objects.get(username="engineer")
    portal_admin = User.objects.get(username="portal-admin")
    portal = User.objects.get(username="portal")

    assert group.pk in scoping.visible_customer_ids(engineer)
    assert 1 < len(scoping.visible_customer_ids(engineer)) < 20
    assert scoping.visible_customer_ids(portal_admin) == {group.pk} | set(
        group.subsidiaries.values_list("pk", flat=True)
    )
    assert scoping.visible_customer_ids(portal) == {group.pk}


def test_progress_counts_up_to_the_total():
    seen: list[tuple[str, int, int]] = []
    demo.seed_demo(progress=lambda *step: seen.append(step))
    _label, done, total = seen[-1]
    assert done == total == len(seen)
    assert [step[1] for step in seen] == list(range(1, total + 1))
