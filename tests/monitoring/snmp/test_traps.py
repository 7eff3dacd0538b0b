"""SNMP traps: the receiver accepts the stored communities only, the poller's loop stores what
arrives on the device it came from, published for alerting."""

from __future__ import annotations

import asyncio

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_SHA,
    USM_PRIV_CFB128_AES,
    CommunityData,
    ContextData,
    Integer,
    NotificationType,
    ObjectIdentity,
    OctetString,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    send_notification,
)

from onestop.assets import services as asset_services
from onestop.core.models import DomainEvent
from onestop.monitoring import poller_process, services
from onestop.monitoring.models import SnmpTrap
from onestop.monitoring.probes.snmp import SnmpCredentials
from onestop.monitoring.traps import ReceivedTrap, TrapReceiver, parse_listen
from tests.conftest import client_for

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"


async def _send(port: int, community: str, if_name: str = "GigabitEthernet0/2") -> None:
    sender = SnmpEngine()
    try:
        error, *_rest = await send_notification(
            sender,
            CommunityData(community, mpModel=1),  # noqa: S508 - what devices send
            await UdpTransportTarget.create(("127.0.0.1", port)),
            ContextData(),
            "trap",
            NotificationType(ObjectIdentity(LINK_DOWN)).add_varbinds(
                ("1.3.6.1.2.1.2.2.1.1.2", Integer(2)),
                ("1.3.6.1.2.1.2.2.1.2.2", OctetString(if_name)),
            ),
        )
        assert error is None, error
    finally:
        sender.close_dispatcher()


def test_the_receiver_takes_known_communities_and_drops_the_rest():
    async def run():
        received: list[ReceivedTrap] = []
        receiver = TrapReceiver(host="127.0.0.1", port=0, on_trap=received.append)
        receiver.open()
        receiver.communities_set({7: "s3cret-a", 8: "s3cret-a", 9: "s3cret-b"})
        try:
            await _send(receiver.port, "s3cret-a")
            await _send(receiver.port, "guessed")
            await _send(receiver.port, "s3cret-b", if_name="Gi0/9")
            receiver.communities_set({9: "s3cret-b"})  # credentials 7 and 8 were deleted
            await _send(receiver.port, "s3cret-a")
            await asyncio.sleep(0.3)
        finally:
            receiver.close()
        return received

    received = asyncio.run(run())
    assert [trap.credential_ids for trap in received] == [(7, 8), (9,)]
    first = received[0]
    assert (first.source, first.version, first.trap_oid) == ("127.0.0.1", "2c", LINK_DOWN)
    assert first.variables["1.3.6.1.2.1.2.2.1.2.2"] == "GigabitEthernet0/2"
    assert received[1].variables["1.3.6.1.2.1.2.2.1.2.2"] == "Gi0/9"


def test_a_taken_port_fails_at_once_with_the_reason():
    async def run():
        first = TrapReceiver(host="127.0.0.1", port=0, on_trap=lambda trap: None)
        first.open()
        try:
            second = TrapReceiver(host="127.0.0.1", port=first.port, on_trap=lambda trap: None)
            with pytest.raises(OSError, match="in use"):
                second.open()
        finally:
            first.close()

    asyncio.run(run())


@pytest.mark.parametrize("value", ["162", ":162", "0.0.0.0:", "0.0.0.0:99999", "host:port"])
def test_a_listen_address_must_be_host_and_port(value):
    with pytest.raises(ValueError):
        parse_listen(value)


@pytest.mark.django_db
def test_traps_go_to_the_one_device_of_the_communitys_customer(world):
    mine = services.snmp_credential_create(
        actor=None, customer=world.customer_a, name="A", version="2c", community="a-comm"
    )
    everyone = services.snmp_credential_create(
        actor=None, name="Default", version="2c", community="public"
    )
    switch_a = asset_services.device_create(
        actor=None, customer=world.customer_a, name="SW-A", kind="switch", ip_address="10.1.1.2"
    )
    # Customer B uses the same private address range.
    asset_services.device_create(
        actor=None, customer=world.customer_b, name="SW-B", kind="switch", ip_address="10.1.1.2"
    )

    def trap(credential_ids):
        return ReceivedTrap(
            source="10.1.1.2",
            version="2c",
            credential_ids=credential_ids,
            trap_oid=LINK_DOWN,
            uptime_s=12.5,
            variables={"1.3.6.1.2.1.2.2.1.1.2": "2"},
        )

    ours, ambiguous, unknown = services.snmp_traps_record(
        traps=[trap((mine.pk,)), trap((everyone.pk,)), trap(())]
    )
    assert ours.device == switch_a
    assert ambiguous.device is None and unknown.device is None  # kept, on no device
    event = DomainEvent.objects.get(name="snmp.trap", object_id=str(ours.pk))
    assert event.customer_id == world.customer_a.pk
    assert event.payload["device_id"] == switch_a.pk and event.payload["trap_oid"] == LINK_DOWN
    assert SnmpTrap.objects.count() == 3

    page = client_for(world.admin).get(f"/devices/{switch_a.pk}/")
    assert page.status_code == 200
    assert b'id="traps"' in page.content and LINK_DOWN.encode() in page.content
    customer_view = client_for(world.portal_admin_a).get(f"/devices/{switch_a.pk}/")
    assert LINK_DOWN.encode() not in customer_view.content  # traps are the provider's view


@pytest.mark.django_db(transaction=True)
def test_the_poller_stores_traps_it_receives(world):
    services.snmp_credential_create(
        actor=None, customer=world.customer_a, name="A", version="2c", community="a-comm"
    )
    switch = asset_services.device_create(
        actor=None, customer=world.customer_a, name="SW-LO", kind="switch", ip_address="127.0.0.1"
    )

    async def run(executor):
        stop = asyncio.Event()
        received: list[ReceivedTrap] = []
        receiver = TrapReceiver(host="127.0.0.1", port=0, on_trap=received.append)
        receiver.open()
        task = asyncio.create_task(
            poller_process.traps_receive(
                receiver=receiver, received=received, executor=executor, stop=stop
            )
        )
        for _ in range(50):  # until the communities are loaded
            if receiver._communities:
                break
            await asyncio.sleep(0.1)
        await _send(receiver.port, "a-comm")
        await asyncio.sleep(0.3)
        stop.set()
        await task  # stores what arrived before returning
        receiver.close()

    with poller_process.database_thread() as executor:
        asyncio.run(run(executor))
    stored = SnmpTrap.objects.get()
    assert stored.device == switch and stored.trap_oid == LINK_DOWN
    assert stored.variables["1.3.6.1.2.1.2.2.1.2.2"] == "GigabitEthernet0/2"


async def _send_v3(port: int, user: UsmUserData, engine_id: str) -> None:
    sender = SnmpEngine(OctetString(hexValue=engine_id))
    try:
        error, *_rest = await send_notification(
            sender,
            user,
            await UdpTransportTarget.create(("127.0.0.1", port), timeout=2, retries=0),
            ContextData(),
            "trap",
            NotificationType(ObjectIdentity(LINK_DOWN)).add_varbinds(
                ("1.3.6.1.2.1.2.2.1.1.5", Integer(5)),
            ),
        )
        assert error is None, error
    finally:
        sender.close_dispatcher()


def test_v3_traps_are_taken_from_named_engines_with_the_right_keys_only():
    credentials = SnmpCredentials.v3(
        "trapper",
        auth_protocol="SHA",
        auth_key="auth-secret-9",
        priv_protocol="AES",
        priv_key="priv-secret-9",
    )
    known_engine, stranger = "8000000001020304", "80000000010a0b0c"

    def user(auth_key="auth-secret-9"):
        return UsmUserData(
            "trapper",
            authKey=auth_key,
            privKey="priv-secret-9",
            authProtocol=USM_AUTH_HMAC96_SHA,
            privProtocol=USM_PRIV_CFB128_AES,
        )

    async def run():
        received: list[ReceivedTrap] = []
        receiver = TrapReceiver(host="127.0.0.1", port=0, on_trap=received.append)
        receiver.open()
        receiver.users_set({42: (credentials, [bytes.fromhex(known_engine)])})
        try:
            await _send_v3(receiver.port, user(), known_engine)
            await _send_v3(receiver.port, user(), stranger)  # an engine nobody named
            await _send_v3(receiver.port, user(auth_key="wrong-secret-1"), known_engine)
            await asyncio.sleep(0.5)
        finally:
            receiver.close()
        return received

    received = asyncio.run(run())
    assert [(t.version, t.sender, t.credential_ids) for t in received] == [
        ("3", "trapper", (42,)),
    ]
    assert all(t.trap_oid == LINK_DOWN for t in received)


@pytest.mark.django_db
@translation.override("en")
def test_v3_trap_engine_ids_are_checked_when_saved(world):
    fields = {
        "actor": None,
        "name": "Core",
        "version": "3",
        "user": "trapper",
        "auth_protocol": "SHA",
        "auth_key": "auth-secret-9",
    }
    credential = services.snmp_credential_create(
        trap_engine_ids="0x8000000001020304\n80000009030000C1B1D0E001", **fields
    )
    assert credential.engine_ids() == [
        bytes.fromhex("8000000001020304"),
        bytes.fromhex("80000009030000c1b1d0e001"),
    ]
    for bad in ("not-hex", "80000", "8000000001020"):
        with pytest.raises(ValidationError, match="engine ID"):
            services.snmp_credential_update(actor=None, credential=credential, trap_engine_ids=bad)
    with pytest.raises(ValidationError, match="Only SNMPv3"):
        services.snmp_credential_create(
            actor=None, name="V2", version="2c", community="c", trap_engine_ids="8000000001020304"
        )
