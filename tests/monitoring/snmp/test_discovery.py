"""SNMP discovery: identification from sysObjectID/sysDescr, the checks on a new job, and real
sweeps against the recorded devices (snmpsim) and Debian's snmpd that fill the asset register."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core.models import AuditEvent
from onestop.monitoring import discovery, services
from onestop.monitoring.discovery import describe, identify
from onestop.monitoring.models import DiscoveryJob
from onestop.monitoring.probes.snmp import SnmpCredentials

pytestmark = pytest.mark.django_db

CISCO_DESCR = (
    "Cisco IOS Software, C3750 Software (C3750-IPBASE-M), Version 12.2(50)SE5, "
    "RELEASE SOFTWARE (fc1)"
)
HUAWEI_DESCR = (
    "S5720-36C-EI-AC \r\nHuawei Versatile Routing Platform Software \r\n VRP (R) software,"
    "Version 5.160 (S5720 V200R007C00SPC500) \r\n Copyright (C) 2007 Huawei Technologies Co., "
    "Ltd."
)
H3C_DESCR = (
    "H3C Switch E528 Software Version 5.20, Release 1513P62\r\n"
    "Copyright(c) 2004-2013 Hangzhou H3C Tech. Co., Ltd. All rights reserved."
)
LINUX_DESCR = "Linux web01 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64"


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch):
    # Silent addresses cost one timeout each; the suite need not wait the production second.
    monkeypatch.setattr(services, "DISCOVERY_TIMEOUT_S", 0.5)


def _credential(world, community: str, customer="A", name: str = "Lab"):
    return services.snmp_credential_create(
        actor=world.admin,
        customer=world.customer_a if customer == "A" else customer,
        name=name,
        version="2c",
        community=community,
    )


def _job(world, credential, network: str, port: int, **fields):
    fields.setdefault("customer", world.customer_a)
    return services.discovery_job_create(
        actor=world.admin, network=network, snmp_credential=credential, port=port, **fields
    )


def _run(job) -> DiscoveryJob:
    services.discovery_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


# identification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_id", "descr", "expected"),
    [
        # the recordings snmpsim serves (real devices)
        ("1.3.6.1.4.1.9.1.516", CISCO_DESCR, ("Cisco", "C3750", "switch")),
        ("1.3.6.1.4.1.2011.2.23.276", HUAWEI_DESCR, ("Huawei", "S5720", "switch")),
        ("1.3.6.1.4.1.25506.1.578", H3C_DESCR, ("H3C", "E528", "switch")),
        # net-snmp on Linux: the OS is known, the maker of the box is not
        ("1.3.6.1.4.1.8072.3.2.10", LINUX_DESCR, ("", "", "server")),
        (
            "1.3.6.1.4.1.8072.3.2.10",
            "Linux DiskStation 4.4.180+ #42962 SMP x86_64",
            ("", "", "nas"),
        ),
        # printers: an HP JetDirect by its sysObjectID, a Kyocera by its maker
        (
            "1.3.6.1.4.1.11.2.3.9.1",
            "HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153,EEPROM JSI23900",
            ("HP", "", "printer"),
        ),
        (
            "1.3.6.1.4.1.1347.41",
            "KYOCERA Document Solutions Printing System",
            ("Kyocera", "", "printer"),
        ),
        # the same maker, different kinds
        (
            "1.3.6.1.4.1.9.1.1208",
            "Cisco IOS Software, C2900 Software (C2900-UNIVERSALK9-M), Version 15.1(4)M4",
            ("Cisco", "C2900", "router"),
        ),
        (
            "1.3.6.1.4.1.9.1.745",
            "Cisco Adaptive Security Appliance Version 9.8(2)",
            ("Cisco", "ASA", "firewall"),
        ),
        (
            "1.3.6.1.4.1.2011.2.224.67",
            "Huawei AR2220 Huawei Versatile Routing Platform Software VRP (R) software, "
            "Version 5.170 (AR2220 V200R009C00SPC500)",
            ("Huawei", "AR2220", "router"),
        ),
        (
            "1.3.6.1.4.1.25506.11.1.100",
            "H3C Comware Platform Software, Software Version 7.1.045, Release 2311P06\r\n"
            "H3C S5130-28S-SI\r\nCopyright (c) 2004-2017 New H3C Technologies Co., Ltd.",
            ("H3C", "S5130", "switch"),
        ),
        ("1.3.6.1.4.1.318.1.3.27", "APC Web/SNMP Management Card (MB:v4.1.0)", ("APC", "", "ups")),
        (
            "1.3.6.1.4.1.12356.101.1.1",
            "FortiGate-60F v7.0.12",
            ("Fortinet", "FortiGate-60F", "firewall"),
        ),
        (
            "1.3.6.1.4.1.311.1.1.3.1.1",
            "Hardware: Intel64 Family 6 - Software: Windows Version 6.3 (Build 19045 "
            "Multiprocessor Free)",
            ("", "", "desktop"),
        ),
        # unknown enterprise, no sysObjectID at all
        ("1.3.6.1.4.1.999999.1.2", "Mystery appliance", ("", "", "other")),
        ("", "", ("", "", "other")),
    ],
)
def test_identify(object_id, descr, expected):
    assert identify(object_id, descr) == expected


def test_the_operating_system_is_read_from_the_description():
    assert describe("1.3.6.1.4.1.9.1.516", CISCO_DESCR).os_name == "Cisco IOS"
    assert describe("1.3.6.1.4.1.9.1.516", CISCO_DESCR).os_version == "12.2(50)SE5"
    huawei = describe("1.3.6.1.4.1.2011.2.23.276", HUAWEI_DESCR)
    assert (huawei.os_name, huawei.os_version) == ("Huawei VRP", "V200R007C00SPC500")
    linux = describe("1.3.6.1.4.1.8072.3.2.10", LINUX_DESCR)
    assert (linux.os_name, linux.os_version) == ("Linux", "6.1.0-18-amd64")


@pytest.mark.parametrize(
    ("text", "serial"),
    [
        ("FDO1622Y10H", "FDO1622Y10H"),
        (" 210235A0GKC158000929 ", "210235A0GKC158000929"),
        ("", ""),
        ("N/A", ""),
        ("Not Specified", ""),
        ("000000", ""),
        ("abc", ""),
    ],
)
def test_only_plausible_serial_numbers_are_kept(text, serial):
    assert discovery.plausible_serial(text) == serial


# a new job: what is refused --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "says"),
    [
        ("10.0.0.0/8", "16,777,216 addresses"),
        ("2001:db8::/64", "Split the range"),
        ("10.1.2.300/24", "not a network"),
        ("server room", "not a network"),
        ("", "not a network"),
        ("224.0.0.0/24", "not a network of devices"),
    ],
)
def test_a_bad_network_is_refused_and_nothing_is_stored(world, network, says):
    credential = _credential(world, "public")
    audited = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as caught:
        _job(world, credential, network, 161)
    assert says in " ".join(caught.value.message_dict["network"])
    assert not DiscoveryJob.objects.exists()
    assert AuditEvent.objects.count() == audited


def test_a_slash_8_says_how_to_split_it(world):
    credential = _credential(world, "public")
    with pytest.raises(ValidationError) as caught:
        _job(world, credential, "10.0.0.0/8", 161)
    message = caught.value.message_dict["network"][0]
    assert "at most 4,096" in message and "/20" in message and "Split" in message


def test_the_site_and_the_credentials_must_be_the_customers(world):
    theirs = _credential(world, "public", customer=world.customer_b, name="B's")
    ours = _credential(world, "public")
    with pytest.raises(ValidationError) as caught:
        _job(world, ours, "10.1.20.0/24", 161, site=world.site_b)
    assert set(caught.value.message_dict) == {"site"}
    with pytest.raises(ValidationError) as caught:
        _job(world, theirs, "10.1.20.0/24", 161, site=world.site_a)
    assert set(caught.value.message_dict) == {"snmp_credential"}
    with pytest.raises(ValidationError) as caught:
        _job(world, ours, "10.1.20.0/24", 0)
    assert set(caught.value.message_dict) == {"port"}
    assert not DiscoveryJob.objects.exists()


def test_a_job_is_queued_audited_and_counts_the_hosts(world):
    provider_wide = _credential(world, "public", customer=None)
    assert provider_wide.customer_id is None
    job = _job(world, provider_wide, "10.1.16.0/20", 161, site=world.site_a)
    assert (job.status, job.network, job.hosts_total) == ("queued", "10.1.16.0/20", 4094)
    audited = AuditEvent.objects.filter(object_type="monitoring.discoveryjob", action="create")
    assert audited.count() == 1
    # Host bits are forgiven; a single address is a network of one.
    assert _job(world, provider_wide, "10.1.20.7/24", 161).network == "10.1.20.0/24"
    assert _job(world, provider_wide, "10.1.20.7", 161).hosts_total == 1
    assert _job(world, provider_wide, "2001:db8::/120", 161).hosts_total == 255


# real sweeps ------------------------------------------------------------------------------------


def test_a_cisco_switch_is_discovered_with_its_interfaces(
    world, snmpsim_agent, django_capture_on_commit_callbacks
):
    credential = _credential(world, "cisco-c3750")
    # The job is started on commit; Huey runs tasks immediately in the tests.
    with django_capture_on_commit_callbacks(execute=True):
        job = _job(world, credential, "127.0.0.1/32", snmpsim_agent.port, site=world.site_a)
    job.refresh_from_db()
    assert job.status == "done", job.message
    assert (job.hosts_total, job.hosts_answered) == (1, 1)
    assert (job.devices_created, job.devices_updated) == (1, 0)
    assert job.started_at and job.finished_at
    device = Device.objects.get(customer=world.customer_a, ip_address="127.0.0.1")
    assert (device.name, device.vendor, device.model, device.kind) == (
        "DUMSYS-90",
        "Cisco",
        "C3750",
        "switch",
    )
    assert (device.source, device.site, device.os_name) == ("discovery", world.site_a, "Cisco IOS")
    nics = device.inventory["nics"]
    assert len(nics) > 10
    by_mac = {nic["mac"]: nic for nic in nics if nic["mac"]}
    assert "f4:7f:35:93:af:c0" in by_mac
    assert all(set(nic) >= {"name", "mac", "speed_bps", "up"} for nic in nics)
    assert any(nic["up"] for nic in nics) and any(nic["speed_bps"] for nic in nics)
    [row] = job.results
    assert row["device_id"] == device.pk and row["action"] == "created"
    assert row["interfaces"] == len(nics)
    # The job is done: running it again does nothing.
    assert services.discovery_job_run(job_id=job.pk) is None


def test_a_second_discovery_updates_instead_of_duplicating(world, snmpsim_agent):
    credential = _credential(world, "huawei-s5720")
    first = _run(_job(world, credential, "127.0.0.1/32", snmpsim_agent.port))
    second = _run(_job(world, credential, "127.0.0.1/32", snmpsim_agent.port))
    assert (first.devices_created, first.devices_updated) == (1, 0)
    assert (second.devices_created, second.devices_updated) == (0, 1)
    device = Device.objects.get(customer=world.customer_a)
    assert (device.vendor, device.model, device.kind) == ("Huawei", "S5720", "switch")
    assert second.results[0]["device_id"] == device.pk
    assert device.inventory["nics"]


def test_only_the_addresses_that_answer_become_devices(world, snmpsim_agent):
    credential = _credential(world, "h3c-e528-2")
    job = _job(world, credential, "127.0.0.0/30", snmpsim_agent.port)
    # Network and broadcast addresses of an IPv4 network are not asked: .1 and .2 are.
    assert job.hosts_total == 2
    started = time.monotonic()
    job = _run(job)
    assert time.monotonic() - started < 15
    assert job.status == "done"
    assert (job.hosts_total, job.hosts_answered, job.devices_created) == (2, 1, 1)
    device = Device.objects.get(customer=world.customer_a)
    assert (str(device.ip_address), device.vendor, device.model) == ("127.0.0.1", "H3C", "E528")


def test_a_wrong_community_finds_nothing(world, snmpsim_agent):
    credential = _credential(world, "not-the-community")
    job = _run(_job(world, credential, "127.0.0.1/32", snmpsim_agent.port))
    assert job.status == "done"
    assert (job.hosts_answered, job.devices_created, job.results) == (0, 0, [])
    assert job.message == "0 of 1 addresses answered: 0 devices added, 0 updated."
    assert not Device.objects.exists()


def test_other_customers_devices_are_never_touched(world, snmpsim_agent):
    theirs = asset_services.device_create(
        actor=None, customer=world.customer_b, name="B's box", ip_address="127.0.0.1"
    )
    credential = _credential(world, "cisco-c3750")
    job = _run(_job(world, credential, "127.0.0.1", snmpsim_agent.port))
    assert job.devices_created == 1
    theirs.refresh_from_db()
    assert (theirs.name, theirs.vendor, theirs.inventory) == ("B's box", "", {})
    assert Device.objects.filter(customer=world.customer_a, vendor="Cisco").count() == 1


def test_a_device_entered_by_hand_is_filled_in_not_overwritten(world, snmpsim_agent):
    ours = asset_services.device_create(
        actor=None,
        customer=world.customer_a,
        name="Core switch",
        kind=Device.Kind.ROUTER,
        vendor="Huawei Technologies",
        ip_address="127.0.0.1",
    )
    credential = _credential(world, "huawei-s5720")
    job = _run(_job(world, credential, "127.0.0.1", snmpsim_agent.port, site=world.site_a))
    assert (job.devices_created, job.devices_updated) == (0, 1)
    ours.refresh_from_db()
    assert (ours.name, ours.kind, ours.vendor, ours.source) == (
        "Core switch",
        "router",
        "Huawei Technologies",
        "manual",
    )
    assert (ours.model, ours.site, ours.hostname) == ("S5720", world.site_a, "DUMSYS-05")
    assert ours.inventory["nics"]


def test_a_linux_server_is_discovered_with_snmp_v3(world, snmpd_agent):
    credential = services.snmp_credential_create(
        actor=world.admin,
        customer=world.customer_a,
        name="v3",
        version="3",
        user=snmpd_agent.v3_user,
        auth_protocol="SHA",
        auth_key=snmpd_agent.v3_auth_key,
        priv_protocol="AES128",
        priv_key=snmpd_agent.v3_priv_key,
    )
    job = _run(_job(world, credential, "127.0.0.1/32", snmpd_agent.port))
    assert (job.status, job.hosts_answered, job.devices_created) == ("done", 1, 1), job.message
    device = Device.objects.get(customer=world.customer_a)
    assert (device.name, device.kind, device.os_name) == ("onestop-snmpd-test", "server", "Linux")
    assert device.inventory["snmp"]["location"] == "OneStop test suite"
    assert any(nic["name"] == "lo" for nic in device.inventory["nics"])


def test_the_sweep_skips_silence_and_keeps_order(snmpsim_agent):
    found = asyncio.run(
        discovery.sweep(
            addresses=["127.0.0.2", "127.0.0.1"],
            credentials=SnmpCredentials.v2c("huawei-s5720"),
            port=snmpsim_agent.port,
            timeout=0.5,
            concurrency=2,
        )
    )
    [huawei] = found
    assert (huawei.address, huawei.sys_name, huawei.vendor) == ("127.0.0.1", "DUMSYS-05", "Huawei")
    assert any(interface.mac == "d4:94:e8:0d:e1:20" for interface in huawei.interfaces)
    # unusable credentials ask nobody
    broken = SnmpCredentials.v3("someone", auth_protocol="SHA", auth_key="short")
    assert asyncio.run(discovery.sweep(addresses=["127.0.0.1"], credentials=broken)) == []


# what must never happen: a job stuck in "running" ----------------------------------------------


def test_an_unexpected_error_fails_the_job_with_its_message(world, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("the sweep blew up")

    monkeypatch.setattr(discovery, "sweep_blocking", explode)
    credential = _credential(world, "public")
    job = _run(_job(world, credential, "10.1.20.0/30", 161))
    assert job.status == "failed"
    assert "the sweep blew up" in job.message
    assert job.finished_at is not None


def test_recovery_ends_abandoned_jobs_and_restarts_forgotten_ones(world, monkeypatch):
    started = []
    monkeypatch.setattr(services, "_discovery_enqueue", started.append)
    credential = _credential(world, "public")
    abandoned = _job(world, credential, "10.1.20.0/30", 161)
    forgotten = _job(world, credential, "10.1.21.0/30", 161)
    fresh = _job(world, credential, "10.1.22.0/30", 161)
    long_ago = timezone.now() - dt.timedelta(hours=2)
    DiscoveryJob.objects.filter(pk=abandoned.pk).update(status="running", started_at=long_ago)
    DiscoveryJob.objects.filter(pk=forgotten.pk).update(created_at=long_ago)
    assert services.discovery_jobs_recover() == {"interrupted": 1, "requeued": 1}
    abandoned.refresh_from_db()
    assert abandoned.status == "failed" and "interrupted" in abandoned.message
    assert started == [forgotten.pk]
    fresh.refresh_from_db()
    assert fresh.status == "queued"


def test_a_device_found_by_serial_at_a_new_address_moves_there(world):
    moved = asset_services.device_create(
        actor=None,
        customer=world.customer_a,
        name="Access switch",
        kind=Device.Kind.SWITCH,
        serial="FDO1622Y10H",
        ip_address="10.9.9.9",
        source=Device.Source.DISCOVERY,
    )
    asset_services.device_create(
        actor=None, customer=world.customer_b, name="B's", serial="FDO1622Y10H"
    )
    job = _job(world, _credential(world, "public"), "10.1.20.0/24", 161)
    found = discovery.Found(
        address="10.1.20.5",
        sys_object_id="1.3.6.1.4.1.9.1.516",
        sys_descr=CISCO_DESCR,
        sys_name="sw-5",
        serial="FDO1622Y10H",
        identity=describe("1.3.6.1.4.1.9.1.516", CISCO_DESCR),
    )
    row = services._discovered_device_store(job, found)
    assert (row["device_id"], row["action"]) == (moved.pk, "updated")
    moved.refresh_from_db()
    assert (moved.ip_address, moved.name, moved.model) == ("10.1.20.5", "Access switch", "C3750")
    assert Device.objects.filter(serial="FDO1622Y10H").count() == 2  # B's is left alone
