"""Time entries against blocks of hours, knowledge-base visibility, and recurring tickets."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from onestop.contracts import services as contracts
from onestop.servicedesk import selectors, services
from onestop.servicedesk.models import Ticket, TimeEntry
from tests.apitest import api_client, call

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


def _block_ticket(world, minutes=120):
    contract = contracts.contract_create(
        actor=None,
        customer=world.customer_a,
        number="BLK-1",
        name="预付 2 小时",
        start_date=dt.date(2026, 1, 1),
        pricing="block_hours",
        block_minutes=minutes,
    )
    return services.ticket_create(
        actor=None, customer=world.customer_a, title="上门维修", channel="phone", contract=contract
    )


def test_block_of_hours_is_drawn_down_and_never_overdrawn(world):
    ticket = _block_ticket(world)
    services.time_entry_create(actor=world.engineer, ticket=ticket, minutes=90)
    services.time_entry_create(actor=world.engineer, ticket=ticket, minutes=60, billable=False)
    assert services.block_minutes_used(ticket.contract) == 90
    with pytest.raises(ValidationError) as caught, translation.override("en"):
        services.time_entry_create(actor=world.engineer, ticket=ticket, minutes=31)
    assert "30 minutes left" in str(caught.value.message_dict["minutes"])
    assert TimeEntry.objects.count() == 2
    entry = services.time_entry_create(actor=world.engineer, ticket=ticket, minutes=30)
    assert entry.contract == ticket.contract
    services.time_entry_delete(actor=world.manager, entry=entry)
    assert services.block_minutes_used(ticket.contract) == 90


def test_overdraw_through_the_api_is_a_field_error(world):
    ticket = _block_ticket(world, minutes=60)
    response = call(
        api_client(world.engineer),
        "post",
        "/api/v1/time-entries",
        {"ticket_id": ticket.pk, "minutes": 61},
    )
    assert response.status_code == 422
    assert response.body["errors"][0]["field"] == "minutes"
    assert not TimeEntry.objects.exists()


def test_only_staff_log_time(world):
    ticket = _block_ticket(world)
    with pytest.raises(ValidationError):
        services.time_entry_create(
            actor=world.admin, ticket=ticket, minutes=10, user=world.portal_a
        )


def test_customers_read_only_articles_published_to_them(world):
    internal = services.knowledge_article_create(actor=world.admin, title="内部排障手册", body="…")
    for_all = services.knowledge_article_create(
        actor=world.admin, title="密码重置", body="…", visibility="all_customers", is_published=True
    )
    for_a = services.knowledge_article_create(
        actor=world.admin,
        title="甲方 VPN",
        body="…",
        visibility="selected",
        is_published=True,
        customers=[world.customer_a],
    )
    draft = services.knowledge_article_create(
        actor=world.admin, title="草稿", body="…", visibility="all_customers"
    )
    seen = set(selectors.knowledge_article_list(user=world.portal_a))
    assert seen == {for_all, for_a}
    assert set(selectors.knowledge_article_list(user=world.portal_b)) == {for_all}
    assert set(selectors.knowledge_article_list(user=world.engineer)) == {
        internal,
        for_all,
        for_a,
        draft,
    }
    assert (
        call(api_client(world.portal_b), "get", f"/api/v1/kb-articles/{for_a.pk}").status_code
        == 404
    )
    with pytest.raises(ValidationError):
        services.knowledge_article_create(
            actor=world.admin, title="无人可读", body="…", visibility="selected", customers=[]
        )


def test_article_search_finds_two_chinese_characters(world):
    article = services.knowledge_article_create(
        actor=world.admin, title="打印机驱动安装", body="适用于惠普激光打印机"
    )
    assert list(selectors.knowledge_article_list(user=world.engineer, q="惠普")) == [article]


def test_recurring_ticket_opens_once_per_run_and_catches_up_once(world):
    recurring = services.recurring_ticket_create(
        actor=world.dispatcher,
        customer=world.customer_a,
        title="每月备份检查",
        frequency="monthly",
        day_of_month=31,
        time_of_day=dt.time(9, 0),
        assignee=world.engineer,
    )
    first_run = recurring.next_run_at
    assert first_run.astimezone(SH).day in (30, 31)  # clamped in short months
    assert services.recurring_tickets_run(now=first_run - dt.timedelta(minutes=1)) == 0
    # The worker was down for three months: one ticket, and the next run is in the future.
    late = first_run + dt.timedelta(days=90)
    assert services.recurring_tickets_run(now=late) == 1
    assert services.recurring_tickets_run(now=late) == 0
    ticket = Ticket.objects.get()
    assert (ticket.title, ticket.channel, ticket.assignee) == (
        "每月备份检查",
        "schedule",
        world.engineer,
    )
    recurring.refresh_from_db()
    assert recurring.next_run_at > late and recurring.last_ticket == ticket


def test_recurring_schedule_validation(world):
    with pytest.raises(ValidationError):
        services.recurring_ticket_create(
            actor=None,
            customer=world.customer_a,
            title="坏",
            frequency="weekly",
            weekday=9,
            time_of_day=dt.time(9, 0),
        )
    with pytest.raises(ValidationError):
        services.recurring_ticket_create(
            actor=None,
            customer=world.customer_a,
            title="坏",
            frequency="monthly",
            time_of_day=dt.time(9, 0),
        )


def test_next_weekly_occurrence(world):
    recurring = services.recurring_ticket_create(
        actor=None,
        customer=world.customer_a,
        title="周一巡检",
        frequency="weekly",
        weekday=0,
        time_of_day=dt.time(10, 0),
    )
    after = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SH)  # a Monday, exactly at 10:00
    assert services.next_occurrence(recurring, after) == dt.datetime(2026, 11, 30, 10, 0, tzinfo=SH)
