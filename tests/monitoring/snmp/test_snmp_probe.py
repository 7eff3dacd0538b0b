"""SNMP probes against real agents (snmpsim recordings, Debian snmpd) plus the pure helpers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from onestop.monitoring.probes.base import ProbeStatus
from onestop.monitoring.probes.snmp import (
    IF_DESCR,
    SYS_DESCR,
    SYS_OBJECT_ID,
    SYS_UPTIME,
    SYSUPTIME_WRAP_S,
    SnmpCredentials,
    counter_rate,
    enterprise_of,
    interface_rates,
    probe_snmp_cpu_memory,
    probe_snmp_interfaces,
    probe_snmp_oid,
    probe_snmp_uptime,
    rebooted,
    snmp_get,
    snmp_walk,
)

from .conftest import SNMPD_COMMUNITY, free_udp_port

COUNTERS = SnmpCredentials.v2c("onestop-counters")
CISCO = SnmpCredentials.v2c("cisco-c3750")
HUAWEI = SnmpCredentials.v2c("huawei-s5720")
H3C = SnmpCredentials.v2c("h3c-e528-2")
SNMPD = SnmpCredentials.v2c(SNMPD_COMMUNITY)
IF_IN_OCTETS_1 = "1.3.6.1.2.1.2.2.1.10.1"


def run(coro):
    return asyncio.run(coro)


# --- pure helpers ---------------------------------------------------------------------------


def test_counter_rate_plain_and_wrap():
    assert counter_rate(1000, 10.0, 3000, 12.0) == 1000.0
    # 32-bit wrap: 2**32 - 100 -> 400 is 500 octets, not a negative or huge jump.
    assert counter_rate(2**32 - 100, 0.0, 400, 5.0, bits=32) == 100.0
    # The same numbers as a 64-bit counter are a reset, not a wrap.
    assert counter_rate(2**32 - 100, 0.0, 400, 5.0, bits=64) is None
    assert counter_rate(2**64 - 10, 0.0, 2**64 - 1, 3.0, bits=64) == 3.0


def test_counter_rate_reset_and_nonsense_are_unknown():
    # A reboot resets the counter to a small value: read as a wrap this is ~4.3 GB in 10 s,
    # which a 100 Mbit/s link (12.5 MB/s) cannot do.
    assert counter_rate(50_000, 0.0, 1_000, 10.0, bits=32, max_rate=12.5e6) is None
    assert counter_rate(50_000, 0.0, 1_000, 10.0, bits=32) is not None  # no cap: a wrap
    assert counter_rate(1, 5.0, 2, 5.0) is None  # no time passed
    assert counter_rate(1, 6.0, 2, 5.0) is None  # clock went back
    assert counter_rate(None, 0.0, 2, 5.0) is None
    assert counter_rate(1, 0.0, 2**32, 5.0, bits=32) is None  # not a 32-bit value
    with pytest.raises(ValueError):
        counter_rate(1, 0.0, 2, 1.0, bits=16)


def test_rebooted():
    assert rebooted(1000.0, 10.0)
    assert not rebooted(1000.0, 1060.0)
    assert not rebooted(None, 10.0)
    # With the interval: up 40 s but the last poll was 300 s ago, so it restarted in between.
    assert rebooted(100.0, 140.0, elapsed=300.0)
    assert not rebooted(100.0, 400.0, elapsed=300.0)
    # sysUpTime wraps after ~497 days: that is not a reboot.
    assert not rebooted(SYSUPTIME_WRAP_S - 100, 200.0, elapsed=300.0)
    assert not rebooted(SYSUPTIME_WRAP_S - 100, 200.0)


def test_enterprise_of():
    assert enterprise_of("1.3.6.1.4.1.9.1.516") == 9
    assert enterprise_of("1.3.6.1.4.1.25506.1.578") == 25506
    assert enterprise_of("1.3.6.1.2.1.1") is None


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        (SnmpCredentials.v3("u", priv_protocol="AES", priv_key="12345678"), "needs auth"),
        (SnmpCredentials.v3("u", auth_protocol="SHA", auth_key="short"), "at least 8"),
        (SnmpCredentials.v3("u", auth_protocol="SHA1024", auth_key="12345678"), "unknown"),
        (SnmpCredentials.v3(""), "user name"),
        (SnmpCredentials(version="1"), "unsupported SNMP version"),
    ],
)
def test_unusable_credentials_are_unknown_without_sending(credentials, problem):
    result = run(probe_snmp_uptime(host="127.0.0.1", credentials=credentials, port=9))
    assert result.status is ProbeStatus.UNKNOWN
    assert problem in result.message


def test_credentials_hide_secrets_and_imply_security_level():
    creds = SnmpCredentials.v3(
        "mon",
        auth_protocol="SHA-256",
        auth_key="a-secret-1",
        priv_protocol="aes256",
        priv_key="p-secret-1",
    )
    assert creds.problem() is None
    assert creds.security_level == "authPriv"
    assert "secret" not in repr(creds)
    assert "hunter2" not in repr(SnmpCredentials.v2c("hunter2"))
    assert SnmpCredentials.v3("mon").security_level == "noAuthNoPriv"


# --- v2c get and walk -------------------------------------------------------------------------


def test_v2c_get_system_group_from_recorded_cisco(snmpsim_agent):
    reply = run(
        snmp_get(
            snmpsim_agent.host,
            [SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME],
            CISCO,
            port=snmpsim_agent.port,
        )
    )
    assert reply.ok, reply.error
    assert reply.values[SYS_DESCR].startswith(b"Cisco IOS Software, C3750")
    assert reply.values[SYS_OBJECT_ID] == "1.3.6.1.4.1.9.1.516"
    assert reply.values[SYS_UPTIME] == 3896978921


def test_v2c_get_from_snmpd(snmpd_agent):
    name = "1.3.6.1.2.1.1.5.0"
    reply = run(
        snmp_get(
            snmpd_agent.host,
            [SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, name],
            SNMPD,
            port=snmpd_agent.port,
        )
    )
    assert reply.ok, reply.error
    assert reply.values[SYS_DESCR].startswith(b"Linux")
    assert reply.values[SYS_OBJECT_ID].startswith("1.3.6.1.4.1.8072.")
    assert isinstance(reply.values[SYS_UPTIME], int)
    assert reply.values[name] == b"onestop-snmpd-test"


def test_missing_object_is_absent_and_probe_oid_names_it(snmpsim_agent):
    missing = "1.3.6.1.4.1.99999.1.0"
    reply = run(snmp_get(snmpsim_agent.host, [SYS_DESCR, missing], CISCO, port=snmpsim_agent.port))
    assert reply.ok
    assert missing not in reply.values and SYS_DESCR in reply.values
    result = run(
        probe_snmp_oid(
            host=snmpsim_agent.host, credentials=CISCO, oid=missing, port=snmpsim_agent.port
        )
    )
    assert result.status is ProbeStatus.FAILED
    assert f"no such object {missing}" in result.message


def test_walk_interface_table_of_recorded_cisco(snmpsim_agent):
    reply = run(snmp_walk(snmpsim_agent.host, IF_DESCR, CISCO, port=snmpsim_agent.port))
    assert reply.ok and not reply.truncated
    assert len(reply.values) == 19
    assert reply.values[f"{IF_DESCR}.10101"] == b"GigabitEthernet1/0/1"
    assert all(oid.startswith(IF_DESCR + ".") for oid in reply.values)
    short = run(snmp_walk(snmpsim_agent.host, IF_DESCR, CISCO, port=snmpsim_agent.port, max_rows=5))
    assert short.truncated and len(short.values) == 5


def test_probe_interfaces_recorded_switch(snmpsim_agent):
    result = run(
        probe_snmp_interfaces(host=snmpsim_agent.host, credentials=HUAWEI, port=snmpsim_agent.port)
    )
    assert result.ok, result.message
    assert result.readings["snmp.if.count"] == 39
    by_name = {i.name: i for i in result.interfaces}
    gi = by_name["GigabitEthernet0/0/1"]
    assert gi.counter_bits == 64 and gi.descr == "GigabitEthernet0/0/1"
    labels = {"ifname": "GigabitEthernet0/0/1", "ifindex": str(gi.index)}
    named = {s.name for s in result.samples if s.labels == labels}
    assert {"snmp.if.oper_status", "snmp.if.in_octets", "snmp.if.in_errors"} <= named


# --- counters: 64-bit and a real 32-bit wrap ---------------------------------------------------


def test_64_bit_and_32_bit_fallback_counters(snmpsim_agent):
    result = run(
        probe_snmp_interfaces(
            host=snmpsim_agent.host, credentials=COUNTERS, port=snmpsim_agent.port
        )
    )
    assert result.ok, result.message
    fast, hc = result.interfaces
    # fast0 has no ifHC* counters: the 32-bit ifIn/OutOctets are used.
    assert (fast.name, fast.counter_bits, fast.in_errors, fast.out_errors) == ("fast0", 32, 7, 3)
    assert fast.in_octets < 2**32
    assert fast.speed_bps == 40e9  # ifHighSpeed wins over the saturated ifSpeed
    # hc0 has both: 64-bit values above 2**63 arrive intact (Counter64, not a signed int).
    assert (hc.name, hc.counter_bits) == ("hc0", 64)
    assert hc.out_octets == 2**64 - 1
    assert hc.in_octets > 2**63
    assert (hc.oper_status, result.readings["snmp.if.down_count"]) == (2, 1)


def test_64_bit_counter_rate_between_two_polls(snmpsim_agent):
    async def two_polls():
        first = await probe_snmp_interfaces(
            host=snmpsim_agent.host, credentials=COUNTERS, port=snmpsim_agent.port
        )
        t1 = time.time()
        await asyncio.sleep(1.0)
        second = await probe_snmp_interfaces(
            host=snmpsim_agent.host, credentials=COUNTERS, port=snmpsim_agent.port
        )
        return first.interfaces[1], t1, second.interfaces[1], time.time()

    old, t1, new, t2 = run(two_polls())
    rate = counter_rate(old.in_octets, t1, new.in_octets, t2, bits=64)
    assert rate == pytest.approx(1e6, rel=0.25)  # the recording counts 1 MB/s


def test_32_bit_counter_wraps_between_polls(snmpsim_agent):
    """ifInOctets.1 counts 2 GB/s, so the 32-bit counter wraps every ~2 s: poll until it does."""

    async def poll_until_wrap():
        previous, previous_time = None, 0.0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            result = await probe_snmp_interfaces(
                host=snmpsim_agent.host, credentials=COUNTERS, port=snmpsim_agent.port
            )
            now = time.time()
            current = result.interfaces[0]
            if previous is not None and current.in_octets < previous.in_octets:
                return previous, previous_time, current, now
            previous, previous_time = current, now
            await asyncio.sleep(0.3)
        pytest.fail("the 32-bit counter never wrapped")

    old, t1, new, t2 = run(poll_until_wrap())
    assert new.counter_bits == 32
    rate = counter_rate(old.in_octets, t1, new.in_octets, t2, bits=32)
    assert rate == pytest.approx(2e9, rel=0.25)
    samples = {s.name: s for s in interface_rates(old, t1, new, t2)}
    assert samples["snmp.if.in_bps"].value == pytest.approx(16e9, rel=0.25)
    assert samples["snmp.if.in_bps"].labels == {"ifname": "fast0", "ifindex": "1"}
    assert samples["snmp.if.in_errors_ps"].value == 0


# --- uptime ---------------------------------------------------------------------------------


def test_uptime_and_reboot_detection(snmpsim_agent, snmpd_agent):
    cisco = run(
        probe_snmp_uptime(
            host=snmpsim_agent.host,
            credentials=CISCO,
            port=snmpsim_agent.port,
            previous_uptime_s=38_000_000,
        )
    )
    assert cisco.ok
    assert cisco.readings == {"snmp.uptime_s": 38969789.21, "snmp.rebooted": 0.0}
    assert cisco.message.startswith("DUMSYS-90: up 451d")
    host = run(
        probe_snmp_uptime(
            host=snmpd_agent.host,
            credentials=SNMPD,
            port=snmpd_agent.port,
            previous_uptime_s=86_400,
        )
    )
    assert host.ok
    assert host.readings["snmp.rebooted"] == 1.0  # snmpd started seconds ago
    assert host.readings["snmp.host_uptime_s"] >= host.readings["snmp.uptime_s"]
    assert "rebooted" in host.message


# --- SNMPv3 ---------------------------------------------------------------------------------


def test_v3_auth_priv_sha_aes(snmpsim_agent, snmpd_agent):
    async def both():
        sim = await snmp_get(
            snmpsim_agent.host,
            [SYS_DESCR],
            snmpsim_agent.v3(context="cisco-c3750"),
            port=snmpsim_agent.port,
        )
        real = await snmp_get(
            snmpd_agent.host, [SYS_DESCR], snmpd_agent.v3(), port=snmpd_agent.port
        )
        return sim, real

    sim, real = run(both())
    assert sim.ok, sim.error
    assert sim.values[SYS_DESCR].startswith(b"Cisco IOS")
    assert real.ok, real.error
    assert real.values[SYS_DESCR].startswith(b"Linux")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"auth_key": "wrong-auth-key"}, "authentication failed"),
        ({"user": "no-such-user"}, "does not know this SNMPv3 user"),
        ({"priv_key": "wrong-priv-key"}, "decryption failed"),
    ],
)
def test_v3_wrong_credentials_fail_clearly_after_a_good_request(snmpsim_agent, overrides, expected):
    """A good request first: the engine must not keep using the keys that worked."""

    async def good_then_bad():
        good = await snmp_get(
            snmpsim_agent.host,
            [SYS_DESCR],
            snmpsim_agent.v3(context="cisco-c3750"),
            port=snmpsim_agent.port,
            timeout=1,
            retries=0,
        )
        bad = await snmp_get(
            snmpsim_agent.host,
            [SYS_DESCR],
            snmpsim_agent.v3(context="cisco-c3750", **overrides),
            port=snmpsim_agent.port,
            timeout=1,
            retries=0,
        )
        return good, bad

    started = time.monotonic()
    good, bad = run(good_then_bad())
    assert good.ok, good.error
    assert bad.status is ProbeStatus.FAILED
    assert expected in str(bad.error)
    assert time.monotonic() - started < 5


def test_v3_wrong_keys_against_snmpd(snmpd_agent):
    async def attempts():
        wrong_auth = await probe_snmp_uptime(
            host=snmpd_agent.host,
            credentials=snmpd_agent.v3(auth_key="wrong-auth-key"),
            port=snmpd_agent.port,
            timeout=1,
            retries=0,
        )
        # net-snmp silently drops what it cannot decrypt: a timeout, whose message says so.
        wrong_priv = await probe_snmp_uptime(
            host=snmpd_agent.host,
            credentials=snmpd_agent.v3(priv_key="wrong-priv-key"),
            port=snmpd_agent.port,
            timeout=1,
            retries=0,
        )
        good = await probe_snmp_uptime(
            host=snmpd_agent.host,
            credentials=snmpd_agent.v3(),
            port=snmpd_agent.port,
            timeout=1,
            retries=0,
        )
        return wrong_auth, wrong_priv, good

    wrong_auth, wrong_priv, good = run(attempts())
    assert wrong_auth.status is ProbeStatus.FAILED
    assert "authentication failed" in wrong_auth.message
    assert wrong_priv.status is ProbeStatus.UNREACHABLE
    assert "privacy key" in wrong_priv.message
    assert wrong_priv.duration_ms < 4000
    assert good.ok, good.message


# --- no agent, garbage ------------------------------------------------------------------------


def test_no_agent_times_out_within_the_timeout():
    port = free_udp_port()
    started = time.monotonic()
    result = run(
        probe_snmp_uptime(host="127.0.0.1", credentials=COUNTERS, port=port, timeout=0.5, retries=1)
    )
    elapsed = time.monotonic() - started
    assert result.status is ProbeStatus.UNREACHABLE
    assert "no SNMP answer" in result.message and "tries: 2" in result.message
    assert 0.9 <= elapsed < 3.0
    v3 = run(
        snmp_get(
            "127.0.0.1",
            [SYS_DESCR],
            SnmpCredentials.v3("u", auth_protocol="SHA", auth_key="12345678"),
            port=port,
            timeout=0.5,
            retries=0,
        )
    )
    assert v3.status is ProbeStatus.UNREACHABLE


def test_wrong_community_and_garbage_answers_do_not_raise(snmpsim_agent):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(0.2)
        port = server.getsockname()[1]
        done = threading.Event()

        def answer_garbage():
            # Every request gets a short, malformed BER message back.
            while not done.is_set():
                try:
                    _, peer = server.recvfrom(4096)
                except OSError:
                    continue
                server.sendto(b"\x30\x03\x02\x01garbage", peer)

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        try:
            garbage = run(
                probe_snmp_oid(
                    host="127.0.0.1",
                    credentials=COUNTERS,
                    oid=SYS_DESCR,
                    port=port,
                    timeout=0.5,
                    retries=1,
                )
            )
        finally:
            done.set()
            thread.join(timeout=5)
    assert not garbage.ok and garbage.message
    wrong = run(
        snmp_get(
            snmpsim_agent.host,
            [SYS_DESCR],
            SnmpCredentials.v2c("no-such-recording"),
            port=snmpsim_agent.port,
            timeout=0.5,
            retries=0,
        )
    )
    assert wrong.status is ProbeStatus.UNREACHABLE and "community" in str(wrong.error)


# --- CPU and memory ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "source", "cpu", "memory"),
    [
        (CISCO, "Cisco", 29.0, 41.88),  # cpmCPUTotal5minRev, Processor memory pool
        (HUAWEI, "Huawei", 38.0, 7.0),  # hwEntityCpuUsage / hwEntityMemUsage of the MPU
        (H3C, "H3C", None, 55.0),  # the recording varies CPU randomly (numeric module)
    ],
)
def test_cpu_memory_from_vendor_recordings(snmpsim_agent, credentials, source, cpu, memory):
    result = run(
        probe_snmp_cpu_memory(
            host=snmpsim_agent.host, credentials=credentials, port=snmpsim_agent.port
        )
    )
    assert result.ok, result.message
    assert f"cpu {result.readings['snmp.cpu_pct']:.0f} % ({source})" in result.message
    assert f"({source})" in result.message.split("memory")[1]
    if cpu is not None:
        assert result.readings["snmp.cpu_pct"] == cpu
    assert 0 <= result.readings["snmp.cpu_pct"] <= 100
    assert result.readings["snmp.mem_used_pct"] == memory


def test_cisco_memory_is_the_processor_pool(snmpsim_agent):
    result = run(
        probe_snmp_cpu_memory(host=snmpsim_agent.host, credentials=CISCO, port=snmpsim_agent.port)
    )
    # ciscoMemoryPoolUsed.1 / (Used.1 + Free.1) from the recording.
    assert result.readings["snmp.mem_used_bytes"] == 33385580
    assert result.readings["snmp.mem_total_bytes"] == 33385580 + 46331200


def test_cpu_memory_from_snmpd(snmpd_agent):
    result = run(
        probe_snmp_cpu_memory(
            host=snmpd_agent.host, credentials=SNMPD, port=snmpd_agent.port, cpu_sample_s=8
        )
    )
    assert result.ok, result.message
    assert 0 <= result.readings["snmp.cpu_pct"] <= 100
    assert "(UCD-SNMP)" in result.message or "(HOST-RESOURCES)" in result.message
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    assert result.readings["snmp.mem_total_bytes"] == pytest.approx(total_kib * 1024, rel=0.01)
    assert 0 < result.readings["snmp.mem_used_pct"] < 100


def test_probe_oid_number_and_string_match(snmpsim_agent):
    async def checks():
        number = await probe_snmp_oid(
            host=snmpsim_agent.host,
            credentials=COUNTERS,
            oid=".1.3.6.1.2.1.2.1.0",
            port=snmpsim_agent.port,
            reading="snmp.if_number",
        )
        match = await probe_snmp_oid(
            host=snmpsim_agent.host,
            credentials=CISCO,
            oid=SYS_DESCR,
            port=snmpsim_agent.port,
            expect="C3750",
        )
        mismatch = await probe_snmp_oid(
            host=snmpsim_agent.host,
            credentials=CISCO,
            oid=SYS_DESCR,
            port=snmpsim_agent.port,
            expect="Huawei",
        )
        return number, match, mismatch

    number, match, mismatch = run(checks())
    assert number.ok and number.readings == {"snmp.if_number": 2.0}
    assert match.ok and match.readings == {"snmp.match": 1.0}
    assert mismatch.status is ProbeStatus.FAILED and mismatch.readings == {"snmp.match": 0.0}
    assert "does not contain 'Huawei'" in mismatch.message
    bad = run(probe_snmp_oid(host="127.0.0.1", credentials=COUNTERS, oid="not.an.oid", port=9))
    assert bad.status is ProbeStatus.UNKNOWN
