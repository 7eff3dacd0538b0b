"""SNMP discovery through the API (/discovery-jobs) and the pages (the "Discovery" tab of the
Problems page: the list, "Run a discovery" and a job's page that follows it while it runs).

Tests run Huey immediately, so a job started on commit really sweeps its network: these tests
either never reach the commit (the test's transaction) or sweep one local address where nothing
listens, with a short timeout."""

from __future__ import annotations

import socket

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from onestop.assets import services as asset_services
from onestop.core.models import AuditEvent
from onestop.monitoring import services
from onestop.monitoring.models import DiscoveryJob
from onestop.monitoring.probes.base import note, verbatim
from tests.apitest import api_client, call
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

PATH = "/api/v1/discovery-jobs"


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch):
    monkeypatch.setattr(services, "DISCOVERY_TIMEOUT_S", 0.5)


def english(user):
    """A signed-in client whose pages come in English (the default language is Chinese)."""
    client = client_for(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def english_api(user):
    client = api_client(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def unused_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def credential(world, customer="A", name="Switches"):
    return services.snmp_credential_create(
        actor=world.admin,
        customer=world.customer_a if customer == "A" else customer,
        name=name,
        version="2c",
        community="public",
    )


def job(world, customer=None, network="10.1.20.0/24", **fields):
    customer = customer or world.customer_a
    fields.setdefault("snmp_credential", credential(world, customer, name=f"C {network}"))
    return services.discovery_job_create(
        actor=world.admin, customer=customer, network=network, **fields
    )


def finish(target, results=(), **fields):
    """Marks a job as a worker would have left it."""
    now = timezone.now()
    results = list(results)
    DiscoveryJob.objects.filter(pk=target.pk).update(
        status=fields.pop("status", DiscoveryJob.Status.DONE),
        started_at=now,
        finished_at=now,
        results=results,
        hosts_answered=len(results),
        devices_created=sum(row["action"] == "created" for row in results),
        devices_updated=sum(row["action"] == "updated" for row in results),
        **fields,
    )
    target.refresh_from_db()
    return target


def row(address, device=None, action="created", **fields):
    return {
        "address": address,
        "device_id": device.pk if device else None,
        "name": device.name if device else "",
        "sys_name": fields.pop("sys_name", "core-sw1"),
        "vendor": fields.pop("vendor", "Huawei"),
        "model": fields.pop("model", "S5720"),
        "kind": fields.pop("kind", "switch"),
        "interfaces": 28,
        "action": action,
        "error": fields.pop("error", ""),
    }


def fields_of(response) -> set[str | None]:
    return {error["field"] for error in response.body["errors"]}


# API -------------------------------------------------------------------------------------------


def test_the_api_queues_a_discovery_and_lists_and_shows_it(
    world, django_capture_on_commit_callbacks
):
    cred = credential(world)
    client = api_client(world.engineer)
    with django_capture_on_commit_callbacks(execute=False) as started:
        response = call(
            client,
            "post",
            PATH,
            {
                "customer_id": world.customer_a.pk,
                "site_id": world.site_a.pk,
                "network": "10.1.20.7/24",
                "snmp_credential_id": cred.pk,
            },
        )
    assert response.status_code == 201, response.body
    body = response.body
    assert (body["status"], body["network"], body["port"], body["hosts_total"]) == (
        "queued",
        "10.1.20.0/24",
        161,
        254,
    )
    assert body["created_by_id"] == world.engineer.pk and body["site_id"] == world.site_a.pk
    assert len(started) == 1  # the worker is woken once the job is stored
    stored = DiscoveryJob.objects.get(pk=body["id"])
    assert AuditEvent.objects.filter(
        object_type="monitoring.discoveryjob", object_id=str(stored.pk), action="create"
    ).exists()

    server = asset_services.device_create(
        actor=None, customer=world.customer_a, name="core-sw1", ip_address="10.1.20.2"
    )
    finish(stored, [row("10.1.20.2", server), row("10.1.20.9", None, action="error", error="x")])
    queued = job(world, network="10.1.21.0/24")
    detail = call(client, "get", f"{PATH}/{stored.pk}")
    assert detail.status_code == 200, detail.body
    assert detail.body["status"] == "done"
    assert [(r["address"], r["device_id"], r["action"]) for r in detail.body["results"]] == [
        ("10.1.20.2", server.pk, "created"),
        ("10.1.20.9", None, "error"),
    ]
    listed = call(client, "get", PATH)
    assert [item["id"] for item in listed.body["results"]] == [queued.pk, stored.pk]
    assert "results" not in listed.body["results"][0]
    assert [i["id"] for i in call(client, "get", PATH, status="queued").body["results"]] == [
        queued.pk
    ]


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"network": "10.0.0.0/8"}, "network", "at most 4,096"),
        ({"network": "server room"}, "network", "not a network"),
        ({"port": 0}, "port", "between 1 and 65535"),
        ({"site_id": "B"}, "site", "another customer"),
        ({"snmp_credential_id": "B"}, "snmp_credential", "another customer"),
    ],
)
def test_the_api_refuses_a_bad_discovery_and_stores_nothing(world, changes, field, says):
    # The admin sees everything: B's site and credentials resolve, and the service refuses them.
    payload = {
        "customer_id": world.customer_a.pk,
        "network": "10.1.20.0/24",
        "snmp_credential_id": credential(world).pk,
    }
    for key, value in changes.items():
        if value == "B":
            value = (
                world.site_b.pk
                if key == "site_id"
                else credential(world, world.customer_b, name="B's").pk
            )
        payload[key] = value
    client = english_api(world.admin)
    audited = AuditEvent.objects.count()
    response = call(client, "post", PATH, payload)
    assert response.status_code == 422, response.body
    assert response["Content-Type"] == "application/problem+json"
    assert fields_of(response) == {field}
    assert says in " ".join(error["message"] for error in response.body["errors"])
    assert not DiscoveryJob.objects.exists()
    assert AuditEvent.objects.count() == audited


def test_the_api_hides_what_the_user_cannot_see(world):
    ours = credential(world)
    theirs = credential(world, world.customer_b, name="B's")
    client = english_api(world.engineer)  # serves A only
    base = {"customer_id": world.customer_a.pk, "network": "10.1.20.0/24"}
    for changes, field in (
        ({"snmp_credential_id": theirs.pk}, "snmp_credential_id"),
        ({"site_id": world.site_b.pk}, "site_id"),
        ({"customer_id": world.customer_b.pk}, "customer_id"),
    ):
        payload = {**base, "snmp_credential_id": ours.pk, **changes}
        response = call(client, "post", PATH, payload)
        assert response.status_code == 422, response.body
        assert fields_of(response) == {field}
        assert response.body["errors"][0]["message"].startswith("No such")
    assert not DiscoveryJob.objects.exists()
    b_job = job(world, world.customer_b)
    a_job = job(world)
    assert call(client, "get", f"{PATH}/{b_job.pk}").status_code == 404
    assert [i["id"] for i in call(client, "get", PATH).body["results"]] == [a_job.pk]
    # Sales see discoveries and start none; customer users see none at all.
    sales = api_client(world.sales)
    assert call(sales, "get", f"{PATH}/{a_job.pk}").status_code == 200
    refused = call(sales, "post", PATH, {**base, "snmp_credential_id": ours.pk})
    assert refused.status_code == 403
    for who in (world.portal_a, world.portal_admin_a):
        portal = api_client(who)
        assert call(portal, "get", PATH).status_code == 403
        assert call(portal, "get", f"{PATH}/{a_job.pk}").status_code == 403  # in scope, no role
        assert call(portal, "get", f"{PATH}/{b_job.pk}").status_code == 404
    assert DiscoveryJob.objects.count() == 2


# Pages -----------------------------------------------------------------------------------------


def test_the_pages_render_for_staff_and_the_tab_is_theirs(world):
    queued = job(world)
    done = finish(job(world, network="10.1.30.0/24"))
    admin = english(world.admin)
    for path in (
        "/monitoring/discovery/",
        "/monitoring/discovery/new/",
        f"/monitoring/discovery/{queued.pk}/",
        f"/monitoring/discovery/{done.pk}/",
        "/monitoring/discovery/?status=done",
        f"/monitoring/discovery/?customer={world.customer_a.pk}&q=10.1.30",
    ):
        assert admin.get(path).status_code == 200, path
    listing = admin.get("/monitoring/discovery/").content.decode()
    assert listing.index("10.1.30.0/24") < listing.index("10.1.20.0/24")  # newest first
    assert 'href="/monitoring/discovery/new/"' in listing
    assert 'aria-current="page">Discovery<' in listing
    filtered = admin.get("/monitoring/discovery/?status=done").content.decode()
    assert "10.1.30.0/24" in filtered and "10.1.20.0/24" not in filtered
    problems = admin.get("/monitoring/problems/").content.decode()
    assert 'href="/monitoring/discovery/"' in problems
    # Sales read the list and start nothing.
    sales = english(world.sales)
    listing = sales.get("/monitoring/discovery/").content.decode()
    assert "10.1.20.0/24" in listing and "/monitoring/discovery/new/" not in listing
    assert sales.get("/monitoring/discovery/new/").status_code == 403
    assert sales.post("/monitoring/discovery/new/", {}).status_code == 403


def test_customer_users_see_no_discoveries(world):
    ours = job(world)
    theirs = job(world, world.customer_b)
    for who in (world.portal_admin_a, world.portal_a):
        client = english(who)
        assert client.get("/monitoring/discovery/").status_code == 403
        assert client.get("/monitoring/discovery/new/").status_code == 403
        assert client.get(f"/monitoring/discovery/{ours.pk}/").status_code == 403
        assert client.get(f"/monitoring/discovery/{theirs.pk}/").status_code == 404
    problems = english(world.portal_admin_a).get("/monitoring/problems/").content.decode()
    assert "/monitoring/discovery/" not in problems


def test_another_customers_discovery_is_not_found(world):
    theirs = job(world, world.customer_b, network="10.9.9.0/24")
    ours = job(world)
    client = english(world.engineer)
    assert client.get(f"/monitoring/discovery/{theirs.pk}/").status_code == 404
    listing = client.get("/monitoring/discovery/").content.decode()
    assert "10.1.20.0/24" in listing and "10.9.9.0/24" not in listing
    assert client.get(f"/monitoring/discovery/{ours.pk}/").status_code == 200
    # The form offers only what the engineer may see.
    form = client.get("/monitoring/discovery/new/").content.decode()
    assert world.customer_a.name in form and world.customer_b.name not in form
    assert "C 10.9.9.0/24" not in form and "C 10.1.20.0/24" in form


def test_a_discovery_is_started_through_the_form(world, django_capture_on_commit_callbacks):
    cred = credential(world)
    client = english(world.engineer)
    page = client.get(f"/monitoring/discovery/new/?customer={world.customer_a.pk}")
    html = page.content.decode()
    assert "at most 4,096 addresses, e.g. 10.1.20.0/24" in html
    assert 'value="161"' in html
    form = {
        "customer": world.customer_a.pk,
        "site": world.site_a.pk,
        "network": "10.1.20.0/24",
        "snmp_credential": cred.pk,
        "port": 161,
    }
    with django_capture_on_commit_callbacks(execute=False) as started:
        response = client.post("/monitoring/discovery/new/", form)
    created = DiscoveryJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/monitoring/discovery/{created.pk}/"
    assert len(started) == 1
    assert (created.customer, created.site, created.snmp_credential) == (
        world.customer_a,
        world.site_a,
        cred,
    )
    assert (created.status, created.created_by, created.hosts_total) == (
        "queued",
        world.engineer,
        254,
    )
    page = client.get(response["Location"]).content.decode()
    assert "created" in page and "Queued" in page


@pytest.mark.parametrize(
    ("changes", "field_says"),
    [
        ({"network": "10.0.0.0/16"}, "Split the range"),
        ({"network": "not-a-network"}, "not a network"),
        ({"snmp_credential": "B"}, "These SNMP credentials belong to another customer."),
        ({"site": "B"}, "The site belongs to another customer."),
        ({"port": 70000}, "65535"),
    ],
)
def test_form_errors_are_shown_and_nothing_is_stored(world, changes, field_says):
    form = {
        "customer": world.customer_a.pk,
        "site": "",
        "network": "10.1.20.0/24",
        "snmp_credential": credential(world).pk,
        "port": 161,
    }
    for key, value in changes.items():
        if value == "B":
            value = (
                world.site_b.pk if key == "site" else credential(world, world.customer_b, "B").pk
            )
        form[key] = value
    response = english(world.admin).post("/monitoring/discovery/new/", form)
    assert response.status_code == 400
    assert field_says in response.content.decode()
    assert not DiscoveryJob.objects.exists()


def test_a_local_sweep_runs_and_its_page_stops_following_it(
    world, django_capture_on_commit_callbacks
):
    # One local address where nothing listens: the sweep is over within the timeout.
    cred = credential(world)
    client = english(world.admin)
    form = {
        "customer": world.customer_a.pk,
        "site": "",
        "network": "127.0.0.1/32",
        "snmp_credential": cred.pk,
        "port": unused_udp_port(),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/monitoring/discovery/new/", form)
    assert response.status_code == 302
    swept = DiscoveryJob.objects.get()
    assert swept.status == "done", swept.message
    assert (swept.hosts_total, swept.hosts_answered, swept.devices_created) == (1, 0, 0)
    page = client.get(response["Location"]).content.decode()
    assert "hx-trigger" not in page
    assert "0 of 1 addresses answered" in page and "No device answered" in page


def test_the_job_page_follows_a_running_job_until_it_is_done(world):
    running = job(world)
    client = english(world.engineer)
    path = f"/monitoring/discovery/{running.pk}/"
    page = client.get(path).content.decode()
    assert 'hx-trigger="every 3s"' in page and f'hx-get="{path}"' in page
    assert "<html" in page
    DiscoveryJob.objects.filter(pk=running.pk).update(
        status=DiscoveryJob.Status.RUNNING, started_at=timezone.now()
    )
    partial = client.get(path, HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert "<html" not in html and 'id="discovery-progress"' in html
    assert 'hx-trigger="every 3s"' in html and "Running" in html
    assert "HX-Request" in partial["Vary"]

    ours = asset_services.device_create(
        actor=None, customer=world.customer_a, name="core-sw1", ip_address="10.1.20.2"
    )
    gone = asset_services.device_create(
        actor=None, customer=world.customer_a, name="old-ap", ip_address="10.1.20.3"
    )
    rows = [
        row("10.1.20.2", ours),
        row("10.1.20.3", gone, action="updated", kind="access_point", vendor="Ubiquiti"),
        row("10.1.20.4", None, action="error", error="The register refused it."),
    ]
    gone.delete()
    summary = "3 of 254 addresses answered: 1 devices added, 1 updated."
    finish(running, rows, note=verbatim(summary).as_data())
    html = client.get(path, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html and "Done" in html
    assert "3 of 254 addresses answered" in html
    assert f'href="/devices/{ours.pk}/"' in html and f"/devices/{gone.pk}/" not in html
    for text in ("10.1.20.2", "Huawei", "S5720", "Switch", "Access point", "Ubiquiti"):
        assert text in html, text
    for text in (">Added<", ">Updated<", ">Error<", "The register refused it."):
        assert text in html, text


def test_a_failed_job_says_why_and_is_not_followed(world):
    failed = finish(
        job(world),
        status=DiscoveryJob.Status.FAILED,
        note=note(
            "These SNMP credentials cannot work: {why}", why=note("SNMP v2c needs a community")
        ).as_data(),
    )
    html = english(world.admin).get(f"/monitoring/discovery/{failed.pk}/").content.decode()
    assert "hx-trigger" not in html and "Failed" in html
    assert "These SNMP credentials cannot work" in html
    # Stored once, read in each reader's language.
    chinese = client_for(world.admin).get(f"/monitoring/discovery/{failed.pk}/").content.decode()
    assert "此 SNMP 凭据无法使用：SNMP v2c 需要团体名" in chinese


def test_the_pages_are_translated(world):
    queued = job(world)
    client = client_for(world.admin)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    for path in ("/monitoring/discovery/", f"/monitoring/discovery/{queued.pk}/"):
        assert client.get(path).status_code == 200


# Query counts ----------------------------------------------------------------------------------


def _count(client, path):
    client.get(path)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["admin", "engineer"])
def test_the_list_costs_the_same_with_more_jobs(world, who):
    client = english(getattr(world, who))
    finish(job(world, site=world.site_a))
    job(world, network="10.2.0.0/24")
    few = _count(client, "/monitoring/discovery/")
    for n in range(10):
        target = job(world, network=f"10.3.{n}.0/24", site=world.site_a if n % 2 else None)
        if n % 3:
            finish(target)
    assert _count(client, "/monitoring/discovery/") == few


def test_the_job_page_costs_the_same_with_more_devices(world):
    client = english(world.engineer)
    target = job(world)

    def devices(n, start):
        return [
            asset_services.device_create(
                actor=None,
                customer=world.customer_a,
                name=f"sw{start + i}",
                ip_address=f"10.1.20.{start + i}",
            )
            for i in range(n)
        ]

    finish(target, [row(str(d.ip_address), d) for d in devices(1, 1)])
    few = _count(client, f"/monitoring/discovery/{target.pk}/")
    finish(target, [row(str(d.ip_address), d) for d in devices(12, 10)])
    assert _count(client, f"/monitoring/discovery/{target.pk}/") == few
