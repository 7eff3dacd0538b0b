"""The checks API beyond the generic resource tests (tests/apitest.py): what a check shows,
per-device overrides of template checks, the 409 of a template's check, history newest first,
templates applied to devices, maintenance windows one-off and repeating with `active_at`, the
problems list, bad input that changes nothing, audit records, and lists whose query count does
not grow with their rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core.models import AuditEvent
from onestop.monitoring import services
from onestop.monitoring.models import Check, CheckTemplate, MaintenanceWindow
from tests.apitest import api_client, call
from tests.monitoring.results import record_result

pytestmark = pytest.mark.django_db
API = "/api/v1"
T0 = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)


def device(world, customer=None, kind=Device.Kind.SERVER, name="SRV-01", **fields):
    return asset_services.device_create(
        actor=None,
        customer=customer or world.customer_a,
        name=name,
        kind=kind,
        ip_address=fields.pop("ip_address", "10.0.0.5"),
        **fields,
    )


def cpu_check(target, **fields):
    fields.setdefault("metric", "cpu.percent")
    fields.setdefault("warning", 80)
    fields.setdefault("critical", 90)
    return services.check_create(
        actor=None, device=target, name=fields.pop("name", "CPU"), **fields
    )


def feed(check, values, start=T0):
    for i, value in enumerate(values):
        record_result(check=check, value=value, at=start + dt.timedelta(minutes=i))


def template(world, **fields):
    fields.setdefault("metric", "cpu.percent")
    fields.setdefault("warning", 80)
    fields.setdefault("critical", 90)
    return services.check_template_create(
        actor=world.admin, name=fields.pop("name", "Server CPU"), **fields
    )


def fields_of(response) -> set[str | None]:
    return {error["field"] for error in response.body["errors"]}


# Checks ----------------------------------------------------------------------------------------


def test_a_check_shows_its_state_result_template_and_overrides(world):
    server = device(world)
    tpl = template(world, customer=world.customer_a)
    check = server.checks.get(template=tpl)
    feed(check, [95])
    client = api_client(world.engineer)

    response = call(client, "patch", f"{API}/checks/{check.pk}", {"critical": 92})
    assert response.status_code == 200, response.body
    body = call(client, "get", f"{API}/checks/{check.pk}").body
    assert body["state"] == "critical"
    assert body["state_since"].startswith("2025-03-03T08:00:00")
    assert body["last_value"] == 95
    assert body["last_message"]
    assert body["last_checked_at"].startswith("2025-03-03T08:00:00")
    assert body["template_id"] == tpl.pk
    assert body["overridden_fields"] == ["critical"]
    assert (body["device_id"], body["customer_id"]) == (server.pk, world.customer_a.pk)
    assert (body["metric"], body["warning"], body["critical"]) == ("cpu.percent", 80, 92)


def test_create_a_check_is_audited_as_the_api_user(world):
    server = device(world)
    response = call(
        api_client(world.engineer),
        "post",
        f"{API}/checks",
        {
            "device_id": server.pk,
            "name": "Web",
            "kind": "poller",
            "probe": "http",
            "params": {"url": "https://intranet.example.cn/health", "expected_status": [200]},
            "mode": "availability",
            "interval": 120,
        },
    )
    assert response.status_code == 201, response.body
    assert (response.body["probe"], response.body["template_id"]) == ("http", None)
    assert (response.body["state"], response.body["last_checked_at"]) == ("unknown", None)
    event = AuditEvent.objects.get(
        action="create", object_type="monitoring.check", object_id=str(response.body["id"])
    )
    assert (event.actor, event.source) == (world.engineer, "api")


def test_a_device_out_of_scope_is_no_such_device(world):
    foreign = device(world, customer=world.customer_b)
    client = api_client(world.engineer)
    count, audits = Check.objects.count(), AuditEvent.objects.count()
    response = call(
        client,
        "post",
        f"{API}/checks",
        {"device_id": foreign.pk, "name": "CPU", "metric": "cpu.percent", "critical": 90},
    )
    assert response.status_code == 422
    assert fields_of(response) == {"device_id"}
    assert (Check.objects.count(), AuditEvent.objects.count()) == (count, audits)


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"metric": "cpu.percent", "warning": 95, "critical": 90}, "warning"),
        ({"metric": "cpu.percent"}, "critical"),  # no level at all
        ({"metric": "no.such.metric", "critical": 90}, "metric"),
        ({"kind": "poller", "probe": "tcp", "params": {"host": "10.0.0.5"}}, "params"),
        ({"kind": "poller", "probe": "ping", "params": {"colour": "red"}}, "params"),
        ({"metric": "cpu.percent", "critical": 90, "interval": 5}, "interval"),
        ({"metric": "cpu.percent", "critical": 90, "probe": "dns"}, "probe"),
        ({"metric": "cpu.percent", "critical": 90, "mode": "sometimes"}, "mode"),
    ],
)
def test_bad_check_definitions_are_field_errors_and_change_nothing(world, payload, field):
    server = device(world)
    client = api_client(world.engineer)
    count, audits = Check.objects.count(), AuditEvent.objects.count()
    response = call(
        client,
        "post",
        f"{API}/checks",
        {"device_id": server.pk, "name": "bad", **payload},
    )
    assert response.status_code == 422, response.body
    assert response["Content-Type"] == "application/problem+json"
    if field is not None:
        assert field in fields_of(response), response.body
    assert (Check.objects.count(), AuditEvent.objects.count()) == (count, audits)


def test_a_bad_patch_changes_nothing(world):
    check = cpu_check(device(world))
    client = api_client(world.engineer)
    audits = AuditEvent.objects.count()
    for patch, field in (
        ({"warning": 99}, "warning"),
        ({"name": None}, "name"),
        ({"timeout": 500}, "timeout"),
    ):
        response = call(client, "patch", f"{API}/checks/{check.pk}", patch)
        assert response.status_code == 422, response.body
        assert field in fields_of(response), response.body
    check.refresh_from_db()
    assert (check.name, check.warning, check.timeout) == ("CPU", 80, 5)
    assert AuditEvent.objects.count() == audits


def test_filters_by_device_state_kind_probe_and_enabled(world):
    server, other = device(world), device(world, name="SRV-02")
    hot = cpu_check(server)
    feed(hot, [95])
    quiet = cpu_check(other, enabled=False)
    ping = services.check_create(
        actor=None, device=other, name="Ping", kind="poller", probe="ping", mode="availability"
    )
    client = api_client(world.admin)

    def ids(**query):
        response = call(client, "get", f"{API}/checks", **query)
        assert response.status_code == 200, response.body
        return {item["id"] for item in response.body["results"]}

    assert ids() == {hot.pk, quiet.pk, ping.pk}
    assert ids(device_id=other.pk) == {quiet.pk, ping.pk}
    assert ids(state="critical") == {hot.pk}
    assert ids(state="unknown") == {quiet.pk, ping.pk}
    assert ids(kind="poller") == ids(probe="ping") == {ping.pk}
    assert ids(enabled="false") == {quiet.pk}
    assert ids(customer_id=world.customer_b.pk) == set()
    assert call(client, "get", f"{API}/checks", state="purple").status_code == 422


def test_customer_users_see_checks_only_as_the_companys_administrator(world):
    check = cpu_check(device(world))
    listed = call(api_client(world.portal_admin_a), "get", f"{API}/checks")
    assert [item["id"] for item in listed.body["results"]] == [check.pk]
    plain = api_client(world.portal_a)
    assert call(plain, "get", f"{API}/checks").status_code == 403
    assert call(plain, "get", f"{API}/problems").status_code == 403
    assert call(plain, "get", f"{API}/check-templates").status_code == 403


# Template checks: overrides, clearing them, and the 409 on delete --------------------------------


def test_template_check_overrides_follow_the_service_rules(world):
    server = device(world)
    tpl = template(world, customer=world.customer_a)
    check = server.checks.get(template=tpl)
    client = api_client(world.engineer)
    url = f"{API}/checks/{check.pk}"

    body = call(client, "patch", url, {"warning": 85, "enabled": False}).body
    assert body["overridden_fields"] == ["enabled", "warning"]
    # Back to the template's value: it follows the template again.
    body = call(client, "patch", url, {"enabled": True}).body
    assert body["overridden_fields"] == ["warning"]

    # A template change leaves the override alone.
    response = call(
        api_client(world.admin), "patch", f"{API}/check-templates/{tpl.pk}", {"warning": 70}
    )
    assert response.status_code == 200, response.body
    check.refresh_from_db()
    assert (check.warning, check.overridden_fields) == (85, ["warning"])

    response = call(client, "post", f"{url}/clear-overrides", {"fields": ["colour"]})
    assert response.status_code == 422
    assert fields_of(response) == {"fields"}
    response = call(client, "post", f"{url}/clear-overrides", {})
    assert response.status_code == 200, response.body
    assert (response.body["warning"], response.body["overridden_fields"]) == (70, [])
    event = AuditEvent.objects.filter(
        action="update", object_type="monitoring.check", object_id=str(check.pk)
    ).latest("id")
    assert (event.actor, event.source) == (world.engineer, "api")
    assert "warning" in event.changes


def test_clear_overrides_of_a_hand_made_check_is_409(world):
    check = cpu_check(device(world))
    response = call(
        api_client(world.engineer), "post", f"{API}/checks/{check.pk}/clear-overrides", {}
    )
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"


def test_a_template_check_is_not_deleted_but_refused_with_409(world):
    server = device(world)
    tpl = template(world, customer=world.customer_a)
    check = server.checks.get(template=tpl)
    client = api_client(world.engineer)
    audits = AuditEvent.objects.count()
    response = call(client, "delete", f"{API}/checks/{check.pk}")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.body["errors"][0]["field"] == "template"
    assert Check.objects.filter(pk=check.pk).exists()
    assert AuditEvent.objects.count() == audits


# History -----------------------------------------------------------------------------------------


def test_history_is_newest_first_and_paginated(world):
    check = cpu_check(device(world))
    feed(check, [50, 85, 95, 50])
    client = api_client(world.engineer)
    response = call(client, "get", f"{API}/checks/{check.pk}/history", page_size=2)
    assert response.status_code == 200, response.body
    first = response.body["results"]
    assert [(c["from_state"], c["to_state"]) for c in first] == [
        ("critical", "ok"),
        ("warning", "critical"),
    ]
    assert first[0]["at"] > first[1]["at"]
    assert first[0]["in_maintenance"] is False
    rest = client.get(response.body["next"]).json()["results"]
    assert [(c["from_state"], c["to_state"]) for c in rest] == [
        ("ok", "warning"),
        ("unknown", "ok"),
    ]


def test_history_marks_changes_in_a_maintenance_window(world):
    server = device(world)
    window = services.maintenance_window_create(
        actor=None,
        customer=world.customer_a,
        device=server,
        name="Patch day",
        starts_at=T0 - dt.timedelta(hours=1),
        ends_at=T0 + dt.timedelta(hours=1),
    )
    check = cpu_check(server)
    feed(check, [95])
    change = call(api_client(world.engineer), "get", f"{API}/checks/{check.pk}/history").body[
        "results"
    ][0]
    assert (change["in_maintenance"], change["maintenance_window_id"]) == (True, window.pk)


# Templates ---------------------------------------------------------------------------------------


def test_creating_and_changing_a_template_applies_it_to_matching_devices(world):
    server_a = device(world, name="A-SRV")
    desktop_a = device(world, kind=Device.Kind.DESKTOP, name="A-PC")
    server_b = device(world, customer=world.customer_b, name="B-SRV")
    client = api_client(world.admin)
    response = call(
        client,
        "post",
        f"{API}/check-templates",
        {
            "name": "Server disk",
            "customer_id": world.customer_a.pk,
            "device_kind": "server",
            "metric": "disk.used_percent",
            "labels": {"mount": "/"},
            "warning": 85,
            "critical": 95,
        },
    )
    assert response.status_code == 201, response.body
    tpl_id = response.body["id"]
    assert (response.body["customer_id"], response.body["device_kind"]) == (
        world.customer_a.pk,
        "server",
    )
    assert list(Check.objects.filter(template_id=tpl_id).values_list("device_id", flat=True)) == [
        server_a.pk
    ]
    made = Check.objects.get(template_id=tpl_id)
    assert AuditEvent.objects.filter(
        action="create", object_type="monitoring.check", object_id=str(made.pk), actor=world.admin
    ).exists()

    # Any kind of device: the desktop gets it too; B stays out (another customer).
    response = call(client, "patch", f"{API}/check-templates/{tpl_id}", {"device_kind": None})
    assert response.status_code == 200, response.body
    assert response.body["device_kind"] == ""
    assert set(Check.objects.filter(template_id=tpl_id).values_list("device_id", flat=True)) == {
        server_a.pk,
        desktop_a.pk,
    }
    assert not server_b.checks.exists()

    response = call(client, "delete", f"{API}/check-templates/{tpl_id}")
    assert response.status_code == 204
    assert not Check.objects.filter(device__in=[server_a, desktop_a]).exists()


def test_template_with_a_site_of_another_customer_is_refused(world):
    count = CheckTemplate.objects.count()
    response = call(
        api_client(world.admin),
        "post",
        f"{API}/check-templates",
        {
            "name": "CPU",
            "customer_id": world.customer_a.pk,
            "site_id": world.site_b.pk,
            "metric": "cpu.percent",
            "critical": 90,
        },
    )
    assert response.status_code == 422
    assert fields_of(response) == {"site"}
    assert CheckTemplate.objects.count() == count


def test_staff_see_provider_wide_templates_and_those_of_their_customers(world):
    everywhere = template(world, name="Everywhere")
    mine = template(world, name="A", customer=world.customer_a)
    theirs = template(world, name="B", customer=world.customer_b)
    listed = call(api_client(world.engineer), "get", f"{API}/check-templates", page_size=100)
    assert {item["id"] for item in listed.body["results"]} == {everywhere.pk, mine.pk}
    assert (
        call(api_client(world.engineer), "get", f"{API}/check-templates/{theirs.pk}").status_code
        == 404
    )


# Maintenance windows -----------------------------------------------------------------------------


def window_payload(world, **fields):
    return {
        "customer_id": world.customer_a.pk,
        "name": "Patch night",
        "starts_at": "2026-06-07T02:00:00+08:00",
        "ends_at": "2026-06-07T04:00:00+08:00",
        **fields,
    }


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"ends_at": None}, "ends_at"),
        ({"ends_at": "2026-06-07T01:00:00+08:00"}, "ends_at"),
        ({"starts_at": "2026-06-07T02:00:00", "ends_at": "2026-06-07T04:00:00"}, "starts_at"),
        ({"ends_at": None, "rrule": "FREQ=HOURLY", "duration_minutes": 60}, "rrule"),
        ({"ends_at": None, "rrule": "FREQ=WEEKLY;BYDAY=XX", "duration_minutes": 60}, "rrule"),
        ({"ends_at": None, "rrule": "FREQ=WEEKLY"}, "duration_minutes"),
        ({"duration_minutes": 30}, "duration_minutes"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ],
)
def test_bad_windows_are_field_errors_and_change_nothing(world, fields, field):
    client = api_client(world.engineer)
    count, audits = MaintenanceWindow.objects.count(), AuditEvent.objects.count()
    response = call(
        client,
        "post",
        f"{API}/maintenance-windows",
        window_payload(world, **fields),
    )
    assert response.status_code == 422, response.body
    assert field in fields_of(response), response.body
    assert (MaintenanceWindow.objects.count(), AuditEvent.objects.count()) == (count, audits)


def test_a_window_for_a_device_of_another_customer_is_refused(world):
    foreign = device(world, customer=world.customer_b)
    response = call(
        api_client(world.admin),
        "post",
        f"{API}/maintenance-windows",
        window_payload(world, device_id=foreign.pk),
    )
    assert response.status_code == 422
    assert fields_of(response) == {"device"}
    # An engineer who does not serve B is told there is no such device.
    response = call(
        api_client(world.engineer),
        "post",
        f"{API}/maintenance-windows",
        window_payload(world, device_id=foreign.pk),
    )
    assert fields_of(response) == {"device_id"}
    assert not MaintenanceWindow.objects.exists()


def test_active_at_finds_one_off_and_repeating_windows(world):
    client = api_client(world.engineer)
    sundays = call(
        client,
        "post",
        f"{API}/maintenance-windows",
        window_payload(
            world,
            name="Sunday nights",
            starts_at="2026-06-07T02:00:00+08:00",
            ends_at=None,
            rrule="FREQ=WEEKLY;BYDAY=SU",
            duration_minutes=120,
        ),
    )
    assert sundays.status_code == 201, sundays.body
    assert (sundays.body["is_recurring"], sundays.body["rrule"]) == (True, "FREQ=WEEKLY;BYDAY=SU")
    one_off = call(client, "post", f"{API}/maintenance-windows", window_payload(world))
    assert one_off.status_code == 201, one_off.body

    def active(at):
        response = call(client, "get", f"{API}/maintenance-windows", active_at=at)
        assert response.status_code == 200, response.body
        return {item["id"] for item in response.body["results"]}

    # Sunday 7 June 03:00 in Shanghai: both; a week later only the repeating one.
    assert active("2026-06-06T19:00:00Z") == {sundays.body["id"], one_off.body["id"]}
    assert active("2026-06-13T19:00:00Z") == {sundays.body["id"]}
    assert active("2026-06-13T21:00:00Z") == set()
    response = call(client, "get", f"{API}/maintenance-windows", active_at="2026-06-13T19:00:00")
    assert response.status_code == 422
    assert fields_of(response) == {"active_at"}


def test_a_window_patch_is_checked_and_audited(world):
    client = api_client(world.engineer)
    created = call(client, "post", f"{API}/maintenance-windows", window_payload(world)).body
    url = f"{API}/maintenance-windows/{created['id']}"
    response = call(client, "patch", url, {"ends_at": "2026-06-07T01:00:00+08:00"})
    assert response.status_code == 422
    response = call(client, "patch", url, {"site_id": world.site_a.pk, "reason": "UPS"})
    assert response.status_code == 200, response.body
    assert (response.body["site_id"], response.body["reason"]) == (world.site_a.pk, "UPS")
    event = AuditEvent.objects.filter(
        action="update", object_type="monitoring.maintenancewindow", object_id=str(created["id"])
    ).latest("id")
    assert (event.actor, event.source) == (world.engineer, "api")
    assert set(event.changes) == {"site", "reason"}


# Problems ----------------------------------------------------------------------------------------


def test_problems_are_the_enabled_checks_with_a_result_that_is_not_ok(world):
    server = device(world)
    critical = cpu_check(server, name="critical")
    warning = cpu_check(server, name="warning")
    fine = cpu_check(server, name="fine")
    cpu_check(server, name="pending")  # never checked: pending, not a problem
    disabled = cpu_check(server, name="disabled")
    feed(critical, [95])
    feed(warning, [85])
    feed(fine, [10])
    feed(disabled, [95])
    services.check_update(actor=None, check=disabled, enabled=False)
    foreign = cpu_check(device(world, customer=world.customer_b))
    feed(foreign, [95])

    client = api_client(world.engineer)
    listed = call(client, "get", f"{API}/problems").body["results"]
    assert [item["id"] for item in listed] == [critical.pk, warning.pk]
    assert listed[0]["device_name"] == "SRV-01"
    assert listed[0]["state"] == "critical"
    by_state = call(client, "get", f"{API}/problems", state="warning").body["results"]
    assert [item["id"] for item in by_state] == [warning.pk]
    assert call(client, "get", f"{API}/problems/{fine.pk}").status_code == 404
    assert call(client, "get", f"{API}/problems/{foreign.pk}").status_code == 404
    admin_view = call(api_client(world.portal_admin_a), "get", f"{API}/problems").body
    assert [item["id"] for item in admin_view["results"]] == [critical.pk, warning.pk]


# Query counts ------------------------------------------------------------------------------------


def _same_count(client, path, add, **query):
    """The list costs as many queries with many rows as with few."""
    add()
    call(client, "get", path, **query)  # warm up: token last-used write, caches
    with CaptureQueriesContext(connection) as few:
        first = call(client, "get", path, page_size=100, **query)
    for _ in range(10):
        add()
    with CaptureQueriesContext(connection) as many:
        response = call(client, "get", path, page_size=100, **query)
    assert response.status_code == 200, response.body
    assert len(response.body["results"]) > len(first.body["results"])
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_check_list_with_template_checks_in_fixed_queries(world):
    tpl = template(world, customer=world.customer_a)
    names = iter(range(1000))

    def add():
        server = device(world, name=f"SRV-{next(names)}")
        services.check_templates_apply(device=server)
        feed(cpu_check(server, name="own"), [95])
        services.check_update(actor=None, check=server.checks.get(template=tpl), warning=85)

    _same_count(api_client(world.engineer), f"{API}/checks", add)


def test_problem_list_in_fixed_queries(world):
    names = iter(range(1000))

    def add():
        feed(cpu_check(device(world, name=f"SRV-{next(names)}")), [95])

    _same_count(api_client(world.engineer), f"{API}/problems", add)


def test_history_in_fixed_queries(world):
    server = device(world)
    check = cpu_check(server)
    services.maintenance_window_create(
        actor=None,
        customer=world.customer_a,
        name="Always",
        starts_at=T0 - dt.timedelta(days=1),
        ends_at=T0 + dt.timedelta(days=1),
    )
    start = iter(T0 + dt.timedelta(minutes=10 * n) for n in range(1000))

    def add():
        feed(check, [95, 10], start=next(start))

    _same_count(api_client(world.engineer), f"{API}/checks/{check.pk}/history", add)


def test_active_window_list_in_fixed_queries(world):
    def add():
        services.maintenance_window_create(
            actor=None,
            customer=world.customer_a,
            name="Daily",
            starts_at=timezone.now() - dt.timedelta(days=3, minutes=30),
            rrule="FREQ=DAILY",
            duration_minutes=120,
            time_zone="Asia/Shanghai",
        )

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _same_count(api_client(world.engineer), f"{API}/maintenance-windows", add, active_at=now)
