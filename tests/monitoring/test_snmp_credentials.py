"""SNMP credentials: stored encrypted, validated before anything is saved, required by SNMP
checks, bound to their customer, audited without their secrets, protected while in use."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from onestop.assets import services as asset_services
from onestop.core import crypto
from onestop.core.errors import ConflictError
from onestop.core.models import AuditEvent
from onestop.core.scoping import restrict
from onestop.monitoring import selectors, services
from onestop.monitoring.models import SnmpCredential
from tests.apitest import api_client, call

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def _v3(world, **fields):
    values = {
        "customer": world.customer_a,
        "name": "Core switches",
        "version": "3",
        "user": "onestop",
        "auth_protocol": "SHA",
        "auth_key": "auth-pass-123",
        "priv_protocol": "AES128",
        "priv_key": "priv-pass-456",
    }
    values.update(fields)
    return services.snmp_credential_create(actor=world.admin, **values)


def _switch(world, customer=None):
    return asset_services.device_create(
        actor=None,
        customer=customer or world.customer_a,
        name="SW-CORE-01",
        kind="switch",
        ip_address="10.0.0.2",
    )


def test_secrets_are_stored_encrypted_and_given_back_to_the_probe(world):
    credential = _v3(world)
    stored = SnmpCredential.objects.values().get(pk=credential.pk)
    assert "auth-pass-123" not in str(stored) and "priv-pass-456" not in str(stored)
    assert crypto.decrypt(stored["auth_key_encrypted"]) == "auth-pass-123"

    probe_view = selectors.snmp_credentials_for_probe(credential)
    assert probe_view.security_level == "authPriv"
    assert (probe_view.auth_key, probe_view.priv_key) == ("auth-pass-123", "priv-pass-456")
    assert "auth-pass-123" not in repr(probe_view)

    created = AuditEvent.objects.get(object_type="monitoring.snmpcredential", action="create")
    assert "auth-pass-123" not in str(created.changes)
    assert "priv-pass-456" not in str(created.changes)


def test_an_update_without_secrets_keeps_them_and_a_new_one_replaces_it(world):
    credential = _v3(world)
    services.snmp_credential_update(
        actor=world.admin, credential=credential, name="Core", auth_key=""
    )
    credential.refresh_from_db()
    assert credential.name == "Core"
    assert selectors.snmp_credentials_for_probe(credential).auth_key == "auth-pass-123"

    services.snmp_credential_update(
        actor=world.admin, credential=credential, priv_key="new-priv-789"
    )
    credential.refresh_from_db()
    assert selectors.snmp_credentials_for_probe(credential).priv_key == "new-priv-789"
    updates = AuditEvent.objects.filter(object_type="monitoring.snmpcredential", action="update")
    assert updates.count() == 2
    assert "new-priv-789" not in str(list(updates.values_list("changes", flat=True)))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"priv_protocol": "AES128", "auth_protocol": ""}, "privacy needs authentication"),
        ({"auth_key": "short"}, "at least 8 characters"),
        ({"user": ""}, "needs a user name"),
    ],
)
def test_credentials_that_cannot_work_are_refused_and_nothing_is_stored(world, fields, reason):
    with pytest.raises(ValidationError) as raised:
        _v3(world, **fields)
    assert reason in str(raised.value)
    assert not SnmpCredential.objects.exists()
    assert not AuditEvent.objects.filter(object_type="monitoring.snmpcredential").exists()


def test_a_v2c_community_is_required(world):
    with pytest.raises(ValidationError, match="needs a community"):
        services.snmp_credential_create(actor=world.admin, name="Printers", version="2c")


def test_snmp_checks_need_credentials_the_device_may_use(world):
    switch = _switch(world)
    with pytest.raises(ValidationError) as missing:
        services.check_create(
            actor=None,
            device=switch,
            name="Uptime",
            kind="poller",
            probe="snmp_uptime",
            mode="availability",
            metric="snmp.uptime_s",
        )
    assert "snmp_credential" in missing.value.message_dict

    others = _v3(world, customer=world.customer_b, name="B's switches")
    with pytest.raises(ValidationError, match="another customer"):
        services.check_create(
            actor=None,
            device=switch,
            name="Uptime",
            kind="poller",
            probe="snmp_uptime",
            mode="availability",
            metric="snmp.uptime_s",
            snmp_credential=others,
        )

    provider_wide = services.snmp_credential_create(
        actor=world.admin, name="Default community", version="2c", community="public"
    )
    check = services.check_create(
        actor=None,
        device=switch,
        name="Uptime",
        kind="poller",
        probe="snmp_uptime",
        mode="availability",
        metric="snmp.uptime_s",
        snmp_credential=provider_wide,
    )
    assert check.snmp_credential == provider_wide

    ping = {"kind": "poller", "probe": "ping", "metric": "ping.rtt_ms", "mode": "availability"}
    with pytest.raises(ValidationError, match="Only SNMP probes"):
        services.check_create(
            actor=None, device=switch, name="Ping", snmp_credential=provider_wide, **ping
        )


def test_credentials_in_use_cannot_be_deleted(world):
    credential = _v3(world)
    services.check_create(
        actor=None,
        device=_switch(world),
        name="Uptime",
        kind="poller",
        probe="snmp_uptime",
        mode="availability",
        metric="snmp.uptime_s",
        snmp_credential=credential,
    )
    with pytest.raises(ConflictError):
        services.snmp_credential_delete(actor=world.admin, credential=credential)
    assert SnmpCredential.objects.filter(pk=credential.pk).exists()


def test_only_staff_of_the_customer_see_its_credentials(world):
    _v3(world)
    _v3(world, customer=world.customer_b, name="B's switches")
    services.snmp_credential_create(
        actor=world.admin, name="Default", version="2c", community="public"
    )

    def names(user):
        visible = restrict(SnmpCredential.objects.all(), user)
        return sorted(visible.values_list("name", flat=True))

    assert names(world.admin) == ["B's switches", "Core switches", "Default"]
    assert names(world.engineer) == ["Core switches", "Default"]  # serves customer A only
    assert names(world.portal_admin_a) == []


def test_the_api_never_shows_a_secret_and_checks_name_their_credentials(world):
    client = api_client(world.admin)
    created = call(
        client,
        "post",
        "/api/v1/snmp-credentials",
        {"customer_id": world.customer_a.pk, "name": "Lab", "version": "2c", "community": "c0mm"},
    )
    assert created.status_code == 201, created.body
    assert created.body["has_community"] is True
    assert "c0mm" not in json.dumps(created.body) and "community" not in created.body

    switch = _switch(world)
    check = call(
        client,
        "post",
        "/api/v1/checks",
        {
            "device_id": switch.pk,
            "name": "Uptime",
            "kind": "poller",
            "probe": "snmp_uptime",
            "mode": "availability",
            "snmp_credential_id": created.body["id"],
        },
    )
    assert check.status_code == 201, check.body
    assert check.body["snmp_credential_id"] == created.body["id"]

    others = _v3(world, customer=world.customer_b, name="B")
    engineer = api_client(world.engineer)  # serves customer A only
    refused = call(
        engineer,
        "patch",
        f"/api/v1/checks/{check.body['id']}",
        {"snmp_credential_id": others.pk},
    )
    assert refused.status_code == 422
    assert SnmpCredential.objects.get(pk=created.body["id"]).name == "Lab"


def test_v3_trap_senders_are_named_through_the_api(world):
    client = api_client(world.admin)
    body = {
        "name": "Core v3",
        "version": "3",
        "user": "trapper",
        "auth_protocol": "SHA",
        "auth_key": "auth-secret-9",
        "trap_engine_ids": ["0x8000000001020304", "80000009030000C1B1D0E001"],
    }
    created = call(client, "post", "/api/v1/snmp-credentials", body)
    assert created.status_code == 201, created.body
    assert created.body["trap_engine_ids"] == ["8000000001020304", "80000009030000c1b1d0e001"]
    bad = call(
        client,
        "patch",
        f"/api/v1/snmp-credentials/{created.body['id']}",
        {"trap_engine_ids": ["zz"]},
    )
    assert bad.status_code == 422
    assert SnmpCredential.objects.get(pk=created.body["id"]).engine_ids() == [
        bytes.fromhex("8000000001020304"),
        bytes.fromhex("80000009030000c1b1d0e001"),
    ]
