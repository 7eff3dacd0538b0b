"""Checks in the database: templates (policies) applied by customer, site and device kind with
per-device overrides, results through the state engine, maintenance windows (one-off and
recurring in a time zone), validation that changes nothing, audit records and the problems
list scoped to the user."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core.errors import ConflictError
from onestop.core.models import AuditEvent, DomainEvent
from onestop.monitoring import selectors, services
from onestop.monitoring.models import (
    Check,
    CheckState,
    CheckStateChange,
    CheckTemplate,
    MaintenanceWindow,
)
from onestop.monitoring.probes.base import verbatim
from tests.monitoring.results import record_result

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
T0 = dt.datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def english():
    # Messages are asserted in English; the default language is Chinese.
    with translation.override("en"):
        yield


def device(world, customer=None, site=None, kind=Device.Kind.SERVER, name="SRV-01", **fields):
    customer = customer or world.customer_a
    return asset_services.device_create(
        actor=None,
        customer=customer,
        name=name,
        kind=kind,
        site=site,
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


def feed(check, values, start=T0, step=60, **kwargs):
    """Records the values a minute apart; returns the state changes written."""
    changes = []
    for i, value in enumerate(values):
        at = start + dt.timedelta(seconds=step * i)
        change = record_result(check=check, value=value, at=at, **kwargs)
        if change is not None:
            changes.append(change)
    return changes


def audits(model_label: str):
    return AuditEvent.objects.filter(object_type=model_label)


# Templates ---------------------------------------------------------------------------------------


def test_templates_apply_by_customer_site_and_kind(world):
    site_a2 = services_site(world)
    server_a = device(world, site=world.site_a, name="A-SRV")
    desktop_a = device(world, site=world.site_a, kind=Device.Kind.DESKTOP, name="A-PC")
    server_a2 = device(world, site=site_a2, name="A2-SRV")
    printer_b = device(world, customer=world.customer_b, kind=Device.Kind.PRINTER, name="B-PRN")
    admin = world.admin

    by_customer_kind = services.check_template_create(
        actor=admin,
        name="Server CPU",
        customer=world.customer_a,
        device_kind=Device.Kind.SERVER,
        metric="cpu.percent",
        warning=80,
        critical=95,
    )
    by_site = services.check_template_create(
        actor=admin,
        name="Disk",
        site=world.site_a,
        metric="disk.used_percent",
        labels={"mount": "/"},
        warning=85,
        critical=95,
        consecutive=2,
    )
    everywhere_printers = services.check_template_create(
        actor=admin,
        name="Printer ping",
        device_kind=Device.Kind.PRINTER,
        kind=Check.Kind.POLLER,
        probe=Check.Probe.PING,
        mode=Check.Mode.AVAILABILITY,
        interval=30,
    )
    # Site without customer takes the site's customer.
    assert by_site.customer_id == world.customer_a.pk

    def names(target):
        return sorted(target.checks.values_list("name", flat=True))

    assert names(server_a) == ["Disk", "Server CPU"]
    assert names(desktop_a) == ["Disk"]
    assert names(server_a2) == ["Server CPU"]
    assert names(printer_b) == ["Printer ping"]
    disk = server_a.checks.get(template=by_site)
    assert (disk.metric, disk.labels, disk.consecutive) == ("disk.used_percent", {"mount": "/"}, 2)
    assert everywhere_printers.checks.get().probe == "ping"

    # A new device gets its checks without hand work; applying again changes nothing.
    new_server = device(world, site=world.site_a, name="A-SRV-2")
    assert services.check_templates_apply(device=new_server) == {
        "created": 2,
        "updated": 0,
        "removed": 0,
    }
    total = Check.objects.count()
    assert services.check_templates_apply(device=new_server) == {
        "created": 0,
        "updated": 0,
        "removed": 0,
    }
    assert Check.objects.count() == total
    assert by_customer_kind.checks.count() == 3


def services_site(world):
    from tests import factories

    return factories.site(world.customer_a, name="A 仓库")


def test_template_changes_propagate_but_overrides_are_kept(world):
    server = device(world, site=world.site_a)
    template = services.check_template_create(
        actor=world.admin, name="CPU", metric="cpu.percent", warning=80, critical=90
    )
    check = server.checks.get(template=template)
    services.check_update(actor=world.engineer, check=check, warning=85)
    check.refresh_from_db()
    assert check.overridden_fields == ["warning"]
    assert check.overridden

    services.check_template_update(
        actor=world.admin, template=template, warning=70, critical=95, interval=120
    )
    check.refresh_from_db()
    assert (check.warning, check.critical, check.interval) == (85, 95, 120)

    # Setting the template's value again means following the template again.
    services.check_update(actor=world.engineer, check=check, warning=70)
    check.refresh_from_db()
    assert check.overridden_fields == []

    services.check_update(actor=world.engineer, check=check, warning=60, enabled=False)
    services.check_override_clear(actor=world.engineer, check=check, fields=["warning"])
    check.refresh_from_db()
    assert (check.warning, check.enabled, check.overridden_fields) == (70, False, ["enabled"])
    services.check_override_clear(actor=world.engineer, check=check)
    check.refresh_from_db()
    assert (check.enabled, check.overridden_fields) == (True, [])


def test_device_leaving_a_scope_loses_the_template_check(world):
    from tests import factories

    other_site = factories.site(world.customer_a, name="A 分部")
    server = device(world, site=world.site_a)
    template = services.check_template_create(
        actor=world.admin, name="CPU", site=world.site_a, metric="cpu.percent", critical=90
    )
    assert server.checks.filter(template=template).exists()

    asset_services.device_update(actor=None, device=server, site=other_site)
    assert services.check_templates_apply(device=server)["removed"] == 1
    assert not server.checks.exists()

    # A template whose scope changes follows too.
    services.check_template_update(actor=world.admin, template=template, site=other_site)
    assert server.checks.filter(template=template).count() == 1
    services.check_template_update(actor=world.admin, template=template, device_kind="printer")
    assert not server.checks.exists()


def test_template_delete_removes_its_checks_and_template_checks_are_not_deleted_alone(world):
    server = device(world)
    template = services.check_template_create(
        actor=world.admin, name="CPU", metric="cpu.percent", critical=90
    )
    check = server.checks.get()
    with pytest.raises(ConflictError, match="template"):
        services.check_delete(actor=world.admin, check=check)
    assert Check.objects.filter(pk=check.pk).exists()

    hand_made = cpu_check(server, name="Load")
    services.check_template_delete(actor=world.admin, template=template)
    assert list(server.checks.all()) == [hand_made]
    assert not CheckTemplate.objects.exists()
    services.check_delete(actor=world.admin, check=hand_made)
    assert not Check.objects.exists()


# Results and state history ------------------------------------------------------------------------


def test_results_change_state_after_n_and_publish_the_change(world):
    server = device(world)
    check = cpu_check(server, consecutive=3, recovery=70)
    assert check.state == CheckState.UNKNOWN

    changes = feed(check, [50, 50, 50, 95, 95, 95, 85, 72, 60, 60, 60, 60])
    check.refresh_from_db()
    # From CRITICAL, 85 and 72 are still above the recovery level (WARNING), so the run of three
    # lands on WARNING; three more results at 60 bring it to OK.
    assert [(c.from_state, c.to_state) for c in changes] == [
        ("unknown", "ok"),
        ("ok", "critical"),
        ("critical", "warning"),
        ("warning", "ok"),
    ]
    assert [c.at for c in changes] == [T0 + dt.timedelta(minutes=m) for m in (2, 5, 8, 11)]
    assert changes[1].value == 95
    assert check.state == CheckState.OK
    assert check.state_since == changes[3].at
    assert check.last_value == 60
    assert check.last_message == "cpu.percent = 60"
    assert not any(c.in_maintenance for c in changes)

    events = list(DomainEvent.objects.filter(name="check.state_changed").order_by("id"))
    assert [(e.payload["from"], e.payload["to"]) for e in events] == [
        (c.from_state, c.to_state) for c in changes
    ]
    assert events[1].customer_id == world.customer_a.pk
    assert events[1].object_id == str(check.pk)
    assert events[1].payload["state_change_id"] == changes[1].pk
    assert [c.pk for c in selectors.check_state_changes_since(after_id=changes[1].pk)] == [
        changes[2].pk,
        changes[3].pk,
    ]
    assert list(selectors.check_history(check=check)) == changes[::-1]


def test_n_consecutive_counts_the_first_result_too(world):
    check = cpu_check(device(world), consecutive=2)
    assert feed(check, [10]) == []
    check.refresh_from_db()
    assert (check.state, check.candidate, check.candidate_count) == ("unknown", "ok", 1)
    [change] = feed(check, [10], start=T0 + dt.timedelta(minutes=1))
    assert change.to_state == "ok"


def test_probe_results_and_missing_data(world):
    server = device(world)
    ping = services.check_create(
        actor=None,
        device=server,
        name="Ping",
        kind=Check.Kind.POLLER,
        probe=Check.Probe.PING,
        mode=Check.Mode.AVAILABILITY,
        consecutive=2,
    )
    statuses = ["ok", "unreachable", "unreachable", "unknown", "unknown", "ok"]
    changes = []
    for i, status in enumerate(statuses):
        change = record_result(
            check=ping,
            value=1.5 if status == "ok" else None,
            status=status,
            message=None if status == "ok" else verbatim(f"ping {status}"),
            at=T0 + dt.timedelta(minutes=i),
        )
        changes.append(change and (change.from_state, change.to_state, change.message))
    assert changes == [
        None,  # one OK is not two
        None,  # and one failure interrupts it
        ("unknown", "critical", "ping unreachable"),
        None,
        ("critical", "unknown", "ping unknown"),
        None,
    ]
    assert ping.state == "unknown"  # the object passed in is kept up to date

    with pytest.raises(ValidationError) as caught:
        record_result(check=ping, value=None, status="sideways")
    assert "status" in caught.value.message_dict


def test_disabled_and_out_of_order_results_change_nothing(world):
    check = cpu_check(device(world))
    feed(check, [95], start=T0)
    check.refresh_from_db()
    assert check.state == "critical"
    # An older result (a buffered report arriving late) is ignored.
    assert record_result(check=check, value=10, at=T0 - dt.timedelta(hours=1)) is None
    check.refresh_from_db()
    assert (check.state, check.last_value, check.last_checked_at) == ("critical", 95, T0)

    services.check_update(actor=None, check=check, enabled=False)
    assert record_result(check=check, value=10, at=T0 + dt.timedelta(hours=1)) is None
    check.refresh_from_db()
    assert check.state == "critical"
    assert CheckStateChange.objects.count() == 1


def test_a_batch_of_results_decides_as_one_by_one_would_in_a_fixed_number_of_queries(world):
    server = device(world)
    window = services.maintenance_window_create(
        actor=None,
        customer=world.customer_a,
        name="Patch night",
        starts_at=T0 + dt.timedelta(minutes=30),
        ends_at=T0 + dt.timedelta(minutes=40),
    )
    values = [10, 95, 95, 85, 85, 10, 10, 95, 95, 95] * 5
    alone = cpu_check(server, name="alone", consecutive=2)
    batched = cpu_check(server, name="batched", consecutive=2)
    idle = cpu_check(server, name="idle")
    feed(alone, values)
    results = [
        services.CheckResult(batched.pk, T0 + dt.timedelta(minutes=i), value)
        for i, value in enumerate(values)
    ]
    # Out of order in the batch, a disabled check's result and an unknown check: taken in
    # time order, skipped and skipped.
    results.reverse()
    services.check_update(actor=None, check=idle, enabled=False)
    results += [services.CheckResult(idle.pk, T0, 99.0), services.CheckResult(10**9, T0, 1.0)]
    with CaptureQueriesContext(connection) as queries:
        changes = services.check_results_record(results=results)
    # A savepoint and its release (the test's transaction), the lock, one window lookup per
    # change, the update, the changes and their events: nothing per result.
    assert len(queries) <= 6 + len(changes), [q["sql"][:80] for q in queries]

    def story(check):
        return list(
            CheckStateChange.objects.filter(check_obj=check)
            .order_by("at")
            .values_list("from_state", "to_state", "at", "in_maintenance", "maintenance_window")
        )

    assert len(changes) > 5 and story(batched) == story(alone)
    assert any(row[3] and row[4] == window.pk for row in story(batched))
    fields = ("state", "state_since", "candidate", "candidate_count", "last_value")
    assert Check.objects.filter(pk=batched.pk).values(*fields).get() == (
        Check.objects.filter(pk=alone.pk).values(*fields).get()
    )
    published = DomainEvent.objects.filter(name="check.state_changed", object_id=str(batched.pk))
    assert sorted(event.payload["state_change_id"] for event in published) == sorted(
        change.pk for change in changes
    )
    assert Check.objects.get(pk=idle.pk).last_checked_at is None


def test_a_batch_with_a_bad_status_stores_nothing(world):
    check = cpu_check(device(world))
    results = [
        services.CheckResult(check.pk, T0, 95.0),
        services.CheckResult(check.pk, T0 + dt.timedelta(minutes=1), None, "exploded"),
    ]
    with pytest.raises(ValidationError):
        services.check_results_record(results=results)
    assert Check.objects.get(pk=check.pk).last_checked_at is None
    assert not CheckStateChange.objects.exists()


def test_changing_the_rule_restarts_the_running_count(world):
    check = cpu_check(device(world), consecutive=3)
    feed(check, [10, 10, 10])
    feed(check, [95, 95], start=T0 + dt.timedelta(minutes=5))
    check.refresh_from_db()
    assert (check.candidate, check.candidate_count) == ("critical", 2)
    services.check_update(actor=None, check=check, critical=99)
    check.refresh_from_db()
    assert (check.state, check.candidate, check.candidate_count) == ("ok", "", 0)
    services.check_update(actor=None, check=check, name="CPU total")
    assert Check.objects.get(pk=check.pk).state == "ok"


# Maintenance windows -----------------------------------------------------------------------------


def test_one_off_window_marks_state_changes_in_it(world):
    server = device(world, site=world.site_a)
    check = cpu_check(server)
    window = services.maintenance_window_create(
        actor=world.engineer,
        customer=world.customer_a,
        site=world.site_a,
        name="交换机更换",
        reason="Core switch replacement",
        starts_at=T0 + dt.timedelta(minutes=1),
        ends_at=T0 + dt.timedelta(minutes=3),
    )
    assert window.created_by == world.engineer
    changes = feed(check, [10, 95, 10, 95])  # minutes 0..3
    assert [(c.to_state, c.in_maintenance) for c in changes] == [
        ("ok", False),
        ("critical", True),
        ("ok", True),
        ("critical", False),  # the end is not part of the window
    ]
    assert changes[1].maintenance_window == window
    events = DomainEvent.objects.filter(name="check.state_changed").order_by("id")
    assert [e.payload["in_maintenance"] for e in events] == [False, True, True, False]
    # Checks kept recording during maintenance.
    check.refresh_from_db()
    assert check.last_value == 95


def test_window_scope_customer_site_device(world):
    from tests import factories

    other_site = factories.site(world.customer_a, name="A 分部")
    here = device(world, site=world.site_a, name="HERE")
    there = device(world, site=other_site, name="THERE")
    elsewhere = device(world, customer=world.customer_b, name="B-SRV")
    at = T0 + dt.timedelta(minutes=30)

    def window(**fields):
        return services.maintenance_window_create(
            actor=world.admin,
            name="w",
            starts_at=T0,
            ends_at=T0 + dt.timedelta(hours=1),
            **fields,
        )

    by_site = window(customer=world.customer_a, site=world.site_a)
    assert selectors.device_in_maintenance(device=here, at=at)
    assert not selectors.device_in_maintenance(device=there, at=at)
    assert not selectors.device_in_maintenance(device=here, at=T0 + dt.timedelta(hours=1))
    services.maintenance_window_delete(actor=world.admin, window=by_site)
    assert not selectors.device_in_maintenance(device=here, at=at)

    window(customer=world.customer_a, device=there)
    assert selectors.device_in_maintenance(device=there, at=at)
    assert not selectors.device_in_maintenance(device=here, at=at)

    window(customer=world.customer_a)
    assert selectors.device_in_maintenance(device=here, at=at)
    assert not selectors.device_in_maintenance(device=elsewhere, at=at)


def test_recurring_window_every_sunday_2_to_4_in_shanghai(world):
    server = device(world)
    window = services.maintenance_window_create(
        actor=world.admin,
        customer=world.customer_a,
        name="周日例行维护",
        # Sunday 5 January 2025, 02:00 in Shanghai (Saturday 18:00 UTC).
        starts_at=dt.datetime(2025, 1, 5, 2, 0, tzinfo=SHANGHAI),
        rrule="RRULE:FREQ=WEEKLY;BYDAY=SU",
        duration_minutes=120,
        time_zone="Asia/Shanghai",
    )
    assert window.rrule == "FREQ=WEEKLY;BYDAY=SU"

    def covered(year, month, day, hour, minute=0, tz=SHANGHAI):
        at = dt.datetime(year, month, day, hour, minute, tzinfo=tz)
        return selectors.device_in_maintenance(device=server, at=at)

    assert covered(2025, 3, 9, 2, 0)  # Sunday 02:00
    assert covered(2025, 3, 9, 3, 59)
    assert not covered(2025, 3, 9, 4, 0)  # the end is outside
    assert not covered(2025, 3, 9, 1, 59)
    assert not covered(2025, 3, 10, 3, 0)  # Monday
    assert not covered(2024, 12, 29, 3, 0)  # a Sunday before the first occurrence
    # Seen from UTC it is Saturday evening: the rule is read in Shanghai time.
    assert covered(2025, 3, 8, 19, 30, tz=UTC)
    assert not covered(2025, 3, 9, 19, 30, tz=UTC)

    check = cpu_check(server)
    sunday_3am = dt.datetime(2025, 3, 9, 3, 0, tzinfo=SHANGHAI)
    monday_3am = dt.datetime(2025, 3, 10, 3, 0, tzinfo=SHANGHAI)
    first = record_result(check=check, value=95, at=sunday_3am)
    second = record_result(check=check, value=10, at=monday_3am)
    assert (first.in_maintenance, first.maintenance_window) == (True, window)
    assert (second.in_maintenance, second.maintenance_window) == (False, None)


def test_recurring_window_until_and_wall_clock_across_dst(world):
    server = device(world)
    services.maintenance_window_create(
        actor=world.admin,
        customer=world.customer_a,
        name="until",
        starts_at=dt.datetime(2025, 1, 5, 2, 0, tzinfo=SHANGHAI),
        rrule="FREQ=WEEKLY;BYDAY=SU;UNTIL=20250301T000000Z",
        duration_minutes=120,
    )
    feb = dt.datetime(2025, 2, 23, 3, 0, tzinfo=SHANGHAI)
    march = dt.datetime(2025, 3, 2, 3, 0, tzinfo=SHANGHAI)
    assert selectors.device_in_maintenance(device=server, at=feb)
    assert not selectors.device_in_maintenance(device=server, at=march)

    berlin = ZoneInfo("Europe/Berlin")
    other = device(world, customer=world.customer_b, name="B-SRV")
    services.maintenance_window_create(
        actor=world.admin,
        customer=world.customer_b,
        name="daily 01:00 Berlin",
        starts_at=dt.datetime(2025, 1, 1, 1, 0, tzinfo=berlin),
        rrule="FREQ=DAILY",
        duration_minutes=30,
        time_zone="Europe/Berlin",
    )
    # 01:15 local both in winter (UTC+1) and summer (UTC+2).
    winter = dt.datetime(2025, 2, 1, 0, 15, tzinfo=UTC)
    summer = dt.datetime(2025, 7, 1, 23, 15, tzinfo=UTC)
    assert selectors.device_in_maintenance(device=other, at=winter)
    assert selectors.device_in_maintenance(device=other, at=summer)
    assert not selectors.device_in_maintenance(device=other, at=summer + dt.timedelta(hours=1))


# Validation changes nothing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"warning": 95, "critical": 90}, "warning", "below the critical"),
        (
            {"direction": "lower", "metric": "disk.free_bytes", "warning": 5, "critical": 10},
            "warning",
            "above the critical",
        ),
        ({"warning": 80, "critical": 90, "recovery": 85}, "recovery", "below the warning"),
        ({"consecutive": 0}, "consecutive", "At least one"),
        ({"interval": 5}, "interval", "10 seconds"),
        ({"timeout": 90, "interval": 60}, "timeout", "interval"),
        ({"hysteresis": -2}, "hysteresis", "negative"),
        ({"warning": None, "critical": None}, "critical", "warning level"),
        ({"metric": "cpu.frequency"}, "metric", "agents report"),
        ({"labels": {"Mount": "/"}}, "labels", "Labels"),
        ({"direction": "sideways"}, "direction", "valid choice"),
    ],
)
def test_nonsense_checks_are_refused_with_the_field_at_fault(world, fields, field, words):
    server = device(world)
    audited = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as caught:
        cpu_check(server, **fields)
    assert words in " ".join(caught.value.message_dict[field])
    assert not Check.objects.exists()
    assert AuditEvent.objects.count() == audited


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"probe": ""}, "Choose the probe"),
        ({"probe": "tcp"}, "port: required"),
        ({"probe": "tcp", "params": {"port": 70000}}, "65535"),
        ({"probe": "http", "params": {"url": "ftp://x"}}, "https://"),
        ({"probe": "ping", "params": {"community": "public"}}, "not a parameter"),
        ({"probe": "snmp_oid", "params": {"oid": "sysUpTime"}}, "numeric OID"),
    ],
)
def test_nonsense_probes_are_refused(world, fields, words):
    server = device(world)
    with pytest.raises(ValidationError) as caught:
        services.check_create(
            actor=None,
            device=server,
            name="probe",
            kind=Check.Kind.POLLER,
            mode=Check.Mode.AVAILABILITY,
            **fields,
        )
    errors = caught.value.message_dict
    assert words in " ".join(errors.get("params", []) + errors.get("probe", []))
    assert not Check.objects.exists()


def test_a_probe_needs_an_address_to_probe(world):
    no_address = device(world, ip_address=None, name="NOADDR")
    with pytest.raises(ValidationError, match="no IP address"):
        services.check_create(
            actor=None,
            device=no_address,
            name="ping",
            kind="poller",
            probe="ping",
            mode="availability",
        )
    ok = services.check_create(
        actor=None,
        device=no_address,
        name="ping",
        kind="poller",
        probe="ping",
        mode="availability",
        params={"host": "gw.example.cn"},
    )
    assert ok.params == {"host": "gw.example.cn"}


def test_failed_updates_change_nothing(world):
    server = device(world)
    template = services.check_template_create(
        actor=world.admin,
        name="CPU",
        customer=world.customer_a,
        metric="cpu.percent",
        warning=80,
        critical=90,
    )
    check = server.checks.get()
    audited = AuditEvent.objects.count()

    with pytest.raises(ValidationError, match="below the critical"):
        services.check_template_update(actor=world.admin, template=template, warning=99)
    with pytest.raises(ValidationError, match="below the critical"):
        services.check_update(actor=world.admin, check=check, warning=99)
    template.refresh_from_db()
    check.refresh_from_db()
    assert (template.warning, check.warning, check.overridden_fields) == (80, 80, [])
    with pytest.raises(ValidationError) as caught:
        services.check_template_update(actor=world.admin, template=template, site=world.site_b)
    assert "site" in caught.value.message_dict
    assert AuditEvent.objects.count() == audited


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"ends_at": T0 - dt.timedelta(hours=1)}, "ends_at", "after the start"),
        ({"ends_at": None}, "ends_at", "after the start"),
        (
            {"ends_at": None, "rrule": "FREQ=WEEKLY;BYDAY=XX", "duration_minutes": 60},
            "rrule",
            "valid RRULE",
        ),
        (
            {"ends_at": None, "rrule": "FREQ=MINUTELY", "duration_minutes": 60},
            "rrule",
            "daily, weekly",
        ),
        ({"ends_at": None, "rrule": "FREQ=DAILY"}, "duration_minutes", "31 days"),
        (
            {"ends_at": None, "rrule": "FREQ=DAILY", "duration_minutes": 40 * 24 * 60},
            "duration_minutes",
            "31 days",
        ),
        (
            {"rrule": "FREQ=DAILY", "duration_minutes": 60},
            "ends_at",
            "UNTIL or COUNT",
        ),
        (
            {
                "ends_at": None,
                "rrule": "FREQ=DAILY;UNTIL=20250101T000000Z",
                "duration_minutes": 60,
            },
            "rrule",
            "never repeats",
        ),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "valid choice"),
    ],
)
def test_nonsense_windows_are_refused(world, fields, field, words):
    values = {"ends_at": T0 + dt.timedelta(hours=1), **fields}
    with pytest.raises(ValidationError) as caught:
        services.maintenance_window_create(
            actor=world.admin, customer=world.customer_a, name="w", starts_at=T0, **values
        )
    assert words in " ".join(caught.value.message_dict[field])
    assert not MaintenanceWindow.objects.exists()


def test_window_parts_must_belong_to_the_customer(world):
    b_device = device(world, customer=world.customer_b, name="B-SRV")
    with pytest.raises(ValidationError) as caught:
        services.maintenance_window_create(
            actor=world.admin,
            customer=world.customer_a,
            site=world.site_b,
            device=b_device,
            name="w",
            starts_at=T0,
            ends_at=T0 + dt.timedelta(hours=1),
        )
    assert set(caught.value.message_dict) == {"site", "device"}
    assert not MaintenanceWindow.objects.exists()


# Audit ------------------------------------------------------------------------------------------


def test_every_user_change_is_audited_but_results_are_not(world):
    server = device(world)
    check = cpu_check(server)
    created = audits("monitoring.check").get(action="create")
    assert created.customer_id == world.customer_a.pk
    assert created.changes["critical"] == [None, 90.0]

    services.check_update(actor=world.engineer, check=check, critical=95)
    updated = audits("monitoring.check").get(action="update")
    assert updated.actor == world.engineer
    assert updated.changes == {"critical": [90.0, 95.0]}

    before = AuditEvent.objects.count()
    feed(check, [99, 10, 99])
    assert AuditEvent.objects.count() == before  # results have their own history

    template = services.check_template_create(
        actor=world.admin, name="Mem", metric="mem.used_percent", critical=95
    )
    assert audits("monitoring.checktemplate").filter(action="create", actor=world.admin).exists()
    # The check the template gave the device is audited as made by the template's author.
    assert audits("monitoring.check").filter(action="create", actor=world.admin).count() == 1
    services.check_template_update(actor=world.admin, template=template, critical=97)
    assert audits("monitoring.check").filter(action="update", actor=world.admin).get().changes == {
        "critical": [95.0, 97.0]
    }

    window = services.maintenance_window_create(
        actor=world.admin,
        customer=world.customer_a,
        name="w",
        starts_at=T0,
        ends_at=T0 + dt.timedelta(hours=1),
    )
    services.maintenance_window_update(actor=world.admin, window=window, reason="UPS swap")
    services.maintenance_window_delete(actor=world.admin, window=window)
    assert list(
        audits("monitoring.maintenancewindow").order_by("id").values_list("action", flat=True)
    ) == ["create", "update", "delete"]
    pk = check.pk
    services.check_delete(actor=world.admin, check=check)
    assert audits("monitoring.check").filter(action="delete", object_id=str(pk)).exists()


# Problems list and scoping ------------------------------------------------------------------------


def test_problems_list_is_scoped_and_worst_first(world):
    a_server = device(world, name="A-SRV")
    b_server = device(world, customer=world.customer_b, name="B-SRV")
    a_critical = cpu_check(a_server, name="A CPU")
    a_warning = cpu_check(a_server, name="A load", metric="load.1", warning=4, critical=8)
    a_ok = cpu_check(a_server, name="A mem", metric="mem.used_percent")
    a_pending = cpu_check(a_server, name="A disk", metric="disk.used_percent")
    a_disabled = cpu_check(a_server, name="A swap", metric="swap.used_percent")
    b_unknown = cpu_check(b_server, name="B CPU")
    feed(a_critical, [99])
    feed(a_warning, [5])
    feed(a_ok, [10])
    feed(a_disabled, [99])
    services.check_update(actor=None, check=a_disabled, enabled=False)
    feed(b_unknown, [None])
    assert a_pending.last_checked_at is None

    def seen(user):
        return [check.name for check in selectors.problems_list(user=user)]

    assert seen(world.admin) == ["A CPU", "A load", "B CPU"]
    assert seen(world.engineer) == ["A CPU", "A load"]
    assert seen(world.portal_a) == ["A CPU", "A load"]
    assert seen(world.other_engineer) == ["B CPU"]
    assert seen(world.portal_b) == ["B CPU"]

    # Other reads are scoped the same way.
    assert selectors.check_list(user=world.engineer, device=b_server).count() == 0
    assert selectors.check_list(user=world.other_engineer, device=b_server).count() == 1
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.check_get(user=world.engineer, pk=b_unknown.pk)


def test_template_and_window_lists_are_scoped(world):
    global_template = services.check_template_create(
        actor=world.admin, name="global", metric="cpu.percent", critical=90
    )
    a_template = services.check_template_create(
        actor=world.admin, name="A", customer=world.customer_a, metric="cpu.percent", critical=90
    )
    services.check_template_create(
        actor=world.admin, name="B", customer=world.customer_b, metric="cpu.percent", critical=90
    )
    assert set(selectors.check_template_list(user=world.engineer)) == {global_template, a_template}
    assert selectors.check_template_list(user=world.admin).count() == 3
    assert not selectors.check_template_list(user=world.portal_admin_a).exists()

    window = services.maintenance_window_create(
        actor=world.admin,
        customer=world.customer_b,
        name="B",
        starts_at=timezone.now(),
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )
    assert not selectors.maintenance_window_list(user=world.engineer).exists()
    assert list(selectors.maintenance_window_list(user=world.portal_b)) == [window]


def test_a_window_without_a_time_zone_is_refused(world):
    with pytest.raises(ValidationError) as caught:
        services.maintenance_window_create(
            actor=world.admin,
            customer=world.customer_a,
            name="w",
            starts_at=dt.datetime(2025, 3, 9, 2, 0),  # naive: the mistake under test
            ends_at=dt.datetime(2025, 3, 9, 4, 0),
        )
    assert "time zone" in " ".join(caught.value.message_dict["starts_at"])
    assert not MaintenanceWindow.objects.exists()
