"""SNMP traps: the receiver accepts the stored communities only, the poller's loop stores what
arrives on the device it came from, published for alerting."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import tempfile

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
from onestop.monitoring.traps import ReceivedTrap, TrapReceiver, engine_id_for, parse_listen
from tests.conftest import client_for, require_peer

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
            no_keys = UsmUserData("trapper")  # noqa: S509 - names the user without its keys
            await _send_v3(receiver.port, no_keys, known_engine)
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


TRAPPER = SnmpCredentials.v3(
    "trapper",
    auth_protocol="SHA",
    auth_key="auth-secret-9",
    priv_protocol="AES",
    priv_key="priv-secret-9",
)


async def _inform_v3(port: int, user: UsmUserData) -> object:
    """Sends a v3 inform as devices do (discovering the receiver's engine id first); returns
    pysnmp's error indication, None once the receiver acknowledged it."""
    sender = SnmpEngine()
    try:
        error, *_rest = await send_notification(
            sender,
            user,
            await UdpTransportTarget.create(("127.0.0.1", port), timeout=1, retries=0),
            ContextData(),
            "inform",
            NotificationType(ObjectIdentity(LINK_DOWN)).add_varbinds(
                ("1.3.6.1.2.1.2.2.1.1.6", Integer(6)),
            ),
        )
        return error
    finally:
        sender.close_dispatcher()


def test_v3_informs_are_taken_with_the_keys_of_any_stored_user(caplog):
    other_keys = SnmpCredentials.v3("trapper", auth_protocol="SHA", auth_key="another-key-1")
    informer = SnmpCredentials.v3("informer", auth_protocol="SHA", auth_key="auth-secret-8")
    engine_id = engine_id_for("test-seed")

    def user(name="trapper", auth_key="auth-secret-9", priv_key="priv-secret-9"):
        return UsmUserData(
            name,
            authKey=auth_key,
            privKey=priv_key or None,
            authProtocol=USM_AUTH_HMAC96_SHA,
            privProtocol=USM_PRIV_CFB128_AES if priv_key else None,
        )

    async def run():
        received: list[ReceivedTrap] = []
        receiver = TrapReceiver(
            host="127.0.0.1", port=0, on_trap=received.append, engine_id=engine_id
        )
        receiver.open()
        receiver.users_set(
            {
                # Informs need no sender engine ids; the same user and keys twice name both.
                42: (TRAPPER, [bytes.fromhex("8000000001020304")]),
                43: (TRAPPER, []),
                # The oldest credentials keep the name "trapper"; these keys cannot be added.
                44: (other_keys, []),
                45: (informer, []),
            }
        )
        try:
            acknowledged = [
                await _inform_v3(receiver.port, user()),
                await _inform_v3(receiver.port, user("informer", "auth-secret-8", priv_key="")),
            ]
            refused = [
                await _inform_v3(receiver.port, user(auth_key="wrong-secret-1")),
                await _inform_v3(receiver.port, user(auth_key="another-key-1", priv_key="")),
                await _inform_v3(receiver.port, user("stranger")),
                await _inform_v3(receiver.port, UsmUserData("trapper")),  # noqa: S509 - no keys
            ]
            receiver.users_set({45: (informer, [])})  # "trapper" was deleted
            refused.append(await _inform_v3(receiver.port, user()))
            await asyncio.sleep(0.3)
        finally:
            receiver.close()
        return receiver, received, acknowledged, refused

    with caplog.at_level(logging.INFO, logger="onestop.monitoring.traps"):
        receiver, received, acknowledged, refused = asyncio.run(run())
    assert acknowledged == [None, None]
    assert all(error is not None for error in refused), refused
    assert [(t.version, t.sender, t.credential_ids) for t in received] == [
        ("3", "trapper", (42, 43)),
        ("3", "informer", (45,)),
    ]
    assert received[0].trap_oid == LINK_DOWN
    assert received[0].variables["1.3.6.1.2.1.2.2.1.1.6"] == "6"
    assert receiver.engine_id == engine_id
    assert f"SNMP engine id of the trap receiver: {engine_id.hex()}" in caplog.text
    assert "SNMPv3 credentials 44 have the user name of credentials 42" in caplog.text


def test_net_snmp_informs_are_acknowledged_with_the_right_keys_only(tmp_path):
    require_peer(
        shutil.which("snmpinform") is not None, "snmpinform is missing (apt-get install snmp)"
    )
    # Keep net-snmp's state (and its search for config files) out of /var/lib/snmp and ~.
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(tmp_path), "SNMPCONFPATH": str(tmp_path)}

    async def snmpinform(port: int, *security: str) -> int:
        process = await asyncio.create_subprocess_exec(
            *("snmpinform", "-v3", "-u", "trapper", *security, "-t", "1", "-r", "0"),
            *(f"127.0.0.1:{port}", "", LINK_DOWN, "1.3.6.1.2.1.2.2.1.1.7", "i", "7"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return await process.wait()

    def keys(auth_key="auth-secret-9"):
        return ("-l", "authPriv", "-a", "SHA", "-A", auth_key, "-x", "AES", "-X", "priv-secret-9")

    async def run():
        received: list[ReceivedTrap] = []
        receiver = TrapReceiver(host="127.0.0.1", port=0, on_trap=received.append)
        receiver.open()
        receiver.users_set({42: (TRAPPER, [])})
        try:
            codes = [
                await snmpinform(receiver.port, *keys()),
                await snmpinform(receiver.port, *keys(auth_key="wrong-secret-1")),
                await snmpinform(receiver.port, "-l", "noAuthNoPriv"),
            ]
            await asyncio.sleep(0.3)
        finally:
            receiver.close()
        return received, codes

    received, codes = asyncio.run(run())
    assert codes[0] == 0  # snmpinform got its acknowledgement
    assert codes[1] != 0 and codes[2] != 0
    assert [(t.version, t.sender, t.credential_ids, t.trap_oid) for t in received] == [
        ("3", "trapper", (42,), LINK_DOWN),
    ]
    assert received[0].variables["1.3.6.1.2.1.2.2.1.1.7"] == "7"


def test_the_engine_id_is_stable_and_valid(settings):
    first, again, other = engine_id_for("seed-1"), engine_id_for("seed-1"), engine_id_for("seed-2")
    assert first == again != other
    for engine_id in (first, other):
        # RFC 3411: 5 to 32 octets, the first bit set, an enterprise number, a format (5: octets)
        assert 5 <= len(engine_id) <= 32
        assert engine_id[0] & 0x80 and engine_id[4] == 5
        assert int.from_bytes(engine_id[:4]) & 0x7FFFFFFF == 20408

    async def opened(engine_id: bytes | None) -> bytes:
        receiver = TrapReceiver(
            host="127.0.0.1", port=0, on_trap=lambda trap: None, engine_id=engine_id
        )
        receiver.open()
        receiver.close()
        return receiver.engine_id

    assert asyncio.run(opened(first)) == first
    assert len(asyncio.run(opened(None))) >= 5  # made up by pysnmp

    # The poller's: from the secret key (which is never sent), unless a setting names one.
    settings.ONESTOP_SNMP_ENGINE_ID = None
    derived = poller_process.trap_engine_id()
    assert derived == poller_process.trap_engine_id() and derived[4] == 5
    settings.SECRET_KEY = "another-secret-key-of-at-least-32-characters"
    assert poller_process.trap_engine_id() not in (derived, engine_id_for(settings.SECRET_KEY))
    settings.ONESTOP_SNMP_ENGINE_ID = bytes.fromhex("80004fb805c0a80001")
    assert poller_process.trap_engine_id() == bytes.fromhex("80004fb805c0a80001")


def test_the_engine_counts_its_boots_in_its_own_folder(tmp_path):
    # RFC 3414: with a stable engine id the boot counter only grows, or senders' cached
    # timing goes stale; a service's private /tmp is emptied at every start.
    engine_id = engine_id_for("boots-seed")

    async def boots() -> int:
        receiver = TrapReceiver(
            host="127.0.0.1",
            port=0,
            on_trap=lambda trap: None,
            engine_id=engine_id,
            state_dir=str(tmp_path / "snmp"),
        )
        receiver.open()
        (counter,) = receiver._engine.get_mib_builder().import_symbols(
            "__SNMP-FRAMEWORK-MIB", "snmpEngineBoots"
        )
        receiver.close()
        return int(counter.syntax)

    first = asyncio.run(boots())
    assert asyncio.run(boots()) == first + 1
    assert (tmp_path / "snmp" / "__pysnmp").is_dir()
    assert tempfile.gettempdir() != str(tmp_path / "snmp")  # the process's own is left alone
