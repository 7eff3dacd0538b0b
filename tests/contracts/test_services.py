"""Contracts, SLA policies and stored business calendars."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from onestop.contracts import selectors, services
from onestop.contracts.models import CalendarDay, CalendarYear, Contract
from onestop.core.models import AuditEvent
from tests.apitest import api_client, call

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def calendar(db):
    return services.calendar_create(actor=None, name="上海 5×8")


def test_chinese_import_is_complete_and_idempotent(calendar):
    summary = services.calendar_import_chinese(actor=None, calendar=calendar, years=[2026])
    assert summary[2026]["workdays"] == 6
    holidays = CalendarDay.objects.filter(calendar=calendar, kind="holiday").count()
    assert holidays == summary[2026]["holidays"] > 20
    again = services.calendar_import_chinese(actor=None, calendar=calendar, years=[2026])
    assert again == summary
    assert CalendarDay.objects.filter(calendar=calendar).count() == holidays + 6
    assert list(calendar.years.values_list("year", flat=True)) == [2026]
    national_day = CalendarDay.objects.get(calendar=calendar, date=dt.date(2026, 10, 1))
    assert national_day.name == "National Day"


def test_unknown_year_is_refused_and_changes_nothing(calendar):
    with pytest.raises(ValidationError) as caught:
        services.calendar_import_chinese(actor=None, calendar=calendar, years=[2026, 2099])
    assert "2099" in str(caught.value.message_dict["years"])
    assert not CalendarDay.objects.filter(calendar=calendar).exists()
    assert not CalendarYear.objects.exists()


def test_stored_calendar_computes_chinese_due_times(calendar):
    services.calendar_import_chinese(actor=None, calendar=calendar, years=[2026])
    engine = selectors.calendar_engine(calendar)
    due = engine.add_minutes(dt.datetime(2026, 10, 9, 17, 0, tzinfo=SH), 120)
    assert due.at == dt.datetime(2026, 10, 10, 10, 0, tzinfo=SH)  # make-up Saturday
    assert not due.provisional
    assert engine.add_minutes(dt.datetime(2026, 12, 31, 17, 0, tzinfo=SH), 240).provisional


def test_manual_day_changes_the_arithmetic_and_is_audited(calendar):
    services.calendar_import_chinese(actor=None, calendar=calendar, years=[2026])
    services.calendar_day_set(
        actor=None, calendar=calendar, date=dt.date(2026, 11, 30), kind="holiday", name="司庆"
    )
    due = selectors.calendar_engine(calendar).add_minutes(
        dt.datetime(2026, 11, 27, 17, 0, tzinfo=SH), 120
    )
    assert due.at == dt.datetime(2026, 12, 1, 10, 0, tzinfo=SH)
    assert AuditEvent.objects.filter(object_type="contracts.calendarday").exists()
    with pytest.raises(ValidationError):
        services.calendar_day_set(
            actor=None,
            calendar=calendar,
            date=dt.date(2026, 12, 1),
            kind="workday",
            hours=[[540, 720], [700, 800]],
        )


def test_ical_feed_import(calendar):
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        "BEGIN:VEVENT\r\nUID:1\r\nSUMMARY:公司年会\r\nDTSTART;VALUE=DATE:20261203\r\n"
        "DTEND;VALUE=DATE:20261205\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert services.calendar_import_ical(actor=None, calendar=calendar, ics=ics) == 2
    days = CalendarDay.objects.filter(calendar=calendar).order_by("date")
    assert [(d.date.day, d.name, d.source) for d in days] == [
        (3, "公司年会", "ical"),
        (4, "公司年会", "ical"),
    ]
    with pytest.raises(ValidationError):
        services.calendar_import_ical(actor=None, calendar=calendar, ics="not a calendar")


def test_custom_hours_are_validated():
    with pytest.raises(ValidationError) as caught:
        services.calendar_create(
            actor=None, name="坏日历", preset="custom", weekly_hours=[[[540, 720], [700, 900]]] * 7
        )
    assert "weekly_hours" in caught.value.message_dict
    with pytest.raises(ValidationError):
        services.calendar_create(actor=None, name="空日历", preset="custom", weekly_hours=[[]] * 7)


def test_missing_next_year_warning_starts_on_1_november(world, calendar):
    services.calendar_import_chinese(actor=None, calendar=calendar, years=[2026])
    assert (
        selectors.calendars_missing_next_year(user=world.admin, today=dt.date(2026, 10, 31)) == []
    )
    assert selectors.calendars_missing_next_year(user=world.admin, today=dt.date(2026, 11, 1)) == [
        calendar
    ]


@pytest.mark.parametrize(
    "targets,field",
    [
        ([], "targets"),
        (
            [{"priority": "P1", "first_response_minutes": 300, "resolution_minutes": 60}],
            "targets.0",
        ),
        (
            [
                {"priority": "P1", "first_response_minutes": 10, "resolution_minutes": 60},
                {"priority": "P1", "first_response_minutes": 10, "resolution_minutes": 60},
            ],
            "targets.1.priority",
        ),
        (
            [{"priority": "P9", "first_response_minutes": 1, "resolution_minutes": 2}],
            "targets.0.priority",
        ),
    ],
)
def test_sla_policy_needs_sensible_targets(db, targets, field):
    with pytest.raises(ValidationError) as caught:
        services.sla_policy_create(actor=None, name="坏 SLA", targets=targets)
    assert field in caught.value.message_dict


def test_contract_rules(world):
    with pytest.raises(ValidationError) as caught:
        services.contract_create(
            actor=None,
            customer=world.customer_a,
            number="X1",
            name="跨客户站点",
            start_date=dt.date(2026, 1, 1),
            sites=[world.site_b],
        )
    assert "sites" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.contract_create(
            actor=None,
            customer=world.customer_a,
            number="X2",
            name="块时",
            start_date=dt.date(2026, 1, 1),
            pricing="block_hours",
        )
    assert "block_minutes" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.contract_create(
            actor=None,
            customer=world.customer_a,
            number="X3",
            name="倒序",
            start_date=dt.date(2026, 6, 1),
            end_date=dt.date(2026, 1, 1),
        )
    assert "end_date" in caught.value.message_dict
    assert not Contract.objects.exists()


def test_one_default_contract_per_customer(world):
    first = services.contract_create(
        actor=None,
        customer=world.customer_a,
        number="D1",
        name="一",
        start_date=dt.date(2026, 1, 1),
        is_customer_default=True,
    )
    second = services.contract_create(
        actor=None,
        customer=world.customer_a,
        number="D2",
        name="二",
        start_date=dt.date(2026, 1, 1),
        is_customer_default=True,
    )
    first.refresh_from_db()
    assert not first.is_customer_default and second.is_customer_default


def test_renewal_reminders(world):
    services.contract_create(
        actor=None,
        customer=world.customer_a,
        number="R1",
        name="即将到期",
        start_date=dt.date(2026, 1, 1),
        end_date=dt.date(2026, 12, 31),
        status="active",
        renewal_reminder_days=60,
    )
    assert selectors.contracts_due_for_renewal(user=world.admin, today=dt.date(2026, 10, 1)) == []
    due = selectors.contracts_due_for_renewal(user=world.admin, today=dt.date(2026, 11, 15))
    assert [c.number for c in due] == ["R1"]
    assert (
        selectors.contracts_due_for_renewal(user=world.other_engineer, today=dt.date(2026, 11, 15))
        == []
    )


def test_due_endpoint_and_plain_customer_user_cannot_read_contracts(world, calendar):
    services.calendar_import_chinese(actor=None, calendar=calendar, years=[2026])
    response = call(
        api_client(world.engineer),
        "post",
        f"/api/v1/calendars/{calendar.pk}/due",
        {"start": "2026-09-30T17:00:00+08:00", "minutes": 240},
    )
    assert response.status_code == 200
    assert response.body["due_at"].startswith("2026-10-08T04:00:00")  # 12:00 in Shanghai
    assert response.body["provisional"] is False
    assert call(api_client(world.portal_a), "get", "/api/v1/contracts").status_code == 403
    assert call(api_client(world.portal_admin_a), "get", "/api/v1/contracts").status_code == 200


def test_one_default_calendar_and_policy(db):
    first = services.calendar_create(actor=None, name="默认一", is_default=True)
    second = services.calendar_create(actor=None, name="默认二", is_default=True)
    first.refresh_from_db()
    assert not first.is_default and second.is_default
    targets = [{"priority": "P3", "first_response_minutes": 60, "resolution_minutes": 480}]
    p1 = services.sla_policy_create(actor=None, name="甲", targets=targets, is_default=True)
    p2 = services.sla_policy_create(actor=None, name="乙", targets=targets, is_default=True)
    p1.refresh_from_db()
    assert not p1.is_default and p2.is_default
