"""The checks pages through Django's test client: a device's checks and their state history,
the problems list, check templates, maintenance windows and SNMP credentials. Each page renders
for the roles allowed, is refused (403) or absent (404) for the others, saves through the
forms, shows the services' errors without saving anything, and lists in a fixed number of
queries."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core import crypto
from onestop.monitoring import services
from onestop.monitoring.models import (
    Check,
    CheckState,
    CheckStateChange,
    CheckTemplate,
    MaintenanceWindow,
    SnmpCredential,
)
from tests.conftest import client_for
from tests.monitoring.results import record_result

pytestmark = pytest.mark.django_db


def english(user):
    """A signed-in client whose pages come in English (the default language is Chinese)."""
    client = client_for(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def device(world, customer=None, name="SRV-01", **fields):
    customer = customer or world.customer_a
    site = fields.pop("site", world.site_a if customer == world.customer_a else world.site_b)
    return asset_services.device_create(
        actor=None,
        customer=customer,
        name=name,
        kind=fields.pop("kind", Device.Kind.SERVER),
        site=site,
        ip_address=fields.pop("ip_address", "10.0.0.5"),
        **fields,
    )


def cpu_check(target, name="CPU", **fields):
    fields.setdefault("metric", "cpu.percent")
    fields.setdefault("warning", 80)
    fields.setdefault("critical", 90)
    return services.check_create(actor=None, device=target, name=name, **fields)


def credential(world, customer=None, name="Switches"):
    return services.snmp_credential_create(
        actor=world.admin, name=name, version="2c", community="s3cret-community", customer=customer
    )


def template(world, **fields):
    fields.setdefault("customer", world.customer_a)
    fields.setdefault("metric", "disk.used_percent")
    fields.setdefault("warning", 85)
    fields.setdefault("critical", 95)
    return services.check_template_create(
        actor=world.admin, name=fields.pop("name", "Disk"), **fields
    )


def window(world, customer=None, **fields):
    now = timezone.now()
    fields.setdefault("starts_at", now - dt.timedelta(hours=1))
    fields.setdefault("ends_at", now + dt.timedelta(hours=1))
    return services.maintenance_window_create(
        actor=world.admin,
        customer=customer or world.customer_a,
        name=fields.pop("name", "Router swap"),
        **fields,
    )


def fail(check, value=95.0, at=None):
    return record_result(check=check, value=value, at=at or timezone.now())


CHECK_FORM = {
    "name": "CPU busy",
    "kind": "agent",
    "metric": "cpu.percent",
    "labels": "",
    "probe": "",
    "params": "",
    "snmp_credential": "",
    "interval": 60,
    "timeout": 5,
    "retries": 1,
    "mode": "threshold",
    "direction": "higher",
    "warning": 80,
    "critical": 90,
    "recovery": "",
    "hysteresis": 0,
    "consecutive": 2,
    "enabled": "on",
}


def check_form(**changes):
    return {**CHECK_FORM, **changes}


def window_form(world, **changes):
    return {
        "customer": world.customer_a.pk,
        "site": "",
        "device": "",
        "name": "Firmware update",
        "reason": "",
        "time_zone": "Asia/Shanghai",
        "starts_at": "2031-05-04T02:00",
        "ends_at": "2031-05-04T04:00",
        "rrule": "",
        "duration_minutes": "",
        **changes,
    }


def credential_form(**changes):
    return {
        "customer": "",
        "name": "Core switches",
        "version": "2c",
        "community": "public-ish",
        "user": "",
        "auth_protocol": "",
        "auth_key": "",
        "priv_protocol": "",
        "priv_key": "",
        "context": "",
        **changes,
    }


# Pages render for the allowed, and nobody else ---------------------------------------------------


def test_every_page_renders_for_an_admin(world):
    server = device(world)
    check = cpu_check(server)
    fail(check)
    tpl = template(world)
    win = window(world)
    cred = credential(world)
    client = english(world.admin)
    pages = [
        f"/devices/{server.pk}/",
        f"/devices/{server.pk}/checks/new/",
        f"/devices/checks/{check.pk}/",
        f"/devices/checks/{check.pk}/edit/",
        f"/devices/checks/{check.pk}/delete/",
        "/monitoring/problems/",
        "/monitoring/templates/",
        "/monitoring/templates/new/",
        f"/monitoring/templates/{tpl.pk}/edit/",
        f"/monitoring/templates/{tpl.pk}/delete/",
        "/monitoring/maintenance/",
        "/monitoring/maintenance/new/",
        f"/monitoring/maintenance/new/?device={server.pk}",
        f"/monitoring/maintenance/{win.pk}/edit/",
        f"/monitoring/maintenance/{win.pk}/delete/",
        "/monitoring/snmp-credentials/",
        "/monitoring/snmp-credentials/new/",
        f"/monitoring/snmp-credentials/{cred.pk}/edit/",
        f"/monitoring/snmp-credentials/{cred.pk}/delete/",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
    # The menu has the one new entry, and its pages are reached by their tabs.
    home = client.get("/").content.decode()
    assert 'href="/monitoring/problems/"' in home
    problems = client.get("/monitoring/problems/").content.decode()
    for path in ("/monitoring/templates/", "/monitoring/maintenance/", "/monitoring/snmp-"):
        assert f'href="{path}' in problems


def test_the_engineer_sees_templates_and_credentials_but_may_not_change_them(world):
    tpl = template(world)
    cred = credential(world, customer=world.customer_a)
    client = english(world.engineer)
    listing = client.get("/monitoring/templates/")
    assert listing.status_code == 200 and tpl.name in listing.content.decode()
    assert f"/monitoring/templates/{tpl.pk}/edit/" not in listing.content.decode()
    assert client.get("/monitoring/templates/new/").status_code == 403
    assert client.get(f"/monitoring/templates/{tpl.pk}/edit/").status_code == 403
    assert client.get("/monitoring/snmp-credentials/").status_code == 200
    assert client.get(f"/monitoring/snmp-credentials/{cred.pk}/edit/").status_code == 403
    # Engineers do add checks and maintenance windows.
    server = device(world)
    assert client.get(f"/devices/{server.pk}/checks/new/").status_code == 200
    assert client.get("/monitoring/maintenance/new/").status_code == 200


def test_customer_users_see_no_credentials_or_templates(world):
    tpl = template(world)
    cred = credential(world, customer=world.customer_a)
    server = device(world)
    check = cpu_check(server)
    fail(check)
    for who in (world.portal_admin_a, world.portal_a):
        client = english(who)
        assert client.get("/monitoring/templates/").status_code == 403
        assert client.get("/monitoring/snmp-credentials/").status_code == 403
        assert client.get(f"/monitoring/templates/{tpl.pk}/edit/").status_code == 404
        assert client.get(f"/monitoring/snmp-credentials/{cred.pk}/edit/").status_code == 404
        assert client.get(f"/monitoring/snmp-credentials/{cred.pk}/delete/").status_code == 404
    # The customer's administrator sees the checks, problems and windows, and changes nothing.
    admin_a = english(world.portal_admin_a)
    page = admin_a.get(f"/devices/{server.pk}/").content.decode()
    assert "CPU" in page and f"/devices/checks/{check.pk}/edit/" not in page
    problems = admin_a.get("/monitoring/problems/").content.decode()
    assert "CPU" in problems
    assert "/monitoring/templates/" not in problems and "/monitoring/snmp-" not in problems
    assert admin_a.get(f"/devices/checks/{check.pk}/").status_code == 200
    assert admin_a.get(f"/devices/checks/{check.pk}/edit/").status_code == 403
    assert admin_a.get(f"/devices/{server.pk}/checks/new/").status_code == 403
    assert admin_a.get("/monitoring/maintenance/").status_code == 200
    assert admin_a.get("/monitoring/maintenance/new/").status_code == 403
    # Plain customer users see none of it.
    portal = english(world.portal_a)
    assert portal.get("/monitoring/problems/").status_code == 403
    assert portal.get(f"/devices/checks/{check.pk}/").status_code == 403  # in scope, role lacks it


def test_another_customers_objects_are_not_found(world):
    server_b = device(world, customer=world.customer_b, name="B-SRV")
    check_b = cpu_check(server_b, name="B CPU")
    fail(check_b)
    tpl_b = template(world, customer=world.customer_b, name="B disk")
    win_b = window(world, customer=world.customer_b, name="B outage")
    cred_b = credential(world, customer=world.customer_b, name="B switches")
    paths = [
        f"/devices/checks/{check_b.pk}/",
        f"/devices/checks/{check_b.pk}/edit/",
        f"/devices/checks/{check_b.pk}/delete/",
        f"/devices/{server_b.pk}/checks/new/",
        f"/monitoring/templates/{tpl_b.pk}/edit/",
        f"/monitoring/templates/{tpl_b.pk}/delete/",
        f"/monitoring/maintenance/{win_b.pk}/edit/",
        f"/monitoring/maintenance/{win_b.pk}/delete/",
        f"/monitoring/snmp-credentials/{cred_b.pk}/edit/",
        f"/monitoring/snmp-credentials/{cred_b.pk}/delete/",
    ]
    for who in (world.engineer, world.portal_admin_a):
        client = english(who)
        for path in paths:
            assert client.get(path).status_code == 404, (who, path)
        assert client.post(f"/devices/checks/{check_b.pk}/delete/").status_code == 404
        assert client.post(f"/devices/checks/{check_b.pk}/follow-template/").status_code == 404
        for listing in ("/monitoring/problems/", "/monitoring/maintenance/"):
            html = client.get(listing).content.decode()
            assert "B CPU" not in html and "B outage" not in html
    assert Check.objects.filter(pk=check_b.pk).exists()
    html = english(world.engineer).get("/monitoring/templates/").content.decode()
    assert "B disk" not in html
    html = english(world.engineer).get("/monitoring/snmp-credentials/").content.decode()
    assert "B switches" not in html


# Checks through the forms ------------------------------------------------------------------------


def test_a_check_is_added_edited_and_deleted_through_the_forms(world):
    server = device(world)
    client = english(world.engineer)
    response = client.post(f"/devices/{server.pk}/checks/new/", check_form())
    assert response.status_code == 302
    assert response["Location"] == f"/devices/{server.pk}/#checks"
    check = Check.objects.get(device=server)
    assert (check.metric, check.warning, check.critical, check.consecutive) == (
        "cpu.percent",
        80,
        90,
        2,
    )
    page = client.get(f"/devices/{server.pk}/").content.decode()
    assert "CPU busy" in page and f"/devices/checks/{check.pk}/edit/" in page

    edit = client.get(f"/devices/checks/{check.pk}/edit/").content.decode()
    assert 'value="CPU busy"' in edit
    response = client.post(
        f"/devices/checks/{check.pk}/edit/",
        check_form(name="Disk /", metric="disk.used_percent", labels='{"mount": "/"}'),
    )
    assert response.status_code == 302
    check.refresh_from_db()
    assert (check.name, check.labels) == ("Disk /", {"mount": "/"})

    assert client.get(f"/devices/checks/{check.pk}/delete/").status_code == 200
    response = client.post(f"/devices/checks/{check.pk}/delete/")
    assert response.status_code == 302
    assert not Check.objects.filter(pk=check.pk).exists()


def test_a_poller_check_takes_probe_parameters_and_the_devices_credentials(world):
    server = device(world)
    mine = credential(world, customer=world.customer_a, name="A switches")
    theirs = credential(world, customer=world.customer_b, name="B switches")
    client = english(world.admin)
    form = client.get(f"/devices/{server.pk}/checks/new/").content.decode()
    assert "A switches" in form and "B switches" not in form
    assert "port*" in form  # the help text lists each probe's parameters
    assert "null</textarea>" not in form and "{}</textarea>" not in form
    fields = check_form(
        name="Web",
        kind="poller",
        metric="",
        probe="http",
        params='{"url": "https://example.com/health", "expected_status": [200]}',
        mode="availability",
        warning="",
        critical="",
    )
    assert client.post(f"/devices/{server.pk}/checks/new/", fields).status_code == 302
    web = Check.objects.get(name="Web")
    assert web.params == {"url": "https://example.com/health", "expected_status": [200]}
    snmp = check_form(
        name="Uptime",
        kind="poller",
        metric="",
        probe="snmp_uptime",
        snmp_credential=theirs.pk,
        mode="availability",
        warning="",
        critical="",
    )
    refused = client.post(f"/devices/{server.pk}/checks/new/", snmp)
    assert refused.status_code == 400  # another customer's credentials are not a choice
    snmp["snmp_credential"] = mine.pk
    assert client.post(f"/devices/{server.pk}/checks/new/", snmp).status_code == 302
    assert Check.objects.get(name="Uptime").snmp_credential == mine


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"warning": 95, "critical": 90}, "warning"),
        ({"metric": "cpu.percnt"}, "metric"),
        ({"labels": "{not json"}, "labels"),
        ({"kind": "poller", "metric": "", "probe": "tcp", "params": '{"prot": 1}'}, "params"),
        ({"interval": 5}, "interval"),
    ],
)
def test_check_errors_are_shown_on_the_form_and_nothing_is_saved(world, changes, field):
    server = device(world)
    check = cpu_check(server)
    client = english(world.engineer)
    response = client.post(f"/devices/{server.pk}/checks/new/", check_form(**changes))
    assert response.status_code == 400
    html = response.content.decode()
    assert "field-error" in html
    assert f'name="{field}"' in html.split("field-error")[0].rsplit('class="field', 1)[1]
    assert Check.objects.filter(device=server).count() == 1
    response = client.post(f"/devices/checks/{check.pk}/edit/", check_form(**changes))
    assert response.status_code == 400
    check.refresh_from_db()
    assert (check.name, check.warning, check.metric) == ("CPU", 80, "cpu.percent")


def test_a_template_check_shows_its_overrides_and_follows_the_template_again(world):
    server = device(world)
    tpl = template(world, name="Disk")
    check = Check.objects.get(device=server, template=tpl)
    client = english(world.engineer)
    fields = check_form(
        name="Disk", metric="disk.used_percent", warning=70, critical=95, consecutive=1
    )
    assert client.post(f"/devices/checks/{check.pk}/edit/", fields).status_code == 302
    check.refresh_from_db()
    assert check.overridden_fields == ["warning"]
    edit = client.get(f"/devices/checks/{check.pk}/edit/").content.decode()
    assert "the template has: 85" in edit and "Follow the template again" in edit
    detail = client.get(f"/devices/checks/{check.pk}/").content.decode()
    assert "Warning level" in detail and "Follow the template again" in detail
    device_page = client.get(f"/devices/{server.pk}/").content.decode()
    assert "changed here" in device_page
    # A template's check is disabled, not deleted: the refusal comes back as a message.
    response = client.post(f"/devices/checks/{check.pk}/delete/", follow=True)
    assert "disable it instead" in response.content.decode()
    assert Check.objects.filter(pk=check.pk).exists()

    response = client.post(f"/devices/checks/{check.pk}/follow-template/")
    assert response.status_code == 302
    check.refresh_from_db()
    assert (check.overridden_fields, check.warning) == ([], 85)
    assert client.get(f"/devices/checks/{check.pk}/follow-template/").status_code == 405


def test_the_history_pages_newest_first_and_marks_maintenance(world):
    server = device(world)
    check = cpu_check(server)
    start = timezone.now() - dt.timedelta(days=1)
    for i in range(60):
        fail(check, value=95.0 if i % 2 == 0 else 10.0, at=start + dt.timedelta(minutes=i))
    window(world, starts_at=timezone.now() - dt.timedelta(minutes=5))
    fail(check, value=10.0 if check.state == CheckState.CRITICAL else 95.0)
    changes = list(CheckStateChange.objects.filter(check_obj=check))
    assert len(changes) == 61 and changes[0].in_maintenance
    client = english(world.engineer)
    first = client.get(f"/devices/checks/{check.pk}/").content.decode()
    assert first.count('<td class="cell-title"><time') == 50
    assert "in maintenance" in first.split("</tr>")[1]  # the newest row
    cursor = first.split("cursor=")[1].split('"')[0]
    second = client.get(f"/devices/checks/{check.pk}/?cursor={cursor}").content.decode()
    assert second.count('<td class="cell-title"><time') == 11
    oldest = changes[-1].at.astimezone(ZoneInfo(world.engineer.time_zone or "Asia/Shanghai"))
    assert oldest.strftime("%Y-%m-%d %H:%M:%S") in second
    # A bad cursor is the first page again.
    assert client.get(f"/devices/checks/{check.pk}/?cursor=!!").status_code == 200


# The problems list -------------------------------------------------------------------------------


def test_problems_are_worst_first_and_filter_by_customer_and_state(world):
    server = device(world, name="A-SRV")
    warning = cpu_check(server, name="Warm")
    critical = cpu_check(server, name="Hot")
    fine = cpu_check(server, name="Cool")
    pending = cpu_check(server, name="Pending")
    fail(warning, 85)
    fail(critical, 99)
    fail(fine, 10)
    server_b = device(world, customer=world.customer_b, name="B-SRV")
    fail(cpu_check(server_b, name="B hot"), 99)
    client = english(world.admin)
    html = client.get("/monitoring/problems/").content.decode()
    assert html.index("Hot") < html.index("Warm") < html.index("B hot") or (
        html.index("Hot") < html.index("B hot") < html.index("Warm")
    )
    assert "Cool" not in html and pending.name not in html
    assert "badge-delete" in html and "badge-suspended" in html
    only_a = client.get(f"/monitoring/problems/?customer={world.customer_a.pk}").content.decode()
    assert "B hot" not in only_a and "Hot" in only_a
    warnings = client.get("/monitoring/problems/?state=warning").content.decode()
    assert "Warm" in warnings and "Hot" not in warnings
    rows = client.get("/monitoring/problems/?q=warm", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in rows and "Warm" in rows and "Hot" not in rows
    engineer = english(world.engineer).get("/monitoring/problems/").content.decode()
    assert "Hot" in engineer and "B hot" not in engineer


def test_the_problems_list_pages_by_severity_and_time(world):
    server = device(world)
    base = timezone.now() - dt.timedelta(hours=2)
    for i in range(55):
        fail(cpu_check(server, name=f"C{i:02d}"), 99, at=base + dt.timedelta(seconds=i))
    client = english(world.admin)
    first = client.get("/monitoring/problems/").content.decode()
    assert "C00" in first and "C49" in first and "C50" not in first
    cursor = first.split("cursor=")[1].split('"')[0]
    second = client.get(f"/monitoring/problems/?cursor={cursor}").content.decode()
    assert "C50" in second and "C54" in second and "C49" not in second


# Templates, windows and credentials through the forms --------------------------------------------


def test_a_template_is_created_edited_and_deleted_through_the_forms(world):
    servers = [device(world, name=f"A-{n}") for n in range(3)]
    device(world, customer=world.customer_b, name="B-1")
    client = english(world.manager)
    fields = check_form(name="Disk full", metric="disk.used_percent", labels='{"mount": "/"}')
    fields |= {"customer": world.customer_a.pk, "site": "", "device_kind": "server"}
    fields |= {"description": "Every server of A"}
    response = client.post("/monitoring/templates/new/", fields)
    assert response.status_code == 302, response.content.decode()
    tpl = CheckTemplate.objects.get(name="Disk full")
    assert {c.device_id for c in tpl.checks.all()} == {s.pk for s in servers}
    listing = client.get("/monitoring/templates/").content.decode()
    assert "Disk full" in listing and '<td data-label="Devices">3</td>' in listing

    bad = client.post(f"/monitoring/templates/{tpl.pk}/edit/", fields | {"critical": 10})
    assert bad.status_code == 400 and "field-error" in bad.content.decode()
    tpl.refresh_from_db()
    assert tpl.critical == 90
    response = client.post(f"/monitoring/templates/{tpl.pk}/edit/", fields | {"warning": 70})
    assert response.status_code == 302
    assert set(tpl.checks.values_list("warning", flat=True)) == {70}

    response = client.post(f"/monitoring/templates/{tpl.pk}/delete/")
    assert response.status_code == 302
    assert not CheckTemplate.objects.filter(pk=tpl.pk).exists()
    assert not Check.objects.filter(device__in=servers).exists()


def test_a_maintenance_window_is_created_edited_and_deleted_through_the_forms(world):
    server = device(world)
    client = english(world.dispatcher)
    # One-off, read in its own time zone: 02:00 in Shanghai is 18:00 UTC the day before.
    response = client.post("/monitoring/maintenance/new/", window_form(world))
    assert response.status_code == 302
    win = MaintenanceWindow.objects.get(name="Firmware update")
    assert win.starts_at == dt.datetime(2031, 5, 3, 18, 0, tzinfo=dt.UTC)
    assert win.created_by == world.dispatcher
    edit = client.get(f"/monitoring/maintenance/{win.pk}/edit/").content.decode()
    assert 'value="2031-05-04T02:00"' in edit

    # Repeating, for one device, covering now: the device page says so.
    now_local = timezone.now().astimezone(ZoneInfo("Asia/Shanghai"))
    repeating = window_form(
        world,
        site=world.site_a.pk,
        device=server.pk,
        starts_at=(now_local - dt.timedelta(days=7, minutes=30)).strftime("%Y-%m-%dT%H:%M"),
        ends_at="",
        rrule="FREQ=DAILY",
        duration_minutes=60,
    )
    response = client.post(f"/monitoring/maintenance/{win.pk}/edit/", repeating)
    assert response.status_code == 302
    win.refresh_from_db()
    assert (win.rrule, win.device, win.duration_minutes) == ("FREQ=DAILY", server, 60)
    page = client.get(f"/devices/{server.pk}/").content.decode()
    assert "In maintenance" in page and "Firmware update" in page
    active = client.get("/monitoring/maintenance/?active=on").content.decode()
    assert "Firmware update" in active and "in progress" in active
    year_ago = timezone.now() - dt.timedelta(days=400)
    other = window(
        world, name="Last year", starts_at=year_ago, ends_at=year_ago + dt.timedelta(hours=2)
    )
    active = client.get("/monitoring/maintenance/?active=on").content.decode()
    assert other.name not in active
    assert other.name in client.get("/monitoring/maintenance/").content.decode()

    response = client.post(f"/monitoring/maintenance/{win.pk}/delete/")
    assert response.status_code == 302
    assert not MaintenanceWindow.objects.filter(pk=win.pk).exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": "2031-05-04T01:00"}, "ends_at"),
        ({"ends_at": "", "rrule": "FREQ=SOMETIMES", "duration_minutes": 30}, "rrule"),
        ({"ends_at": "", "rrule": "FREQ=WEEKLY", "duration_minutes": ""}, "duration_minutes"),
        ({"name": ""}, "name"),
    ],
)
def test_window_errors_are_shown_and_nothing_is_saved(world, changes, field):
    client = english(world.dispatcher)
    response = client.post("/monitoring/maintenance/new/", window_form(world, **changes))
    assert response.status_code == 400
    html = response.content.decode()
    assert f'name="{field}"' in html.split("field-error")[0].rsplit('class="field', 1)[1]
    assert not MaintenanceWindow.objects.exists()


def test_credentials_are_write_only_and_refuse_deletion_in_use(world):
    server = device(world)
    client = english(world.admin)
    response = client.post("/monitoring/snmp-credentials/new/", credential_form())
    assert response.status_code == 302
    cred = SnmpCredential.objects.get(name="Core switches")
    assert crypto.decrypt(cred.community_encrypted) == "public-ish"
    edit = client.get(f"/monitoring/snmp-credentials/{cred.pk}/edit/").content.decode()
    assert "public-ish" not in edit and "leave empty to keep it" in edit
    listing = client.get("/monitoring/snmp-credentials/").content.decode()
    assert "Core switches" in listing and "public-ish" not in listing

    # Blank keeps the stored secret; a new one replaces it; errors keep nothing typed.
    changed = credential_form(name="Core", community="", customer=world.customer_a.pk)
    assert client.post(f"/monitoring/snmp-credentials/{cred.pk}/edit/", changed).status_code == 302
    cred.refresh_from_db()
    assert (cred.name, cred.customer) == ("Core", world.customer_a)
    assert crypto.decrypt(cred.community_encrypted) == "public-ish"
    bad = credential_form(version="3", user="", community="new-secret")
    response = client.post(f"/monitoring/snmp-credentials/{cred.pk}/edit/", bad)
    assert response.status_code == 400 and "new-secret" not in response.content.decode()
    cred.refresh_from_db()
    assert cred.version == "2c" and crypto.decrypt(cred.community_encrypted) == "public-ish"
    missing = client.post("/monitoring/snmp-credentials/new/", credential_form(community=""))
    assert missing.status_code == 400 and SnmpCredential.objects.count() == 1

    services.check_create(
        actor=None,
        device=server,
        name="Uptime",
        kind="poller",
        probe="snmp_uptime",
        mode="availability",
        snmp_credential=cred,
    )
    response = client.post(f"/monitoring/snmp-credentials/{cred.pk}/delete/", follow=True)
    assert "use these SNMP credentials" in response.content.decode()
    assert SnmpCredential.objects.filter(pk=cred.pk).exists()
    Check.objects.filter(name="Uptime").delete()
    response = client.post(f"/monitoring/snmp-credentials/{cred.pk}/delete/")
    assert response.status_code == 302 and not SnmpCredential.objects.exists()


# Query counts ------------------------------------------------------------------------------------


def _count(client, path):
    client.get(path)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_the_device_page_costs_the_same_with_more_checks(world):
    server = device(world)
    fail(cpu_check(server, name="C0"))
    window(world, rrule="FREQ=DAILY", ends_at=None, duration_minutes=30, name="Nightly")
    client = english(world.engineer)
    path = f"/devices/{server.pk}/"
    few = _count(client, path)
    tpl = template(world)
    for n in range(1, 12):
        fail(cpu_check(server, name=f"C{n}"))
    assert tpl.checks.exists()
    assert _count(client, path) == few


@pytest.mark.parametrize("who", ["admin", "engineer"])
def test_the_lists_cost_the_same_with_more_rows(world, who):
    client = english(getattr(world, who))
    server = device(world)

    def add(n):
        for _ in range(n):
            count = Check.objects.count()
            fail(cpu_check(server, name=f"P{count}"))
            template(world, name=f"T{count}")
            window(world, name=f"W{count}")
            credential(world, customer=world.customer_a, name=f"S{count}")

    add(2)
    paths = [
        "/monitoring/problems/",
        "/monitoring/templates/",
        "/monitoring/maintenance/",
        "/monitoring/maintenance/?active=on",
        "/monitoring/snmp-credentials/",
    ]
    few = {path: _count(client, path) for path in paths}
    add(10)
    assert {path: _count(client, path) for path in paths} == few
