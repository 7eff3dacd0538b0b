"""The contracts pages: rendering, scope (404), role (403), writes through forms, the calendar
editor, query counts, the menu."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from onestop.contracts import services
from onestop.contracts.forms import parse_duration, parse_segments
from onestop.contracts.models import (
    BusinessCalendar,
    CalendarDay,
    CalendarYear,
    Contract,
    SlaPolicy,
)
from onestop.core.models import AuditEvent
from tests import factories

TARGETS = [
    {"priority": "P1", "first_response_minutes": 30, "resolution_minutes": 240},
    {"priority": "P2", "first_response_minutes": 60, "resolution_minutes": 480},
]


class Terms:
    """A calendar, an SLA policy and one contract for each of the world's two customers."""

    def __init__(self, world) -> None:
        self.world = world
        self.calendar = services.calendar_create(actor=None, name="上海 5×8")
        self.policy = services.sla_policy_create(actor=None, name="标准 SLA", targets=TARGETS)
        self.contract_a = _contract(world.customer_a, "CT-A-001", "甲方桌面运维", self)
        self.contract_b = _contract(world.customer_b, "CT-B-001", "乙方网络运维", self)


def _contract(customer, number, name, terms, **fields) -> Contract:
    fields.setdefault("sla_policy", terms.policy)
    fields.setdefault("calendar", terms.calendar)
    return services.contract_create(
        actor=None,
        customer=customer,
        number=number,
        name=name,
        start_date=dt.date(2026, 1, 1),
        **fields,
    )


@pytest.fixture
def terms(world) -> Terms:
    return Terms(world)


@pytest.fixture
def login(login):
    """Clients that read the pages in English, so the assertions match the msgids."""

    def client_for(user):
        client = login(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return client_for


def _url(name, obj=None):
    return reverse(name, args=[obj.pk] if obj is not None else [])


def _last_event(obj, action):
    return AuditEvent.objects.filter(
        object_type=obj._meta.label_lower, object_id=str(obj.pk), action=action
    ).latest("id")


def _contract_post(world, **overrides):
    data = {
        "customer": world.customer_a.pk,
        "number": "ct-2026-07",
        "name": "甲方网络安全服务",
        "status": "active",
        "service_lines": ["security", "network_ops"],
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
        "renewal_reminder_days": "60",
        "pricing": "block_hours",
        "unit_price": "12000.00",
        "block_hours": "40",
        "sites": [world.site_a.pk],
        "onsite_response_hours": "4",
    }
    return data | overrides


def _policy_post(**overrides):
    data = {
        "name": "金牌 SLA",
        "description": "7×24 重点客户",
        "targets-TOTAL_FORMS": "4",
        "targets-INITIAL_FORMS": "4",
    }
    rows = [("30m", "4h", "1h"), ("1h", "8h", ""), ("", "", ""), ("", "", "")]
    for n, (priority, (first, resolution, update)) in enumerate(
        zip(("P1", "P2", "P3", "P4"), rows, strict=True)
    ):
        data[f"targets-{n}-priority"] = priority
        data[f"targets-{n}-first_response_minutes"] = first
        data[f"targets-{n}-resolution_minutes"] = resolution
        data[f"targets-{n}-next_update_minutes"] = update
    return data | overrides


WEEKLY_5X8 = {
    day: "09:00-12:00, 13:00-18:00" for day in ("monday", "tuesday", "wednesday", "thursday")
} | {"friday": "09:00-12:00, 13:00-17:00", "saturday": "", "sunday": ""}


# Rendering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "contract_list",
        "contract_create",
        "sla_policy_list",
        "sla_policy_create",
        "calendar_list",
        "calendar_create",
    ],
)
def test_admin_sees_every_list_and_create_page(terms, login, name):
    response = login(terms.world.admin).get(reverse(name))
    assert response.status_code == 200
    assert b"<html" in response.content


@pytest.mark.parametrize(
    ("entity", "target", "page"),
    [
        (entity, target, page)
        for entity, target in [
            ("contract", "contract_a"),
            ("sla_policy", "policy"),
            ("calendar", "calendar"),
        ]
        for page in ("detail", "edit", "delete")
    ],
)
def test_admin_sees_every_detail_edit_and_delete_page(terms, login, entity, target, page):
    obj = getattr(terms, target)
    response = login(terms.world.admin).get(_url(f"{entity}_{page}", obj))
    assert response.status_code == 200
    assert str(obj).encode() in response.content


def test_contract_detail_shows_the_terms(terms, login):
    services.contract_update(
        actor=None,
        contract=terms.contract_a,
        pricing="block_hours",
        block_minutes=40 * 60,
        onsite_response_hours=4,
        service_lines=["desktop"],
        sites=[terms.world.site_a],
    )
    page = login(terms.world.admin).get(_url("contract_detail", terms.contract_a)).content.decode()
    for text in ["上海甲方科技", "A 总部", "标准 SLA", "上海 5×8", "40 hours", "30 minutes"]:
        assert text in page, text
    assert "09:00–12:00, 13:00–18:00" in page
    assert _url("sla_policy_detail", terms.policy) in page
    assert _url("calendar_detail", terms.calendar) in page


def test_policy_detail_shows_targets_in_hours_and_minutes(terms, login):
    services.sla_policy_update(
        actor=None,
        policy=terms.policy,
        targets=[
            {
                "priority": "P1",
                "first_response_minutes": 15,
                "resolution_minutes": 90,
                "next_update_minutes": 60,
            }
        ],
    )
    client = login(terms.world.engineer)
    page = client.get(_url("sla_policy_detail", terms.policy)).content.decode()
    assert "15 minutes" in page
    assert "1 hour 30 minutes" in page
    assert "No targets for this priority." in page


def test_pages_are_in_chinese_for_chinese_users(terms, login):
    client = login(terms.world.admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = client.get(_url("calendar_detail", terms.calendar)).content.decode()
    assert "星期一" in page


# Scope: outside it, absent (404) ---------------------------------------------------------------


@pytest.mark.parametrize("page", ["detail", "edit", "delete"])
@pytest.mark.parametrize("who", ["engineer", "portal_a", "portal_admin_a"])
def test_other_customers_contract_is_not_found(terms, login, page, who):
    response = login(getattr(terms.world, who)).get(_url(f"contract_{page}", terms.contract_b))
    assert response.status_code == 404
    assert "乙方网络运维" not in response.content.decode()


def test_contract_list_leaves_out_other_customers(terms, login):
    page = login(terms.world.engineer).get(reverse("contract_list")).content.decode()
    assert "CT-A-001" in page
    assert "CT-B-001" not in page
    page = login(terms.world.portal_admin_a).get(reverse("contract_list")).content.decode()
    assert "CT-A-001" in page
    assert "CT-B-001" not in page


@pytest.mark.parametrize(("entity", "target"), [("sla_policy", "policy"), ("calendar", "calendar")])
@pytest.mark.parametrize("page", ["detail", "edit", "delete"])
@pytest.mark.parametrize("who", ["portal_a", "portal_admin_a"])
def test_portal_users_do_not_see_policies_and_calendars(terms, login, entity, target, page, who):
    url = _url(f"{entity}_{page}", getattr(terms, target))
    assert login(getattr(terms.world, who)).get(url).status_code == 404


def test_portal_calendar_writes_are_not_found(terms, login):
    client = login(terms.world.portal_admin_a)
    url = _url("calendar_import_chinese", terms.calendar)
    assert client.post(url, {"cn-year": "2026"}).status_code == 404
    assert not CalendarDay.objects.exists()


def test_customer_admin_reads_their_contract_and_its_terms(terms, login):
    page = login(terms.world.portal_admin_a).get(_url("contract_detail", terms.contract_a))
    assert page.status_code == 200
    body = page.content.decode()
    assert "标准 SLA" in body and "30 minutes" in body and "09:00–12:00" in body
    # The provider's policy and calendar pages stay out of reach: no links to them.
    assert _url("sla_policy_detail", terms.policy) not in body
    assert _url("calendar_detail", terms.calendar) not in body
    assert _url("contract_edit", terms.contract_a) not in body


def test_engineer_sees_their_customers_contract(terms, login):
    response = login(terms.world.engineer).get(_url("contract_detail", terms.contract_a))
    assert response.status_code == 200


# Role: in scope, not allowed (403) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "url_name", "target"),
    [
        ("engineer", "contract_create", None),
        ("engineer", "contract_edit", "contract_a"),
        ("dispatcher", "contract_edit", "contract_a"),
        ("sales", "contract_delete", "contract_a"),
        ("sales", "sla_policy_create", None),
        ("sales", "sla_policy_edit", "policy"),
        ("engineer", "sla_policy_edit", "policy"),
        ("sales", "calendar_create", None),
        ("dispatcher", "calendar_edit", "calendar"),
        ("engineer", "calendar_delete", "calendar"),
        ("portal_a", "contract_list", None),
        ("portal_a", "contract_detail", "contract_a"),
        ("portal_a", "calendar_list", None),
        ("portal_admin_a", "contract_create", None),
        ("portal_admin_a", "contract_edit", "contract_a"),
        ("portal_admin_a", "sla_policy_list", None),
    ],
)
def test_role_without_the_permission_is_refused(terms, login, who, url_name, target):
    url = _url(url_name, getattr(terms, target) if target else None)
    client = login(getattr(terms.world, who))
    assert client.get(url).status_code == 403
    assert client.post(url, {"name": "x"}).status_code == 403


@pytest.mark.parametrize(
    "url_name",
    ["calendar_import_chinese", "calendar_import_ical", "calendar_day_set"],
)
def test_calendar_editing_needs_the_change_permission(terms, login, url_name):
    before = AuditEvent.objects.count()
    response = login(terms.world.sales).post(
        _url(url_name, terms.calendar), {"cn-year": "2026", "day-date": "2026-06-01"}
    )
    assert response.status_code == 403
    assert AuditEvent.objects.count() == before


def test_sales_may_write_contracts(terms, login):
    response = login(terms.world.sales).get(_url("contract_edit", terms.contract_a))
    assert response.status_code == 200
    page = login(terms.world.engineer).get(_url("contract_detail", terms.contract_a))
    assert _url("contract_edit", terms.contract_a) not in page.content.decode()


# Contracts through forms -----------------------------------------------------------------------


def test_contract_create_and_edit_are_audited(terms, login):
    world = terms.world
    client = login(world.admin)
    response = client.post(
        reverse("contract_create"),
        _contract_post(world, sla_policy=terms.policy.pk, calendar=terms.calendar.pk),
    )
    contract = Contract.objects.get(number="CT-2026-07")
    assert response.status_code == 302
    assert response["Location"] == _url("contract_detail", contract)
    assert contract.block_minutes == 40 * 60
    assert contract.service_lines == ["security", "network_ops"]
    assert list(contract.sites.all()) == [world.site_a]
    created = _last_event(contract, "create")
    assert created.source == "ui"
    assert created.actor == world.admin

    data = _contract_post(world, status="suspended", block_hours="20.5", sites=[])
    del data["customer"], data["number"]
    response = client.post(_url("contract_edit", contract), data)
    assert response.status_code == 302
    contract.refresh_from_db()
    assert contract.status == "suspended"
    assert contract.block_minutes == 1230
    assert 'value="20.5"' in client.get(_url("contract_edit", contract)).content.decode()
    assert contract.sla_policy is None
    updated = _last_event(contract, "update")
    assert updated.changes["status"] == ["active", "suspended"]
    assert updated.changes["sites"] == [[world.site_a.pk], []]
    page = client.get(_url("contract_detail", contract)).content.decode()
    assert reverse("audit_detail", args=[updated.pk]) in page


def test_contract_service_errors_show_on_the_form_and_change_nothing(terms, login):
    world = terms.world
    client = login(world.admin)
    count = Contract.objects.count()
    response = client.post(reverse("contract_create"), _contract_post(world, block_hours=""))
    assert response.status_code == 400
    assert response.context["form"].errors["block_hours"]
    response = client.post(
        reverse("contract_create"), _contract_post(world, sites=[world.site_b.pk])
    )
    assert response.status_code == 400
    assert response.context["form"].errors["sites"]
    response = client.post(reverse("contract_create"), _contract_post(world, end_date="2025-12-31"))
    assert response.status_code == 400
    assert response.context["form"].errors["end_date"]
    assert Contract.objects.count() == count


def test_contract_form_offers_only_the_chosen_customers_sites(terms, login):
    world = terms.world
    client = login(world.admin)
    page = client.get(reverse("contract_create"), {"customer": world.customer_a.pk})
    sites = [str(choice[1]) for choice in page.context["form"].fields["sites"].choices]
    assert sites == ["A 总部"]
    assert page.context["form"]["customer"].value() == world.customer_a.pk
    every = client.get(reverse("contract_create")).context["form"].fields["sites"].choices
    assert {str(label) for _value, label in every} == {
        "上海甲方科技 · A 总部",
        "苏州乙方制造 · B 工厂",
    }
    # Sales may add contracts, but only for the customers they serve.
    response = login(world.sales).get(reverse("contract_create"), {"customer": world.customer_b.pk})
    assert response.status_code == 404


def test_contract_list_filters_and_marks_renewals(terms, login):
    today = timezone.localdate()
    services.contract_update(
        actor=None,
        contract=terms.contract_a,
        status="active",
        end_date=today + dt.timedelta(days=30),
        service_lines=["desktop"],
    )
    services.contract_update(
        actor=None,
        contract=terms.contract_b,
        status="active",
        end_date=today + dt.timedelta(days=90),
    )
    client = login(terms.world.admin)
    page = client.get(reverse("contract_list")).content.decode()
    assert page.count("renewal due") == 1
    page = client.get(reverse("contract_list"), {"service_line": "desktop"}).content.decode()
    assert "CT-A-001" in page and "CT-B-001" not in page
    page = client.get(
        reverse("contract_list"), {"customer": terms.world.customer_b.pk}
    ).content.decode()
    assert "CT-B-001" in page and "CT-A-001" not in page
    assert f"{reverse('contract_create')}?customer={terms.world.customer_b.pk}" in page
    page = client.get(reverse("contract_list"), {"status": "draft"}).content.decode()
    assert "CT-A-001" not in page
    page = client.get(reverse("contract_list"), {"q": "乙方"}).content.decode()
    assert "CT-B-001" in page and "CT-A-001" not in page


def test_contract_delete_asks_first(terms, login):
    client = login(terms.world.admin)
    url = _url("contract_delete", terms.contract_a)
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 302
    assert not Contract.objects.filter(pk=terms.contract_a.pk).exists()


# SLA policies through forms --------------------------------------------------------------------


def test_policy_create_and_edit_are_audited(terms, login):
    client = login(terms.world.admin)
    response = client.post(reverse("sla_policy_create"), _policy_post())
    policy = SlaPolicy.objects.get(name="金牌 SLA")
    assert response.status_code == 302
    targets = [
        (t.priority, t.first_response_minutes, t.resolution_minutes, t.next_update_minutes)
        for t in policy.targets.all()
    ]
    assert targets == [("P1", 30, 240, 60), ("P2", 60, 480, None)]  # empty rows left out
    assert _last_event(policy, "create").source == "ui"

    page = client.get(_url("sla_policy_edit", policy)).content.decode()
    assert 'value="4h"' in page and 'value="30m"' in page
    response = client.post(
        _url("sla_policy_edit", policy),
        _policy_post(**{"targets-1-first_response_minutes": "", "targets-1-resolution_minutes": ""})
        | {"targets-3-first_response_minutes": "1.5h", "targets-3-resolution_minutes": "3d"},
    )
    assert response.status_code == 400
    assert response.context["form"].targets.forms[3].errors["resolution_minutes"]
    response = client.post(
        _url("sla_policy_edit", policy),
        _policy_post(**{"targets-1-first_response_minutes": "", "targets-1-resolution_minutes": ""})
        | {"targets-3-first_response_minutes": "1.5h", "targets-3-resolution_minutes": "2 小时"},
    )
    assert response.status_code == 302
    assert [t.priority for t in policy.targets.all()] == ["P1", "P4"]
    assert policy.targets.get(priority="P4").first_response_minutes == 90
    assert _last_event(policy, "update").changes["targets"][1] == [
        ["P1", 30, 240, 60],
        ["P4", 90, 120, None],
    ]


def test_policy_target_errors_land_on_their_row_and_change_nothing(terms, login):
    client = login(terms.world.admin)
    response = client.post(
        reverse("sla_policy_create"),
        _policy_post(**{"targets-1-first_response_minutes": "9h"}),
    )
    assert response.status_code == 400
    row = response.context["form"].targets.forms[1]
    assert "cannot be due after" in str(row.non_field_errors())
    assert "Check the targets below." in response.content.decode()

    times = ("first_response_minutes", "resolution_minutes", "next_update_minutes")
    empty = {f"targets-{n}-{name}": "" for n in range(4) for name in times}
    response = client.post(reverse("sla_policy_create"), _policy_post(**empty))
    assert response.status_code == 400
    assert "at least one" in str(response.context["form"].non_field_errors())
    assert not SlaPolicy.objects.filter(name="金牌 SLA").exists()


# Calendars through forms -----------------------------------------------------------------------


def test_calendar_create_and_edit_are_audited(terms, login):
    client = login(terms.world.admin)
    response = client.post(
        reverse("calendar_create"),
        {"name": "深圳 7×24", "preset": "7x24", "time_zone": "Asia/Shanghai"},
    )
    calendar = BusinessCalendar.objects.get(name="深圳 7×24")
    assert response.status_code == 302
    assert calendar.weekly_hours[6] == [[0, 1440]]
    assert _last_event(calendar, "create").actor == terms.world.admin

    response = client.post(
        reverse("calendar_create"),
        {
            "name": "苏州工厂",
            "preset": "custom",
            "time_zone": "Asia/Shanghai",
            "uses_holidays": "on",
        }
        | WEEKLY_5X8,
    )
    custom = BusinessCalendar.objects.get(name="苏州工厂")
    assert custom.preset == "custom"
    assert custom.weekly_hours[4] == [[540, 720], [780, 1020]]
    assert custom.weekly_hours[5] == []

    page = client.get(_url("calendar_edit", terms.calendar)).content.decode()
    assert 'value="09:00-12:00, 13:00-18:00"' in page
    response = client.post(
        _url("calendar_edit", terms.calendar),
        {"name": "上海 5×8", "time_zone": "Asia/Shanghai", "uses_holidays": "on"}
        | WEEKLY_5X8
        | {"saturday": "9:00-12:00"},
    )
    assert response.status_code == 302
    terms.calendar.refresh_from_db()
    assert terms.calendar.preset == "custom"
    assert terms.calendar.weekly_hours[5] == [[540, 720]]
    assert _last_event(terms.calendar, "update").changes["preset"] == ["5x8", "custom"]


@pytest.mark.parametrize(
    ("monday", "message"),
    [
        ("09:00-12:00, 11:00-13:00", "overlap"),
        ("09:00-25:00", "not a time of day"),
        ("18:00-09:00", "ends before it starts"),
        ("nine to five", "start-end"),
    ],
)
def test_bad_weekly_hours_show_on_the_form_and_change_nothing(terms, login, monday, message):
    client = login(terms.world.admin)
    events = AuditEvent.objects.count()
    response = client.post(
        reverse("calendar_create"),
        {"name": "错误日历", "preset": "custom", "time_zone": "Asia/Shanghai"}
        | WEEKLY_5X8
        | {"monday": monday},
    )
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["monday"])
    assert message in response.content.decode()
    assert not BusinessCalendar.objects.filter(name="错误日历").exists()

    response = client.post(
        _url("calendar_edit", terms.calendar),
        {"name": "上海 5×8", "time_zone": "Asia/Shanghai"} | WEEKLY_5X8 | {"monday": monday},
    )
    assert response.status_code == 400
    terms.calendar.refresh_from_db()
    assert terms.calendar.preset == "5x8"
    assert AuditEvent.objects.count() == events


def test_hours_typed_for_a_preset_are_not_silently_dropped(terms, login):
    response = login(terms.world.admin).post(
        reverse("calendar_create"),
        {"name": "预设", "preset": "5x8", "time_zone": "Asia/Shanghai", "monday": "08:00-17:00"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["preset"]


def test_a_custom_calendar_needs_some_hours(terms, login):
    response = login(terms.world.admin).post(
        reverse("calendar_create"),
        {"name": "空", "preset": "custom", "time_zone": "Asia/Shanghai"},
    )
    assert response.status_code == 400
    assert response.context["form"].non_field_errors()
    assert not BusinessCalendar.objects.filter(name="空").exists()


def test_chinese_import_through_the_editor(terms, login):
    client = login(terms.world.admin)
    page = client.get(_url("calendar_detail", terms.calendar)).content.decode()
    assert 'name="cn-year"' in page
    response = client.post(_url("calendar_import_chinese", terms.calendar), {"cn-year": "2026"})
    assert response.status_code == 302
    assert response["Location"].endswith("?year=2026#days")
    days = CalendarDay.objects.filter(calendar=terms.calendar, date__year=2026)
    assert days.filter(kind="workday").count() == 6
    assert days.filter(kind="holiday").count() > 20
    assert CalendarYear.objects.filter(calendar=terms.calendar, year=2026).exists()
    event = AuditEvent.objects.filter(object_type="contracts.businesscalendar").latest("id")
    assert event.changes["imported_chinese_years"][1]["2026"]["workdays"] == 6
    summary = client.get(reverse("calendar_list")).content.decode()
    assert "2026 imported" in summary and "6 make-up workdays" in summary

    page = login(terms.world.engineer).get(response["Location"]).content.decode()
    assert "National Day" in page
    assert "Chinese statutory calendar" in page
    assert 'name="cn-year"' not in page  # an engineer reads the calendar, cannot change it


def test_admin_sees_the_editor_after_an_import(terms, login):
    services.calendar_import_chinese(actor=None, calendar=terms.calendar, years=[2026])
    page = login(terms.world.admin).get(_url("calendar_detail", terms.calendar))
    assert page.status_code == 200
    assert "National Day" in page.content.decode()


def test_an_unknown_year_is_refused(terms, login):
    response = login(terms.world.admin).post(
        _url("calendar_import_chinese", terms.calendar), {"cn-year": "2099"}
    )
    assert response.status_code == 400
    assert response.context["chinese_form"].errors["year"]
    assert not CalendarDay.objects.exists()


def test_ical_import_through_the_editor(terms, login):
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        "BEGIN:VEVENT\r\nUID:1\r\nSUMMARY:公司年会\r\nDTSTART;VALUE=DATE:20261203\r\n"
        "DTEND;VALUE=DATE:20261205\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    client = login(terms.world.admin)
    response = client.post(
        _url("calendar_import_ical", terms.calendar),
        {
            "ical-file": SimpleUploadedFile("company.ics", ics, "text/calendar"),
            "ical-kind": "holiday",
            "ical-mark_years": "2026",
        },
        follow=True,
    )
    assert "2 days imported" in response.content.decode()
    names = set(CalendarDay.objects.filter(calendar=terms.calendar).values_list("name", "source"))
    assert names == {("公司年会", "ical")}
    assert CalendarYear.objects.get(calendar=terms.calendar).year == 2026

    response = client.post(
        _url("calendar_import_ical", terms.calendar),
        {"ical-file": SimpleUploadedFile("x.ics", b"not ical"), "ical-kind": "holiday"},
    )
    assert response.status_code == 400
    assert response.context["ical_form"].errors["file"]


def test_one_day_is_set_and_removed_by_hand(terms, login):
    client = login(terms.world.admin)
    url = _url("calendar_day_set", terms.calendar)
    response = client.post(
        url,
        {
            "day-date": "2026-11-28",
            "day-kind": "workday",
            "day-name": "盘点",
            "day-hours": "09:00-12:00",
        },
    )
    assert response.status_code == 302
    day = CalendarDay.objects.get(calendar=terms.calendar, date=dt.date(2026, 11, 28))
    assert (day.kind, day.hours, day.source) == ("workday", [[540, 720]], "manual")
    assert _last_event(day, "create").source == "ui"
    page = client.get(response["Location"]).content.decode()
    assert "盘点" in page and "09:00–12:00" in page

    response = client.post(
        url, {"day-date": "2026-11-30", "day-kind": "holiday", "day-hours": "09:00-10:00"}
    )
    assert response.status_code == 400
    assert response.context["day_form"].errors["hours"]
    response = client.post(url, {"day-date": "2026-11-30", "day-kind": "workday", "day-hours": "9"})
    assert response.status_code == 400
    assert CalendarDay.objects.count() == 1

    other = services.calendar_create(actor=None, name="另一个")
    wrong = reverse("calendar_day_delete", args=[other.pk, day.pk])
    assert client.post(wrong).status_code == 404
    response = client.post(reverse("calendar_day_delete", args=[terms.calendar.pk, day.pk]))
    assert response.status_code == 302
    assert not CalendarDay.objects.exists()
    assert (
        client.get(reverse("calendar_day_delete", args=[terms.calendar.pk, 1])).status_code == 405
    )


def test_due_time_calculator(terms, login):
    services.calendar_import_chinese(actor=None, calendar=terms.calendar, years=[2026])
    client = login(terms.world.engineer)
    url = _url("calendar_detail", terms.calendar)
    # Two business hours from Friday 17:00 before National Day: the make-up Saturday, 10:00.
    response = client.get(url, {"start": "2026-10-09T17:00", "minutes": "2h"})
    assert "2026-10-10 10:00" in response.content.decode()
    assert not response.context["due"].provisional
    response = client.get(url, {"start": "2026-12-31T17:00", "minutes": "240"})
    assert response.context["due"].provisional
    assert "No holiday data for 2027: the weekly hours are assumed." in response.content.decode()
    response = client.get(url, {"start": "yesterday", "minutes": "soon"})
    assert response.context["due_form"].errors.keys() == {"start", "minutes"}


def test_due_time_is_read_and_shown_on_the_calendars_clock(terms, login):
    from onestop.core import services as core_services

    core_services.user_update(actor=None, user=terms.world.admin, time_zone="Europe/Berlin")
    page = (
        login(terms.world.admin)
        .get(
            _url("calendar_detail", terms.calendar),
            {"start": "2026-06-01T09:00", "minutes": "30"},
        )
        .content.decode()
    )
    assert "2026-06-01 09:30" in page


def test_calendar_list_warns_about_next_years_missing_data(terms, login, monkeypatch):
    services.calendar_import_chinese(actor=None, calendar=terms.calendar, years=[2026])
    services.calendar_create(actor=None, name="全天候", preset="7x24")
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: dt.date(2026, 11, 2))
    page = login(terms.world.admin).get(reverse("calendar_list")).content.decode()
    assert "No holiday data for 2027 yet in “上海 5×8”" in page
    assert "全天候”" not in page  # holidays do not apply to a 7×24 calendar
    assert "No holiday data for 2027" in (
        login(terms.world.engineer).get(_url("calendar_detail", terms.calendar)).content.decode()
    )
    # Those who cannot import the days are not nagged about them.
    page = login(terms.world.engineer).get(reverse("calendar_list")).content.decode()
    assert "No holiday data" not in page
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: dt.date(2026, 10, 31))
    page = login(terms.world.admin).get(reverse("calendar_list")).content.decode()
    assert "No holiday data" not in page


def test_calendar_delete_is_refused_while_a_contract_uses_it(terms, login):
    response = login(terms.world.admin).post(_url("calendar_delete", terms.calendar), follow=True)
    assert BusinessCalendar.objects.filter(pk=terms.calendar.pk).exists()
    assert any("上海 5×8" in str(m) for m in response.context["messages"])


# Parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("", []),
        ("09:00-12:00, 13:00-18:00", [[540, 720], [780, 1080]]),
        ("13:00–18:00，9:00~12:00", [[540, 720], [780, 1080]]),
        ("00:00-24:00", [[0, 1440]]),
        ("8-20", [[480, 1200]]),
    ],
)
def test_parse_segments(text, minutes):
    assert parse_segments(text) == minutes


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90", 90), ("30m", 30), ("4h", 240), ("1h 30m", 90), ("1.5h", 90), ("2小时", 120)],
)
def test_parse_duration(text, minutes):
    assert parse_duration(text) == minutes


# Query counts: the same whatever the number of rows --------------------------------------------


@pytest.fixture
def many_terms(terms):
    world = terms.world
    for n in range(30):
        customer = factories.customer(name=f"批量客户{n}", parent=world.customer_a)
        site = factories.site(customer)
        calendar = services.calendar_create(actor=None, name=f"日历{n}")
        CalendarYear.objects.create(calendar=calendar, year=2026, source="manual")
        policy = services.sla_policy_create(actor=None, name=f"SLA {n}", targets=TARGETS)
        contract = _contract(
            customer, f"CT-M-{n:03d}", f"批量合同{n}", terms, sla_policy=policy, calendar=calendar
        )
        contract.sites.add(site)
    return terms


@pytest.mark.parametrize("name", ["contract_list", "sla_policy_list", "calendar_list"])
@pytest.mark.parametrize("who", ["admin", "engineer"])
def test_list_pages_run_a_fixed_number_of_queries(
    many_terms, login, django_assert_max_num_queries, name, who
):
    client = login(getattr(many_terms.world, who))
    client.get(reverse(name))  # warm up: session, caches
    with django_assert_max_num_queries(10):
        response = client.get(reverse(name))
    assert response.status_code == 200
    if name == "contract_list":
        assert len(re.findall(r"CT-M-\d{3}", response.content.decode())) == 30


# The menu ------------------------------------------------------------------------------------


def test_menu_shows_contracts_to_staff_and_not_to_customer_users(terms, login):
    links = ('href="/contracts/"', 'href="/sla-policies/"', 'href="/calendars/"')
    for who in ("admin", "manager", "dispatcher", "engineer", "sales"):
        page = login(getattr(terms.world, who)).get(reverse("home")).content.decode()
        assert all(link in page for link in links), who
    page = login(terms.world.portal_a).get(reverse("home")).content.decode()
    assert not any(link in page for link in links)
    # A customer administrator reads the company's contracts, not the provider's setup.
    page = login(terms.world.portal_admin_a).get(reverse("home")).content.decode()
    assert 'href="/contracts/"' in page
    assert 'href="/sla-policies/"' not in page and 'href="/calendars/"' not in page


def test_menu_keeps_its_order_and_marks_the_current_section(terms, login):
    client = login(terms.world.admin)
    page = client.get(_url("calendar_detail", terms.calendar)).content.decode()
    menu = re.search(r'<nav class="mainnav".*?</nav>', page, re.S).group(0)
    ours = [
        "customers",
        "sites",
        "contacts",
        "contracts",
        "sla-policies",
        "calendars",
        "teams",
        "users",
        "audit",
    ]
    # Other apps add their own entries; these keep their order among them.
    order = [path for path in re.findall(r'href="/([a-z-]+)/"', menu) if path in ours]
    assert order == ours
    assert re.search(r'href="/calendars/" aria-current="page"', menu)
    assert menu.count("aria-current") == 1
