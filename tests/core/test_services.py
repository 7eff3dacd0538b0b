"""Core services: validation, audit and domain events written in the same transaction."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from onestop.core import selectors, services
from onestop.core.crypto import MASK
from onestop.core.errors import ConflictError
from onestop.core.models import AuditEvent, Customer, DomainEvent
from tests import factories

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="the append-only trigger exists on PostgreSQL only",
)


def test_create_writes_audit_and_domain_event(world):
    customer = services.customer_create(
        actor=world.sales, name="上海建达物流", short_code="shjd", service_lines=["desktop"]
    )
    assert customer.short_code == "SHJD"
    audit = AuditEvent.objects.get(object_type="core.customer", object_id=str(customer.pk))
    assert audit.action == "create"
    assert audit.actor == world.sales and audit.actor_name == "sales1"
    assert audit.source == "system"
    assert audit.customer_id == customer.pk
    assert audit.changes["name"] == [None, "上海建达物流"]
    event = DomainEvent.objects.get(name="customer.created", object_id=str(customer.pk))
    assert event.customer_id == customer.pk


def test_update_records_only_what_changed(world):
    services.customer_update(actor=world.admin, customer=world.customer_a, phone="021-5555")
    event = AuditEvent.objects.filter(action="update").latest("id")
    assert event.changes == {"phone": ["", "021-5555"]}
    count = AuditEvent.objects.count()
    services.customer_update(actor=world.admin, customer=world.customer_a, phone="021-5555")
    assert AuditEvent.objects.count() == count


def test_failed_write_leaves_no_trace(world):
    audits, events = AuditEvent.objects.count(), DomainEvent.objects.count()
    with pytest.raises(ValidationError) as caught:
        services.customer_create(actor=world.admin, name="重复", short_code="AAA")
    assert "short_code" in caught.value.message_dict
    with pytest.raises(ValidationError):
        services.customer_create(
            actor=world.admin, name="坏的", short_code="BAD1", service_lines=["teleport"]
        )
    with pytest.raises(ValidationError):
        services.customer_create(actor=world.admin, name="x" * 201, short_code="LONG")
    assert (AuditEvent.objects.count(), DomainEvent.objects.count()) == (audits, events)
    assert not Customer.objects.filter(short_code__in=["BAD1", "LONG"]).exists()


def test_group_company_cannot_loop(world):
    child = services.customer_create(
        actor=None, name="子公司", short_code="CHLD", parent=world.customer_a
    )
    with pytest.raises(ValidationError) as caught:
        services.customer_update(actor=world.admin, customer=world.customer_a, parent=child)
    assert "parent" in caught.value.message_dict
    world.customer_a.refresh_from_db()
    assert world.customer_a.parent is None


def test_contact_site_must_belong_to_its_customer(world):
    with pytest.raises(ValidationError) as caught:
        services.contact_create(
            actor=world.admin, customer=world.customer_a, name="错站点", site=world.site_b
        )
    assert "site" in caught.value.message_dict


def test_user_role_rules(world):
    with pytest.raises(ValidationError):
        services.user_create(actor=world.admin, username="nocust", password=None, role="customer")
    with pytest.raises(ValidationError):
        services.user_create(
            actor=world.admin,
            username="staffcust",
            password=None,
            role="engineer",
            customer=world.customer_a,
        )
    with pytest.raises(ValidationError) as caught:
        services.user_create(actor=world.manager, username="sneaky", password=None, role="admin")
    assert "role" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.user_update(actor=world.manager, user=world.engineer, role="admin")
    world.engineer.refresh_from_db()
    assert world.engineer.role == "engineer"
    with pytest.raises(ValidationError) as caught:
        services.user_create(actor=world.admin, username="weak", password="123", role="sales")
    assert "password" in caught.value.message_dict


def test_passwords_and_secrets_are_masked_in_the_audit(world):
    services.user_set_password(actor=world.admin, user=world.engineer, password="Another-long-pw-7")
    event = AuditEvent.objects.filter(object_id=str(world.engineer.pk), action="update").latest(
        "id"
    )
    assert event.changes["password"] == [MASK, MASK]
    assert "Another-long-pw-7" not in str(event.changes)
    assert world.engineer.check_password("Another-long-pw-7")


def test_teams_are_made_of_staff(world):
    with pytest.raises(ValidationError):
        services.team_create(actor=world.admin, name="混合", members=[world.portal_a])


def test_delete_with_dependents_is_refused_and_changes_nothing(world):
    count = AuditEvent.objects.count()
    with pytest.raises(ConflictError):
        services.customer_delete(actor=world.admin, customer=world.customer_a)
    assert Customer.objects.filter(pk=world.customer_a.pk).exists()
    assert AuditEvent.objects.count() == count


def test_delete_records_the_last_state(world):
    contact = factories.contact(world.customer_a, name="待删除", phone="13800000000")
    services.contact_delete(actor=world.admin, contact=contact)
    event = AuditEvent.objects.filter(action="delete").latest("id")
    assert event.changes["phone"] == ["13800000000", None]
    assert event.customer_id == world.customer_a.pk
    assert DomainEvent.objects.filter(name="contact.deleted").exists()


def test_audit_events_are_append_only(world):
    event = AuditEvent.objects.first()
    event.object_repr = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().update(object_repr="tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        DomainEvent.objects.all().delete()


@on_postgres
def test_database_refuses_tampering_on_postgres(world):
    event_id = AuditEvent.objects.values_list("id", flat=True).first()
    for statement in (
        "UPDATE core_auditevent SET object_repr = 'x' WHERE id = %s",
        "DELETE FROM core_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(Exception, match=r"append-only|180 days"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event_id])
    assert AuditEvent.objects.filter(id=event_id).exists()


@pytest.mark.parametrize("query", ["甲方", "shjf", "shanghaijiafang", "AAA", "上海 科技"])
def test_search_by_chinese_pinyin_initials_and_code(world, query):
    found = selectors.customer_list(user=world.admin, q=query)
    assert list(found) == [world.customer_a]


def test_contact_search_by_pinyin(world):
    assert list(selectors.contact_list(user=world.admin, q="zw")) == [world.contact_a]
    assert list(selectors.contact_list(user=world.engineer, q="ln")) == []  # 李娜 is B's
