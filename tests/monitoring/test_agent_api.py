"""The agent API (docs/agent-protocol.md) through Django's test client: enrolment with a site's
token, reports stored exactly once, clones refused, inventory history, credentials."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from onestop.assets.models import Device, InventoryChange
from onestop.core.models import AuditEvent
from onestop.metrics import selectors as metric_selectors
from onestop.monitoring import services
from onestop.monitoring.models import Agent, EnrollmentToken
from tests.apitest import api_client, call
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
BASE = "/api/agent/v1"
# Transaction control (savepoints inside the test's transaction), not the report's own work.
TRANSACTION_SQL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _post(client: Client, path: str, body, agent=None, secret=None):
    headers = {"HTTP_AUTHORIZATION": f"Agent {agent}:{secret}"} if agent else {}
    response = client.post(
        BASE + path, data=json.dumps(body), content_type="application/json", **headers
    )
    response.body = response.json() if response.content else None
    return response


def _token(world, site=None):
    return services.enrollment_token_create(actor=world.admin, site=site or world.site_a)


def _enrolled(world, client=None):
    client = client or Client()
    _token_obj, raw = _token(world)
    response = _post(
        client,
        "/enroll",
        {
            "token": raw,
            "hostname": "PC-0231",
            "machine_id": "9f" * 16,
            "os": "Debian 12",
            "agent_version": "0.1.0",
        },
    )
    assert response.status_code == 201, response.body
    return client, response.body["agent_id"], response.body["secret"]


def _report(seq, samples, report_id=None, **extra):
    return {"report_id": report_id or uuid.uuid4().hex, "seq": seq, "samples": samples, **extra}


def _now():
    return timezone.now().timestamp()


def test_enrolment_makes_a_device_at_the_tokens_site(world):
    client, agent_id, secret = _enrolled(world)
    agent = Agent.objects.get(pk=agent_id)
    device = agent.device
    assert (device.customer, device.site, device.name, device.source) == (
        world.customer_a,
        world.site_a,
        "PC-0231",
        Device.Source.AGENT,
    )
    assert secret not in agent.secret_hash
    assert EnrollmentToken.objects.get().uses == 1
    config = client.get(BASE + "/config", HTTP_AUTHORIZATION=f"Agent {agent_id}:{secret}").json()
    assert config["interval"] == 60 and config["version"]


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked"])
def test_an_unusable_token_enrols_nothing(world, state):
    token, raw = _token(world)
    if state == "unknown":
        raw = "et_not-a-token"
    elif state == "expired":
        EnrollmentToken.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - dt.timedelta(minutes=1)
        )
    else:
        services.enrollment_token_revoke(actor=world.admin, token=token)
    response = _post(Client(), "/enroll", {"token": raw, "hostname": "x"})
    assert response.status_code == 401
    assert response.body["code"] == "token_invalid"
    assert not Device.objects.exists()


def test_a_report_is_stored_once_even_when_retried(world):
    client, agent_id, secret = _enrolled(world)
    now = _now()
    samples = [[now, "cpu.percent", {}, 12.5], [now, "disk.used_percent", {"mount": "/"}, 61.0]]
    body = _report(1, samples)
    first = _post(client, "/report", body, agent_id, secret)
    assert first.status_code == 200, first.body
    assert first.body["accepted"] == 2
    again = _post(client, "/report", body, agent_id, secret)  # the ack was lost: sent again
    assert again.status_code == 200
    agent = Agent.objects.get(pk=agent_id)
    points = metric_selectors.series_query(
        source_id=agent.device_id,
        name="cpu.percent",
        start=timezone.now() - dt.timedelta(minutes=5),
        end=timezone.now() + dt.timedelta(minutes=1),
    )
    assert [point.avg for point in points[0].points] == [12.5]
    assert agent.last_seen_at is not None and agent.is_online()


def test_a_report_costs_a_fixed_number_of_queries(world, django_capture_on_commit_callbacks):
    # 10,000 agents send about 170 reports a second: each round trip counts. Authentication,
    # one update that locks the agent and checks the sequence, the buffer switch lock (on
    # PostgreSQL), the active buffer with the cached series check, the write, the report row.
    client, agent_id, secret = _enrolled(world)
    now = _now()

    def samples(count):
        return [[now, "disk.used_percent", {"mount": f"/m{i}"}, 50.0] for i in range(count)]

    with django_capture_on_commit_callbacks(execute=True):  # the new series are cached on commit
        first = _post(client, "/report", _report(1, samples(30)), agent_id, secret)
    assert first.status_code == 200
    with CaptureQueriesContext(connection) as thirty:
        response = _post(client, "/report", _report(2, samples(30)), agent_id, secret)
    assert response.status_code == 200 and response.body["accepted"] == 30
    statements = [
        q["sql"] for q in thirty.captured_queries if not q["sql"].startswith(TRANSACTION_SQL)
    ]
    assert len(statements) == (6 if connection.vendor == "postgresql" else 5), statements


def test_a_clone_is_asked_to_enrol_again(world):
    client, agent_id, secret = _enrolled(world)
    assert _post(client, "/report", _report(5, []), agent_id, secret).status_code == 200
    # The copy of the machine continues from the same sequence with reports of its own.
    clone = _post(client, "/report", _report(5, []), agent_id, secret)
    assert clone.status_code == 409
    assert clone.body["code"] == "reenroll"
    assert _post(client, "/report", _report(6, []), agent_id, secret).status_code == 200


def test_bad_samples_are_refused_and_counted_the_rest_stored(world):
    client, agent_id, secret = _enrolled(world)
    now = _now()
    samples = [
        [now, "cpu.percent", {}, 10.0],
        [now, "cpu.temperature", {}, 50.0],  # unknown metric
        [now + 3600, "cpu.percent", {}, 11.0],  # an hour in the future
        [now - 8 * 86400, "cpu.percent", {}, 12.0],  # beyond the 7 days kept
        [now, "cpu.percent", {}, "NaN"],
        [now, "disk.used_percent", {"Mount": "/"}, 1.0],  # label keys are lower case
        ["yesterday", "cpu.percent", {}, 1.0],
        [now],
    ]
    response = _post(client, "/report", _report(1, samples), agent_id, secret)
    assert response.status_code == 200, response.body
    assert (response.body["accepted"], response.body["rejected"]) == (1, 7)
    assert Agent.objects.get(pk=agent_id).rejected_samples == 7


def test_malformed_and_oversized_reports_are_refused_without_harm(world):
    client, agent_id, secret = _enrolled(world)
    auth = {"HTTP_AUTHORIZATION": f"Agent {agent_id}:{secret}"}
    broken = client.post(
        BASE + "/report", data="{not json", content_type="application/json", **auth
    )
    assert broken.status_code == 400
    missing = _post(client, "/report", {"samples": []}, agent_id, secret)
    assert missing.status_code == 422
    huge = client.post(
        BASE + "/report",
        data=json.dumps(_report(1, [[_now(), "cpu.percent", {}, 1.0]] * 40000)),
        content_type="application/json",
        **auth,
    )
    assert huge.status_code == 413
    assert Agent.objects.get(pk=agent_id).last_seq == 0
    # The agent still reports normally afterwards.
    assert _post(client, "/report", _report(1, []), agent_id, secret).status_code == 200


def test_credentials_wrong_revoked_and_rotated(world):
    client, agent_id, secret = _enrolled(world)
    wrong = _post(client, "/report", _report(1, []), agent_id, "guess")
    assert wrong.status_code == 401 and wrong.body["code"] == "credential_invalid"
    rotated = _post(client, "/rotate", {}, agent_id, secret)
    assert rotated.status_code == 200
    new_secret = rotated.body["secret"]
    assert _post(client, "/report", _report(1, []), agent_id, secret).status_code == 401
    assert _post(client, "/report", _report(1, []), agent_id, new_secret).status_code == 200
    agent = Agent.objects.get(pk=agent_id)
    services.agent_revoke(actor=world.admin, agent=agent)
    assert _post(client, "/report", _report(2, []), agent_id, new_secret).status_code == 401


def test_an_agent_writes_only_its_own_device(world):
    client, agent_a, secret_a = _enrolled(world)
    _client, agent_b, _secret_b = _enrolled(world)
    # There is no device field to aim at another device: the credential decides.
    response = _post(
        client,
        "/report",
        _report(1, [[_now(), "cpu.percent", {}, 5.0]], device_id=999),
        agent_a,
        secret_a,
    )
    assert response.status_code == 200
    device_b = Agent.objects.get(pk=agent_b).device_id
    assert not metric_selectors.series_list(source_id=device_b).exists()
    # Authenticating as B with A's secret fails.
    assert _post(client, "/report", _report(1, []), agent_b, secret_a).status_code == 401


def test_inventory_fills_the_device_and_records_changes(world):
    client, agent_id, secret = _enrolled(world)
    inventory = {
        "hostname": "PC-0231",
        "os": {"name": "Debian GNU/Linux", "version": "12", "kernel": "6.1.0"},
        "cpu": {"model": "Intel i5-8500", "cores": 6, "threads": 6},
        "memory_bytes": 8 * 1024**3,
        "nics": [
            {"name": "eth0", "mac": "52:54:00:12:34:56", "ips": ["127.0.0.1", "192.168.1.23"]}
        ],
        "software": [
            {"name": "openssh-server", "version": "9.2"},
            {"name": "vim", "version": "9.0"},
        ],
        "serial": "5CG1234XYZ",
    }
    assert _post(client, "/inventory", inventory, agent_id, secret).body == {"changes": 0}
    device = Agent.objects.get(pk=agent_id).device
    assert (device.os_name, device.memory_bytes, str(device.ip_address), device.serial) == (
        "Debian GNU/Linux",
        8 * 1024**3,
        "192.168.1.23",
        "5CG1234XYZ",
    )
    inventory["memory_bytes"] = 16 * 1024**3
    inventory["software"] = [
        {"name": "openssh-server", "version": "9.3"},
        {"name": "curl", "version": "8"},
    ]
    assert _post(client, "/inventory", inventory, agent_id, secret).body == {"changes": 4}
    changes = {(c.item, c.kind) for c in InventoryChange.objects.all()}
    assert changes == {
        ("memory_bytes", "changed"),
        ("software: curl", "added"),
        ("software: vim", "removed"),
        ("software: openssh-server", "changed"),
    }
    listed = call(
        api_client(world.engineer), "get", f"/api/v1/devices/{device.pk}/inventory-changes"
    )
    assert len(listed.body["results"]) == 4
    assert (
        call(
            api_client(world.other_engineer),
            "get",
            f"/api/v1/devices/{device.pk}/inventory-changes",
        ).status_code
        == 404
    )


def test_the_add_device_page_prints_the_exact_command(world):
    client = client_for(world.dispatcher)
    page = client.post("/devices/add/", {"site": world.site_a.pk, "name": "A 总部", "days": 3})
    assert page.status_code == 200
    html = page.content.decode()
    assert "onestop-agent enroll --server http://127.0.0.1:8000 --token et_" in html
    raw = html.split("--token ")[1].split()[0]
    # The printed token works, once per machine, and was audited without its value.
    assert _post(Client(), "/enroll", {"token": raw, "hostname": "PC-9"}).status_code == 201
    events = AuditEvent.objects.filter(object_type="monitoring.enrollmenttoken")
    assert events.exists() and raw not in json.dumps(list(events.values_list("changes", flat=True)))
    assert (
        client_for(world.other_engineer)
        .post("/devices/add/", {"site": world.site_a.pk, "days": 3})
        .status_code
        == 400
    )  # B's engineer cannot pick A's site
    assert client_for(world.portal_admin_a).get("/devices/add/").status_code == 403


def test_device_pages_show_status_and_stay_in_scope(world):
    client, agent_id, secret = _enrolled(world)
    _post(client, "/report", _report(1, []), agent_id, secret)
    device = Agent.objects.get(pk=agent_id).device
    page = client_for(world.engineer).get("/devices/")
    assert page.status_code == 200 and "PC-0231" in page.content.decode()
    assert "badge-active" in page.content.decode()  # online
    assert client_for(world.engineer).get(f"/devices/{device.pk}/").status_code == 200
    assert client_for(world.other_engineer).get(f"/devices/{device.pk}/").status_code == 404
    Agent.objects.filter(pk=agent_id).update(last_seen_at=timezone.now() - dt.timedelta(minutes=4))
    assert "badge-suspended" in client_for(world.engineer).get("/devices/").content.decode()


def test_device_metrics_through_the_user_api(world):
    client, agent_id, secret = _enrolled(world)
    now = _now()
    samples = [
        [now - 120, "disk.used_percent", {"mount": "/"}, 60.0],
        [now - 60, "disk.used_percent", {"mount": "/"}, 61.0],
        [now - 60, "disk.used_percent", {"mount": "/data"}, 10.0],
    ]
    _post(client, "/report", _report(1, samples), agent_id, secret)
    device_id = Agent.objects.get(pk=agent_id).device_id
    api = api_client(world.engineer)
    response = call(api, "get", f"/api/v1/devices/{device_id}/metrics", name="disk.used_percent")
    assert response.status_code == 200, response.body
    by_mount = {s["labels"]["mount"]: [p[2] for p in s["points"]] for s in response.body}
    assert by_mount == {"/": [60.0, 61.0], "/data": [10.0]}
    # from/to narrow the range (unix seconds or ISO 8601).
    recent = call(
        api,
        "get",
        f"/api/v1/devices/{device_id}/metrics",
        name="disk.used_percent",
        **{"from": int(now - 90), "to": int(now)},
    )
    assert {s["labels"]["mount"]: len(s["points"]) for s in recent.body} == {"/": 1, "/data": 1}
    bad = call(api, "get", f"/api/v1/devices/{device_id}/metrics", step=0)
    assert bad.status_code == 422
    other = call(api_client(world.other_engineer), "get", f"/api/v1/devices/{device_id}/metrics")
    assert other.status_code == 404


def test_the_device_list_shows_latest_values_in_a_fixed_number_of_queries(world):

    from onestop.metrics import services as metric_services

    def add(count):
        _token_obj, raw = _token(world)
        for n in range(count):
            agent, _secret = services.agent_enroll(
                token=raw, hostname=f"PC-{Agent.objects.count()}-{n}"
            )
            metric_services.samples_write(
                samples=[(agent.device_id, "cpu.percent", {}, _now() - 30, 42.0 + n)]
            )

    add(2)
    client = client_for(world.engineer)
    client.get("/devices/")
    with CaptureQueriesContext(connection) as few:
        page = client.get("/devices/")
    assert "42%" in page.content.decode()
    add(15)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/devices/").status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
