"""SNMP v2c/v3 polling: uptime and reboots, interface counters, CPU/memory, any OID.

Built on pysnmp's asyncio API with one shared ``SnmpEngine`` per process (per event loop, which
is the same thing in the poller): an engine owns a UDP socket, USM tables and MIB state, so one
per request would waste sockets and time. Nothing here raises for network trouble: timeouts,
refused credentials, garbage and missing objects come back as an `SnmpReply.error` or a
`ProbeResult` with a clear message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyasn1.type import univ
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CBC168_3DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    USM_PRIV_NONE,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905

from .base import (
    METRIC_NAME_RE,
    NO_NOTE,
    Note,
    ProbeResult,
    ProbeStatus,
    elapsed_ms,
    finished,
    note,
    notes_joined,
    verbatim,
)

log = logging.getLogger(__name__)

# --- OIDs (numeric, so no MIB files have to be loaded or compiled) -------------------------

SYS_DESCR = "1.3.6.1.2.1.1.1.0"  # SNMPv2-MIB::sysDescr.0
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"  # SNMPv2-MIB::sysObjectID.0
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"  # SNMPv2-MIB::sysUpTime.0 (agent uptime, TimeTicks)
SYS_NAME = "1.3.6.1.2.1.1.5.0"  # SNMPv2-MIB::sysName.0
HR_SYSTEM_UPTIME = "1.3.6.1.2.1.25.1.1.0"  # HOST-RESOURCES-MIB::hrSystemUptime.0 (host uptime)

# IF-MIB::ifTable columns
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"  # ifDescr
IF_SPEED = "1.3.6.1.2.1.2.2.1.5"  # ifSpeed (bit/s, Gauge32, saturates at 4.29 Gbit/s)
IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"  # ifAdminStatus (1 up, 2 down, 3 testing)
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"  # ifOperStatus (1 up, 2 down, ... 7 lowerLayerDown)
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"  # ifInOctets (Counter32)
IF_IN_ERRORS = "1.3.6.1.2.1.2.2.1.14"  # ifInErrors (Counter32)
IF_OUT_OCTETS = "1.3.6.1.2.1.2.2.1.16"  # ifOutOctets (Counter32)
IF_OUT_ERRORS = "1.3.6.1.2.1.2.2.1.20"  # ifOutErrors (Counter32)
# IF-MIB::ifXTable columns
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"  # ifName
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"  # ifHCInOctets (Counter64)
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"  # ifHCOutOctets (Counter64)
IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"  # ifHighSpeed (Mbit/s)

# HOST-RESOURCES-MIB
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"  # hrProcessorLoad (% per CPU, 1-minute average)
HR_STORAGE_TYPE = "1.3.6.1.2.1.25.2.3.1.2"  # hrStorageType
HR_STORAGE_UNITS = "1.3.6.1.2.1.25.2.3.1.4"  # hrStorageAllocationUnits (bytes)
HR_STORAGE_SIZE = "1.3.6.1.2.1.25.2.3.1.5"  # hrStorageSize (units)
HR_STORAGE_USED = "1.3.6.1.2.1.25.2.3.1.6"  # hrStorageUsed (units)
HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"  # HOST-RESOURCES-TYPES::hrStorageRam
# UCD-SNMP-MIB (net-snmp)
UCD_SS_CPU_IDLE = "1.3.6.1.4.1.2021.11.11.0"  # ssCpuIdle (% idle)
# UCD-SNMP-MIB raw CPU tick counters (Counter32), for agents that started less than a minute
# ago: net-snmp only fills ssCpuIdle and hrProcessorLoad after a minute of samples.
UCD_CPU_RAW_BUSY = (
    "1.3.6.1.4.1.2021.11.50.0",  # ssCpuRawUser
    "1.3.6.1.4.1.2021.11.51.0",  # ssCpuRawNice
    "1.3.6.1.4.1.2021.11.52.0",  # ssCpuRawSystem (on Linux includes irq and softirq)
    "1.3.6.1.4.1.2021.11.64.0",  # ssCpuRawSteal
)
UCD_CPU_RAW_IDLE = (
    "1.3.6.1.4.1.2021.11.53.0",  # ssCpuRawIdle
    "1.3.6.1.4.1.2021.11.54.0",  # ssCpuRawWait (iowait: waiting, not busy)
)
UCD_MEM_TOTAL_REAL = "1.3.6.1.4.1.2021.4.5.0"  # memTotalReal (KiB)
UCD_MEM_AVAIL_REAL = "1.3.6.1.4.1.2021.4.6.0"  # memAvailReal (KiB, i.e. MemFree)
UCD_MEM_BUFFER = "1.3.6.1.4.1.2021.4.14.0"  # memBuffer (KiB)
UCD_MEM_CACHED = "1.3.6.1.4.1.2021.4.15.0"  # memCached (KiB)
# Cisco
CISCO_CPU_5MIN_REV = "1.3.6.1.4.1.9.9.109.1.1.1.1.8"  # CISCO-PROCESS-MIB::cpmCPUTotal5minRev
CISCO_CPU_5MIN = "1.3.6.1.4.1.9.9.109.1.1.1.1.5"  # CISCO-PROCESS-MIB::cpmCPUTotal5min (old IOS)
CISCO_CPU_MEM_USED = "1.3.6.1.4.1.9.9.109.1.1.1.1.12"  # cpmCPUMemoryUsed (KiB, NX-OS)
CISCO_CPU_MEM_FREE = "1.3.6.1.4.1.9.9.109.1.1.1.1.13"  # cpmCPUMemoryFree (KiB, NX-OS)
CISCO_MEM_POOL_NAME = "1.3.6.1.4.1.9.9.48.1.1.1.2"  # CISCO-MEMORY-POOL-MIB::ciscoMemoryPoolName
CISCO_MEM_POOL_USED = "1.3.6.1.4.1.9.9.48.1.1.1.5"  # ciscoMemoryPoolUsed (bytes)
CISCO_MEM_POOL_FREE = "1.3.6.1.4.1.9.9.48.1.1.1.6"  # ciscoMemoryPoolFree (bytes)
# Huawei HUAWEI-ENTITY-EXTENT-MIB (per entPhysicalIndex; boards without a CPU report 0)
HUAWEI_CPU_USAGE = "1.3.6.1.4.1.2011.5.25.31.1.1.1.1.5"  # hwEntityCpuUsage (%)
HUAWEI_MEM_USAGE = "1.3.6.1.4.1.2011.5.25.31.1.1.1.1.7"  # hwEntityMemUsage (%)
# H3C HH3C-ENTITY-EXT-MIB (per entPhysicalIndex; boards without a CPU report 0)
H3C_CPU_USAGE = "1.3.6.1.4.1.25506.2.6.1.1.1.1.6"  # hh3cEntityExtCpuUsage (%)
H3C_MEM_USAGE = "1.3.6.1.4.1.25506.2.6.1.1.1.1.8"  # hh3cEntityExtMemUsage (%)

ENTERPRISES = "1.3.6.1.4.1."
ENTERPRISE_CISCO = 9
ENTERPRISE_HUAWEI = 2011
ENTERPRISE_H3C = 25506
ENTERPRISE_NET_SNMP = 8072

# sysUpTime is TimeTicks (1/100 s, 32 bits): it wraps to 0 after about 497 days.
SYSUPTIME_WRAP_S = 2**32 / 100

# --- credentials ---------------------------------------------------------------------------

AUTH_PROTOCOLS = {
    "MD5": USM_AUTH_HMAC96_MD5,
    "SHA": USM_AUTH_HMAC96_SHA,
    "SHA224": USM_AUTH_HMAC128_SHA224,
    "SHA256": USM_AUTH_HMAC192_SHA256,
    "SHA384": USM_AUTH_HMAC256_SHA384,
    "SHA512": USM_AUTH_HMAC384_SHA512,
}
# Names follow net-snmp: AES192/AES256 localize keys per the Blumenthal draft (net-snmp and
# most vendors); the "C" variants use Reeder's extension, which Cisco IOS speaks.
PRIV_PROTOCOLS = {
    "DES": USM_PRIV_CBC56_DES,
    "3DES": USM_PRIV_CBC168_3DES,
    "AES": USM_PRIV_CFB128_AES,
    "AES128": USM_PRIV_CFB128_AES,
    "AES192": USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES192C": USM_PRIV_CFB192_AES,
    "AES256C": USM_PRIV_CFB256_AES,
}
SECURITY_LEVELS = ("noAuthNoPriv", "authNoPriv", "authPriv")


def _protocol_key(name: str) -> str:
    return name.upper().replace("-", "").replace("_", "")


@dataclass(frozen=True)
class SnmpCredentials:
    """How to talk to one agent: v2c with a community, or v3 USM.

    For v3 the security level is implied by the protocols given (no auth protocol:
    noAuthNoPriv; auth only: authNoPriv; both: authPriv), so it cannot contradict them.
    `context` is the v3 context name (some agents, and snmpsim, select a view by it).
    Secrets are kept out of repr() so they never reach a log line.
    """

    version: str = "2c"
    community: str = field(default="public", repr=False)
    user: str = ""
    auth_protocol: str = ""
    auth_key: str = field(default="", repr=False)
    priv_protocol: str = ""
    priv_key: str = field(default="", repr=False)
    context: str = ""

    @classmethod
    def v2c(cls, community: str) -> SnmpCredentials:
        return cls(version="2c", community=community)

    @classmethod
    def v3(
        cls,
        user: str,
        *,
        auth_protocol: str = "",
        auth_key: str = "",
        priv_protocol: str = "",
        priv_key: str = "",
        context: str = "",
    ) -> SnmpCredentials:
        return cls(
            version="3",
            user=user,
            auth_protocol=auth_protocol,
            auth_key=auth_key,
            priv_protocol=priv_protocol,
            priv_key=priv_key,
            context=context,
        )

    @property
    def security_level(self) -> str:
        if self.version != "3" or not self.auth_protocol:
            return "noAuthNoPriv"
        return "authPriv" if self.priv_protocol else "authNoPriv"

    def problem(self) -> Note | None:
        """Why these credentials cannot work, or None; checked before anything is sent."""
        if self.version not in ("2c", "3"):
            return note(
                "unsupported SNMP version {version} (use 2c or 3)", version=repr(self.version)
            )
        if self.version == "2c":
            return None if self.community else note("SNMP v2c needs a community")
        if not self.user:
            return note("SNMPv3 needs a user name")
        if self.auth_protocol and _protocol_key(self.auth_protocol) not in AUTH_PROTOCOLS:
            return note("unknown SNMPv3 auth protocol {name}", name=repr(self.auth_protocol))
        if self.priv_protocol and _protocol_key(self.priv_protocol) not in PRIV_PROTOCOLS:
            return note("unknown SNMPv3 privacy protocol {name}", name=repr(self.priv_protocol))
        if self.priv_protocol and not self.auth_protocol:
            return note("SNMPv3 privacy needs authentication too")
        # RFC 3414 requires pass phrases of 8+ characters; pysnmp would fail deep inside.
        if self.auth_protocol and len(self.auth_key) < 8:
            return note("SNMPv3 auth key must be at least 8 characters")
        if self.priv_protocol and len(self.priv_key) < 8:
            return note("SNMPv3 privacy key must be at least 8 characters")
        return None

    def auth_protocol_id(self) -> tuple:
        """pysnmp's identifier of the v3 authentication protocol (none when not set)."""
        if not self.auth_protocol:
            return USM_AUTH_NONE
        return AUTH_PROTOCOLS[_protocol_key(self.auth_protocol)]

    def priv_protocol_id(self) -> tuple:
        """pysnmp's identifier of the v3 privacy protocol (none when not set)."""
        if not self.priv_protocol:
            return USM_PRIV_NONE
        return PRIV_PROTOCOLS[_protocol_key(self.priv_protocol)]

    def _auth_data(self, engine_id: bytes | None) -> CommunityData | UsmUserData:
        if self.version == "2c":
            # v2c is insecure but it is what most managed devices speak; v3 is offered too.
            return CommunityData(self.community, mpModel=1)  # noqa: S508
        auth = AUTH_PROTOCOLS[_protocol_key(self.auth_protocol)] if self.auth_protocol else None
        priv = PRIV_PROTOCOLS[_protocol_key(self.priv_protocol)] if self.priv_protocol else None
        return UsmUserData(
            self.user,
            authKey=self.auth_key or None,
            privKey=self.priv_key or None,
            authProtocol=auth or USM_AUTH_NONE,
            privProtocol=priv or USM_PRIV_NONE,
            # Keyed by the agent's engine ID, the user entry is this agent's alone: two devices
            # with the same user name but different keys never overwrite each other's keys.
            securityEngineId=univ.OctetString(engine_id) if engine_id else None,
        )


# --- the shared engine ---------------------------------------------------------------------


@dataclass
class _EngineState:
    engine: SnmpEngine
    loop: asyncio.AbstractEventLoop
    # (ip, port) -> the agent's snmpEngineID, learnt from its discovery report.
    engine_ids: dict[tuple[str, int], bytes] = field(default_factory=dict)


_state: _EngineState | None = None


def _on_incoming(_engine: Any, _point: str, variables: Mapping[str, Any], ids: dict) -> None:
    engine_id = variables.get("securityEngineId")
    address = variables.get("transportAddress")
    if engine_id and address:
        ids[(str(address[0]), int(address[1]))] = bytes(engine_id)


def _engine_state() -> _EngineState:
    """The process's SnmpEngine, created on first use inside the running loop.

    An engine's transport is bound to the loop it was created in; if that loop is gone (each
    asyncio.run() in tests makes a new one) a new engine replaces it.
    """
    global _state
    loop = asyncio.get_running_loop()
    if _state is not None and _state.loop is loop:
        return _state
    if _state is not None:
        with contextlib.suppress(Exception):
            _state.engine.close_dispatcher()
    engine = SnmpEngine()
    state = _EngineState(engine=engine, loop=loop)
    engine.observer.register_observer(
        _on_incoming, "rfc3412.prepareDataElements:internal", cbCtx=state.engine_ids
    )
    _state = state
    return state


def snmp_engine() -> SnmpEngine:
    """The shared engine (call from inside the event loop)."""
    return _engine_state().engine


# --- low-level requests --------------------------------------------------------------------

SnmpValue = int | str | bytes | None


@dataclass(frozen=True)
class SnmpReply:
    """What a get or walk returned: OID -> value, or an error saying why not.

    Values are plain Python: int for every integer type (Counter32/64, Gauge32, TimeTicks),
    bytes for OCTET STRING (see `as_text`), dotted str for OBJECT IDENTIFIER and IpAddress.
    An OID the agent does not have (noSuchObject/noSuchInstance) is absent from `values`.
    `status` is OK, UNREACHABLE (no answer), FAILED (answered with an error: bad credentials,
    SNMP error status) or UNKNOWN (our configuration is unusable).
    """

    values: dict[str, SnmpValue]
    status: ProbeStatus = ProbeStatus.OK
    error: Note | None = None
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status is ProbeStatus.OK


def as_text(value: SnmpValue) -> str:
    """A DisplayString as text: UTF-8 where valid, else Latin-1 (never fails)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
        return text.rstrip("\x00").strip()
    return str(value)


def _convert(value: Any) -> SnmpValue:
    if isinstance(value, rfc1902.IpAddress):  # an OctetString subclass: test it first
        return ".".join(str(b) for b in value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    return None


def _is_missing(value: Any) -> bool:
    return isinstance(
        value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | rfc1905.EndOfMibView | univ.Null
    )


_AUTH_FAILED = note("SNMPv3 authentication failed (wrong auth key or protocol)")
_ERROR_MESSAGES: dict[type, Note] = {
    errind.UnknownUserName: note("the agent does not know this SNMPv3 user"),
    errind.WrongDigest: _AUTH_FAILED,
    errind.AuthenticationFailure: _AUTH_FAILED,
    errind.AuthenticationError: _AUTH_FAILED,
    errind.DecryptionError: note("SNMPv3 decryption failed (wrong privacy key or protocol)"),
    errind.UnsupportedSecurityLevel: note("the agent refuses this SNMPv3 security level"),
    errind.NotInTimeWindow: note("SNMPv3 time window mismatch (agent clock or boots changed)"),
    errind.UnknownEngineID: note("the agent rejected our idea of its SNMPv3 engine ID"),
    errind.UnknownCommunityName: note("the agent rejected the community"),
}


def _describe_indication(
    indication: Any, target: str, timeout: float, retries: int, version: str = "2c"
) -> tuple[ProbeStatus, Note]:
    if isinstance(indication, errind.RequestTimedOut):
        # v2c agents drop a wrong community silently; many v3 agents (net-snmp) drop what they
        # cannot decrypt, so a wrong privacy key also looks like silence.
        hint = (
            note("agent down, ACL, wrong port or wrong privacy key/protocol")
            if version == "3"
            else note("agent down, ACL, wrong port or wrong community")
        )
        return (
            ProbeStatus.UNREACHABLE,
            note(
                "no SNMP answer from {target} within {timeout:g} s (tries: {tries}; {hint})",
                target=target,
                timeout=timeout,
                tries=retries + 1,
                hint=hint,
            ),
        )
    for kind, text in _ERROR_MESSAGES.items():
        if isinstance(indication, kind):
            return ProbeStatus.FAILED, note("{reason} ({target})", reason=text, target=target)
    return ProbeStatus.FAILED, note(
        "SNMP error from {target}: {error}", target=target, error=str(indication)
    )


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    credentials: SnmpCredentials
    timeout: float
    retries: int

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def budget(self) -> float:
        """A hard ceiling for one request, so a misbehaving library can never hang a probe."""
        return self.timeout * (self.retries + 1) + 2.0


async def _transport(target: _Target) -> UdpTransportTarget | Udp6TransportTarget:
    kind = Udp6TransportTarget if ":" in target.host else UdpTransportTarget
    return await kind.create(
        (target.host, target.port), timeout=target.timeout, retries=target.retries
    )


async def _engine_id(state: _EngineState, target: _Target, transport: Any) -> bytes | None:
    """The agent's snmpEngineID (RFC 3414 discovery), cached per address for the process."""
    address = (str(transport.transport_address[0]), int(transport.transport_address[1]))
    if address in state.engine_ids:
        return state.engine_ids[address]
    # A throw-away unauthenticated request: the agent's reports reveal its engine ID (observed
    # by _on_incoming) and the request itself is expected to fail with unknownUserName.
    await get_cmd(
        state.engine,
        UsmUserData("onestop-discovery"),  # noqa: S509 - discovery is unauthenticated (RFC 3414 §4)
        transport,
        ContextData(),
        ObjectType(ObjectIdentity(SYS_UPTIME)),
        lookupMib=False,
    )
    return state.engine_ids.get(address)


async def _send(target: _Target, oids: Sequence[str], bulk: int = 0) -> tuple:
    """One GET (bulk=0) or GETBULK (max-repetitions=bulk) round trip.

    Returns (status, error, varbinds) where varbinds are (oid str, raw value).
    """
    problem = target.credentials.problem()
    if problem:
        return ProbeStatus.UNKNOWN, problem, []
    state = _engine_state()
    try:
        async with asyncio.timeout(target.budget * (2 if target.credentials.version == "3" else 1)):
            transport = await _transport(target)
            engine_id = None
            if target.credentials.version == "3":
                engine_id = await _engine_id(state, target, transport)
                if engine_id is None:
                    indication = errind.requestTimedOut
                    status, error = _describe_indication(
                        indication, target.label, target.timeout, target.retries, "3"
                    )
                    return status, error, []
            auth = target.credentials._auth_data(engine_id)
            context = ContextData(contextName=target.credentials.context.encode())
            objects = [ObjectType(ObjectIdentity(oid)) for oid in oids]
            if bulk:
                answer = await bulk_cmd(
                    state.engine, auth, transport, context, 0, bulk, *objects, lookupMib=False
                )
            else:
                answer = await get_cmd(
                    state.engine, auth, transport, context, *objects, lookupMib=False
                )
    except TimeoutError:
        return (
            ProbeStatus.UNREACHABLE,
            note(
                "no SNMP answer from {target} within {timeout:g} s",
                target=target.label,
                timeout=target.budget,
            ),
            [],
        )
    except Exception as exc:  # pysnmp raises many types (bad host name, garbage, ASN.1)
        log.debug("snmp request to %s failed", target.label, exc_info=True)
        return (
            ProbeStatus.FAILED,
            note("SNMP request to {target} failed: {error}", target=target.label, error=str(exc)),
            [],
        )
    indication, error_status, error_index, varbinds = answer
    if indication:
        if target.credentials.version == "3":
            # The agent may have been replaced or re-keyed: rediscover on the next request.
            state.engine_ids.pop(
                (str(transport.transport_address[0]), int(transport.transport_address[1])), None
            )
        status, error = _describe_indication(
            indication,
            target.label,
            target.timeout,
            target.retries,
            target.credentials.version,
        )
        return status, error, []
    if error_status:
        error = error_status.prettyPrint()
        if error_index and int(error_index) <= len(oids):
            error += f" @ {oids[int(error_index) - 1]}"
        return (
            ProbeStatus.FAILED,
            note("SNMP error from {target}: {error}", target=target.label, error=error),
            [],
        )
    return ProbeStatus.OK, None, [(str(name), value) for name, value in varbinds]


async def snmp_get(
    host: str,
    oids: Iterable[str],
    credentials: SnmpCredentials,
    *,
    port: int = 161,
    timeout: float = 2.0,
    retries: int = 1,
) -> SnmpReply:
    """GET the given OIDs in one request; missing objects are simply absent from `values`."""
    wanted = [_clean_oid(oid) for oid in oids]
    target = _Target(host, port, credentials, timeout, retries)
    status, error, varbinds = await _send(target, wanted)
    if status is not ProbeStatus.OK:
        return SnmpReply({}, status, error)
    values = {oid: _convert(value) for oid, value in varbinds if not _is_missing(value)}
    return SnmpReply(values)


async def snmp_walk(
    host: str,
    root: str,
    credentials: SnmpCredentials,
    *,
    port: int = 161,
    timeout: float = 2.0,
    retries: int = 1,
    max_rows: int = 2000,
    max_repetitions: int = 25,
) -> SnmpReply:
    """GETBULK-walk the subtree under `root`, at most `max_rows` objects (then `truncated`).

    Stops at the end of the subtree or the MIB, and on an agent that returns non-increasing
    OIDs (a known firmware bug that would otherwise loop forever).
    """
    root = _clean_oid(root)
    root_tuple = _oid_tuple(root)
    target = _Target(host, port, credentials, timeout, retries)
    values: dict[str, SnmpValue] = {}
    cursor = root
    while len(values) < max_rows:
        status, error, varbinds = await _send(
            target, [cursor], bulk=min(max_repetitions, max_rows - len(values))
        )
        if status is not ProbeStatus.OK:
            # Rows already read are kept: a walk that broke halfway still says something.
            return SnmpReply(values, status, error)
        if not varbinds:
            return SnmpReply(values)
        for oid, value in varbinds:
            oid_tuple = _oid_tuple(oid)
            if oid_tuple[: len(root_tuple)] != root_tuple or isinstance(
                value, rfc1905.EndOfMibView
            ):
                return SnmpReply(values)
            if oid_tuple <= _oid_tuple(cursor):
                return SnmpReply(
                    values,
                    ProbeStatus.FAILED,
                    note(
                        "agent {target} returned a non-increasing OID {oid} after {previous}",
                        target=target.label,
                        oid=oid,
                        previous=cursor,
                    ),
                )
            cursor = oid
            if not _is_missing(value):
                values[oid] = _convert(value)
            if len(values) >= max_rows:
                break
    return SnmpReply(values, truncated=True)


def _clean_oid(oid: str) -> str:
    oid = oid.strip().lstrip(".")
    _oid_tuple(oid)  # a malformed OID is a programming/configuration error: fail loudly
    return oid


def _oid_tuple(oid: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(part) for part in oid.split("."))
    except ValueError:
        raise ValueError(f"not a numeric OID: {oid!r}") from None
    if len(parts) < 2 or any(part < 0 for part in parts):
        raise ValueError(f"not a numeric OID: {oid!r}")
    return parts


def _column(values: Mapping[str, SnmpValue], column: str) -> dict[str, SnmpValue]:
    """A walked table column as row index (the OID suffix) -> value."""
    prefix = column + "."
    return {oid[len(prefix) :]: v for oid, v in values.items() if oid.startswith(prefix)}


# --- pure helpers --------------------------------------------------------------------------


def counter_rate(
    previous_value: int | None,
    previous_time: float | None,
    value: int | None,
    time: float | None,
    *,
    bits: int = 32,
    max_rate: float | None = None,
) -> float | None:
    """Per-second rate between two readings of a 32- or 64-bit SNMP counter, or None.

    A value lower than the previous one is read as exactly one wrap (modulo 2**bits). None
    (unknown, not a huge number) when the rate cannot be trusted: a missing reading, time not
    moving forward, a value outside the counter's range, a rate above `max_rate` (pass the
    link speed: a "wrap" implying more is really a counter reset or a device reboot), or a
    64-bit counter going backwards (it cannot wrap in practice: 2**64 bytes at 100 Gbit/s
    takes 46 years, so it was reset). A 32-bit reset without `max_rate` is indistinguishable
    from a wrap; combine with `rebooted()` where a reboot is possible.
    """
    if bits not in (32, 64):
        raise ValueError("bits must be 32 or 64")
    if None in (previous_value, previous_time, value, time):
        return None
    modulus = 2**bits
    if not (0 <= previous_value < modulus and 0 <= value < modulus):
        return None
    elapsed = time - previous_time
    if elapsed <= 0:
        return None
    if value >= previous_value:
        delta = value - previous_value
    elif bits == 64:
        return None
    else:
        delta = value + modulus - previous_value
    rate = delta / elapsed
    if max_rate is not None and rate > max_rate:
        return None
    return rate


def rebooted(
    previous: float | None,
    current: float | None,
    *,
    elapsed: float | None = None,
    slack: float = 30.0,
) -> bool:
    """Whether the agent restarted between two uptime readings (seconds).

    With `elapsed` (seconds between the two polls) an uptime shorter than that interval means
    a restart in between, even if it is already past the previous value. Without it, uptime
    going backwards does. Either way sysUpTime's own wrap after ~497 days is not a reboot.
    sysUpTime counts from the SNMP agent's start, so an agent restart also counts as one.
    """
    if previous is None or current is None:
        return False
    if elapsed is not None:
        if current + slack >= elapsed:
            return False
        # Booted since the last poll, unless the TimeTicks counter simply wrapped.
        expected = previous + elapsed
        return not (
            expected >= SYSUPTIME_WRAP_S
            and abs(expected - SYSUPTIME_WRAP_S - current) <= slack + elapsed * 0.01
        )
    if current >= previous:
        return False
    return previous < SYSUPTIME_WRAP_S - 86_400  # within a day of the wrap: assume the wrap


# --- probes --------------------------------------------------------------------------------


async def probe_snmp_uptime(
    *,
    host: str,
    credentials: SnmpCredentials,
    port: int = 161,
    timeout: float = 2.0,
    retries: int = 1,
    previous_uptime_s: float | None = None,
    elapsed_s: float | None = None,
) -> ProbeResult:
    """sysUpTime (and hrSystemUptime where the agent has it) plus reboot detection.

    Readings: snmp.uptime_s; snmp.host_uptime_s when HOST-RESOURCES answers; with
    `previous_uptime_s` also snmp.rebooted (1/0). The message names the device (sysName,
    first line of sysDescr) so an operator sees what answered.
    """
    started = time.perf_counter()
    reply = await snmp_get(
        host,
        [SYS_UPTIME, SYS_DESCR, SYS_NAME, HR_SYSTEM_UPTIME],
        credentials,
        port=port,
        timeout=timeout,
        retries=retries,
    )
    if not reply.ok:
        return finished(reply.status, {}, reply.error or NO_NOTE, started)
    ticks = reply.values.get(SYS_UPTIME)
    if not isinstance(ticks, int):
        return finished(ProbeStatus.FAILED, {}, note("agent has no sysUpTime"), started)
    uptime = ticks / 100
    readings = {"snmp.uptime_s": uptime}
    host_ticks = reply.values.get(HR_SYSTEM_UPTIME)
    if isinstance(host_ticks, int):
        readings["snmp.host_uptime_s"] = host_ticks / 100
    name = as_text(reply.values.get(SYS_NAME)) or as_text(reply.values.get(SYS_DESCR))
    message = note(
        "{name}: up {uptime}",
        name=name.splitlines()[0] if name else host,
        uptime=_duration(uptime),
    )
    if previous_uptime_s is not None:
        restarted = rebooted(previous_uptime_s, uptime, elapsed=elapsed_s)
        readings["snmp.rebooted"] = 1.0 if restarted else 0.0
        if restarted:
            message = note(
                "{name}: up {uptime} (rebooted: uptime was {previous})",
                name=message.params["name"],
                uptime=message.params["uptime"],
                previous=_duration(previous_uptime_s),
            )
    return finished(ProbeStatus.OK, readings, message, started)


def _duration(seconds: float) -> Note:
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return note("{days}d {hours}h", days=days, hours=hours)
    if hours:
        return note("{hours}h {minutes}m", hours=hours, minutes=minutes)
    return note("{minutes}m {seconds}s", minutes=minutes, seconds=secs)


@dataclass(frozen=True)
class Sample:
    """One labelled value for the metric store: (name, labels, value)."""

    name: str
    labels: Mapping[str, str]
    value: float

    def __post_init__(self) -> None:
        if not METRIC_NAME_RE.fullmatch(self.name):
            raise ValueError(f"invalid metric name: {self.name!r}")


@dataclass(frozen=True)
class SnmpInterface:
    """One IF-MIB row as polled: raw counters, never rates (rates need two polls)."""

    index: int
    name: str
    descr: str
    oper_status: int | None
    admin_status: int | None
    speed_bps: float | None
    counter_bits: int  # 64 when ifHCIn/OutOctets answered, else 32
    in_octets: int | None
    out_octets: int | None
    in_errors: int | None
    out_errors: int | None

    @property
    def labels(self) -> dict[str, str]:
        """Stable series labels: ifName (ifDescr if none) and ifIndex to tell twins apart.

        ifAlias is deliberately not a label: operators edit it, and every edit would start a
        new series.
        """
        return {"ifname": (self.name or self.descr)[:200], "ifindex": str(self.index)}


@dataclass(frozen=True)
class SnmpInterfacesResult(ProbeResult):
    """A ProbeResult that also carries per-interface rows and labelled samples.

    `readings` holds the device-wide numbers (snmp.if.count, snmp.if.up_count,
    snmp.if.down_count); per-interface values cannot be plain readings because the store keys
    them by labels, so they are in `samples` as (name, labels, value).
    """

    interfaces: tuple[SnmpInterface, ...] = ()
    samples: tuple[Sample, ...] = ()


_INTERFACE_COLUMNS = (
    IF_DESCR,
    IF_SPEED,
    IF_ADMIN_STATUS,
    IF_OPER_STATUS,
    IF_IN_OCTETS,
    IF_IN_ERRORS,
    IF_OUT_OCTETS,
    IF_OUT_ERRORS,
    IF_NAME,
    IF_HC_IN_OCTETS,
    IF_HC_OUT_OCTETS,
    IF_HIGH_SPEED,
)


async def probe_snmp_interfaces(
    *,
    host: str,
    credentials: SnmpCredentials,
    port: int = 161,
    timeout: float = 2.0,
    retries: int = 1,
    max_interfaces: int = 1000,
) -> SnmpInterfacesResult:
    """Walk IF-MIB: names, status, octet and error counters of every interface.

    64-bit ifHC*Octets are used per interface where the agent has them (ifXTable), else the
    32-bit ifIn/OutOctets, and `counter_bits` says which, for `counter_rate`. Columns are
    walked concurrently; each walk is bounded by `max_interfaces` rows.
    """
    started = time.perf_counter()
    walks = await asyncio.gather(
        *(
            snmp_walk(
                host,
                column,
                credentials,
                port=port,
                timeout=timeout,
                retries=retries,
                max_rows=max_interfaces,
            )
            for column in _INTERFACE_COLUMNS
        )
    )
    by_column = dict(zip(_INTERFACE_COLUMNS, walks, strict=True))
    failed = [reply for reply in walks if not reply.ok]
    descr = _column(by_column[IF_DESCR].values, IF_DESCR)
    if not descr:
        if failed:
            return _interfaces_result(failed[0].status, failed[0].error or NO_NOTE, (), started)
        return _interfaces_result(
            ProbeStatus.FAILED, note("agent has no IF-MIB ifTable"), (), started
        )
    columns = {column: _column(reply.values, column) for column, reply in by_column.items()}
    interfaces = []
    for index in sorted(descr, key=lambda i: _oid_tuple(i) if "." in i else (int(i),)):
        if not index.isdigit():
            continue
        hc_in = columns[IF_HC_IN_OCTETS].get(index)
        hc_out = columns[IF_HC_OUT_OCTETS].get(index)
        use_hc = isinstance(hc_in, int) and isinstance(hc_out, int)
        interfaces.append(
            SnmpInterface(
                index=int(index),
                name=as_text(columns[IF_NAME].get(index)),
                descr=as_text(descr[index]),
                oper_status=_int(columns[IF_OPER_STATUS].get(index)),
                admin_status=_int(columns[IF_ADMIN_STATUS].get(index)),
                speed_bps=_speed(columns[IF_HIGH_SPEED].get(index), columns[IF_SPEED].get(index)),
                counter_bits=64 if use_hc else 32,
                in_octets=_int(hc_in if use_hc else columns[IF_IN_OCTETS].get(index)),
                out_octets=_int(hc_out if use_hc else columns[IF_OUT_OCTETS].get(index)),
                in_errors=_int(columns[IF_IN_ERRORS].get(index)),
                out_errors=_int(columns[IF_OUT_ERRORS].get(index)),
            )
        )
    message = note("{count} interfaces", count=len(interfaces))
    if any(reply.truncated for reply in walks):
        message = note(
            "{count} interfaces (stopped at {limit})", count=len(interfaces), limit=max_interfaces
        )
    if failed:
        # The ifTable answered, some other column did not: partial data is still worth having.
        message = notes_joined(
            message,
            note("some columns missing: {error}", error=failed[0].error or NO_NOTE),
        )
    return _interfaces_result(ProbeStatus.OK, message, tuple(interfaces), started)


def _interfaces_result(
    status: ProbeStatus, message: Note, interfaces: tuple[SnmpInterface, ...], started: float
) -> SnmpInterfacesResult:
    readings: dict[str, float] = {}
    samples: list[Sample] = []
    if interfaces:
        readings["snmp.if.count"] = float(len(interfaces))
        readings["snmp.if.up_count"] = float(sum(i.oper_status == 1 for i in interfaces))
        # Admin up but not operationally up: the ones an operator cares about.
        readings["snmp.if.down_count"] = float(
            sum(i.admin_status == 1 and i.oper_status not in (1, None) for i in interfaces)
        )
    for interface in interfaces:
        labels = interface.labels
        for name, value in (
            ("snmp.if.oper_status", interface.oper_status),
            ("snmp.if.speed_bps", interface.speed_bps),
            ("snmp.if.in_octets", interface.in_octets),
            ("snmp.if.out_octets", interface.out_octets),
            ("snmp.if.in_errors", interface.in_errors),
            ("snmp.if.out_errors", interface.out_errors),
        ):
            if value is not None:
                samples.append(Sample(name, labels, float(value)))
    return SnmpInterfacesResult(
        status,
        readings,
        message,
        elapsed_ms(started),
        interfaces=interfaces,
        samples=tuple(samples),
    )


def interface_rates(
    previous: SnmpInterface, previous_time: float, current: SnmpInterface, now: float
) -> list[Sample]:
    """Traffic (bit/s) and error (per s) rates between two polls of the same interface.

    The link speed (x1.5 for slack) caps a believable rate, so a counter reset is dropped
    rather than reported as a burst; a change of counter width between polls gives nothing.
    """
    if previous.counter_bits != current.counter_bits:
        return []
    bits = current.counter_bits
    max_octets = current.speed_bps * 1.5 / 8 if current.speed_bps else None
    samples = []
    for name, old, new, scale, cap in (
        ("snmp.if.in_bps", previous.in_octets, current.in_octets, 8, max_octets),
        ("snmp.if.out_bps", previous.out_octets, current.out_octets, 8, max_octets),
        ("snmp.if.in_errors_ps", previous.in_errors, current.in_errors, 1, max_octets),
        ("snmp.if.out_errors_ps", previous.out_errors, current.out_errors, 1, max_octets),
    ):
        # Error counters are 32-bit in IF-MIB whatever the octet counters are.
        width = bits if name.endswith("_bps") else 32
        rate = counter_rate(old, previous_time, new, now, bits=width, max_rate=cap)
        if rate is not None:
            samples.append(Sample(name, current.labels, rate * scale))
    return samples


def _int(value: SnmpValue) -> int | None:
    return value if isinstance(value, int) else None


def _speed(high_speed: SnmpValue, speed: SnmpValue) -> float | None:
    # ifSpeed saturates at 2**32-1 bit/s; ifHighSpeed (Mbit/s) is right for fast links.
    if isinstance(high_speed, int) and high_speed > 0:
        return float(high_speed) * 1_000_000
    if isinstance(speed, int) and speed > 0:
        return float(speed)
    return None


# CPU / memory --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Poll:
    host: str
    credentials: SnmpCredentials
    port: int
    timeout: float
    retries: int
    cpu_sample_s: float = 6.0

    async def walk(self, root: str, max_rows: int = 500) -> dict[str, SnmpValue]:
        reply = await snmp_walk(
            self.host,
            root,
            self.credentials,
            port=self.port,
            timeout=self.timeout,
            retries=self.retries,
            max_rows=max_rows,
        )
        return _column(reply.values, root)

    async def get(self, *oids: str) -> dict[str, SnmpValue]:
        reply = await snmp_get(
            self.host,
            oids,
            self.credentials,
            port=self.port,
            timeout=self.timeout,
            retries=self.retries,
        )
        return reply.values


def _numbers(column: Mapping[str, SnmpValue]) -> list[int]:
    return [v for v in column.values() if isinstance(v, int)]


# Each source answers (cpu %, None) / (None, (used %, used bytes, total bytes)) or Nones.
async def _cpu_host_resources(poll: _Poll) -> float | None:
    loads = _numbers(await poll.walk(HR_PROCESSOR_LOAD))
    return sum(loads) / len(loads) if loads else None


async def _mem_host_resources(poll: _Poll) -> tuple[float, float | None, float | None] | None:
    types = await poll.walk(HR_STORAGE_TYPE)
    rows = [index for index, kind in types.items() if kind == HR_STORAGE_RAM]
    if not rows:
        return None
    oids = [f"{col}.{row}" for row in rows for col in (HR_STORAGE_UNITS, HR_STORAGE_SIZE)]
    oids += [f"{HR_STORAGE_USED}.{row}" for row in rows]
    values = await poll.get(*oids)
    total = used = 0
    for row in rows:
        units = values.get(f"{HR_STORAGE_UNITS}.{row}")
        size = values.get(f"{HR_STORAGE_SIZE}.{row}")
        in_use = values.get(f"{HR_STORAGE_USED}.{row}")
        if isinstance(units, int) and isinstance(size, int) and isinstance(in_use, int):
            total += units * size
            used += units * in_use
    return (100 * used / total, float(used), float(total)) if total else None


async def _cpu_ucd(poll: _Poll) -> float | None:
    idle = (await poll.get(UCD_SS_CPU_IDLE)).get(UCD_SS_CPU_IDLE)
    if isinstance(idle, int):
        return float(100 - idle)
    # A freshly started net-snmp: sample the raw tick counters instead. It refreshes them only
    # every few seconds, so re-read once a second until they move or cpu_sample_s is spent.
    oids = UCD_CPU_RAW_BUSY + UCD_CPU_RAW_IDLE
    first = await poll.get(*oids)
    if not any(isinstance(first.get(oid), int) for oid in UCD_CPU_RAW_IDLE):
        return None

    def ticks(second: Mapping[str, SnmpValue], group: tuple[str, ...]) -> int:
        total = 0
        for oid in group:
            old, new = first.get(oid), second.get(oid)
            if isinstance(old, int) and isinstance(new, int):
                total += (new - old) % 2**32  # Counter32: a wrap is a small positive delta
        return total

    deadline = time.monotonic() + poll.cpu_sample_s
    while time.monotonic() < deadline:
        await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
        second = await poll.get(*oids)
        busy, spare = ticks(second, UCD_CPU_RAW_BUSY), ticks(second, UCD_CPU_RAW_IDLE)
        if busy + spare > 0:
            return 100 * busy / (busy + spare)
    return None


async def _mem_ucd(poll: _Poll) -> tuple[float, float | None, float | None] | None:
    values = await poll.get(UCD_MEM_TOTAL_REAL, UCD_MEM_AVAIL_REAL, UCD_MEM_BUFFER, UCD_MEM_CACHED)
    total = values.get(UCD_MEM_TOTAL_REAL)
    free = values.get(UCD_MEM_AVAIL_REAL)
    if not isinstance(total, int) or not isinstance(free, int) or total <= 0:
        return None
    # Like `free`: buffers and page cache are reclaimable, so they do not count as used.
    reclaimable = sum(
        v for v in (values.get(UCD_MEM_BUFFER), values.get(UCD_MEM_CACHED)) if isinstance(v, int)
    )
    used_kib = max(total - free - reclaimable, 0)
    return 100 * used_kib / total, used_kib * 1024.0, total * 1024.0


async def _cpu_cisco(poll: _Poll) -> float | None:
    for column in (CISCO_CPU_5MIN_REV, CISCO_CPU_5MIN):
        loads = _numbers(await poll.walk(column))
        if loads:
            return sum(loads) / len(loads)
    return None


async def _mem_cisco(poll: _Poll) -> tuple[float, float | None, float | None] | None:
    names = await poll.walk(CISCO_MEM_POOL_NAME)
    used_column = await poll.walk(CISCO_MEM_POOL_USED)
    free_column = await poll.walk(CISCO_MEM_POOL_FREE)
    # The "Processor" pool is what IOS means by memory; I/O and driver pools are fixed-size.
    rows = [i for i, name in names.items() if as_text(name).lower() == "processor"]
    rows = rows or list(used_column)
    used = sum(v for i in rows if isinstance(v := used_column.get(i), int))
    free = sum(v for i in rows if isinstance(v := free_column.get(i), int))
    if used + free > 0:
        return 100 * used / (used + free), float(used), float(used + free)
    # NX-OS has no memory pools; CISCO-PROCESS-MIB reports per-CPU memory in KiB.
    used = sum(_numbers(await poll.walk(CISCO_CPU_MEM_USED)))
    free = sum(_numbers(await poll.walk(CISCO_CPU_MEM_FREE)))
    if used + free > 0:
        return 100 * used / (used + free), used * 1024.0, (used + free) * 1024.0
    return None


def _entity_max(column: Mapping[str, SnmpValue]) -> float | None:
    # One row per physical entity; chassis, fans and line cards without a CPU answer 0. The
    # busiest board (main processing unit) is the one to alert on, so take the maximum.
    values = [v for v in _numbers(column) if 0 <= v <= 100]
    return float(max(values)) if values else None


async def _cpu_huawei(poll: _Poll) -> float | None:
    return _entity_max(await poll.walk(HUAWEI_CPU_USAGE))


async def _mem_huawei(poll: _Poll) -> tuple[float, float | None, float | None] | None:
    usage = _entity_max(await poll.walk(HUAWEI_MEM_USAGE))
    return (usage, None, None) if usage is not None else None


async def _cpu_h3c(poll: _Poll) -> float | None:
    return _entity_max(await poll.walk(H3C_CPU_USAGE))


async def _mem_h3c(poll: _Poll) -> tuple[float, float | None, float | None] | None:
    usage = _entity_max(await poll.walk(H3C_MEM_USAGE))
    return (usage, None, None) if usage is not None else None


_SOURCES = {
    "HOST-RESOURCES": (_cpu_host_resources, _mem_host_resources),
    "UCD-SNMP": (_cpu_ucd, _mem_ucd),
    "Cisco": (_cpu_cisco, _mem_cisco),
    "Huawei": (_cpu_huawei, _mem_huawei),
    "H3C": (_cpu_h3c, _mem_h3c),
}
_ORDER = {
    ENTERPRISE_CISCO: ("Cisco", "HOST-RESOURCES", "UCD-SNMP"),
    ENTERPRISE_HUAWEI: ("Huawei", "HOST-RESOURCES", "UCD-SNMP"),
    ENTERPRISE_H3C: ("H3C", "HOST-RESOURCES", "UCD-SNMP"),
    ENTERPRISE_NET_SNMP: ("UCD-SNMP", "HOST-RESOURCES"),
}
# Unknown vendors: the standard MIBs first, then the vendor MIBs (rebadged/OEM devices often
# report someone else's enterprise number but still implement their MIBs).
_DEFAULT_ORDER = ("HOST-RESOURCES", "UCD-SNMP", "Cisco", "Huawei", "H3C")


def enterprise_of(sys_object_id: str) -> int | None:
    """The private enterprise number in a sysObjectID (1.3.6.1.4.1.<n>...), if any."""
    if not sys_object_id.startswith(ENTERPRISES):
        return None
    head = sys_object_id[len(ENTERPRISES) :].split(".", 1)[0]
    return int(head) if head.isdigit() else None


async def probe_snmp_cpu_memory(
    *,
    host: str,
    credentials: SnmpCredentials,
    port: int = 161,
    timeout: float = 2.0,
    retries: int = 1,
    cpu_sample_s: float = 6.0,
) -> ProbeResult:
    """CPU and memory utilisation from whichever MIB the device implements.

    The order of MIBs tried follows the sysObjectID's enterprise (9 Cisco, 2011 Huawei,
    25506 H3C, 8072 net-snmp); CPU and memory are found independently, each from the first
    source that answers. Readings: snmp.cpu_pct, snmp.mem_used_pct, and where the MIB gives
    sizes snmp.mem_used_bytes and snmp.mem_total_bytes. The message says which MIB was used.
    A net-snmp agent up for less than a minute has no CPU percentages yet; then its raw tick
    counters are sampled for up to `cpu_sample_s` (they refresh about every 5 s).
    """
    started = time.perf_counter()
    ident = await snmp_get(
        host, [SYS_OBJECT_ID], credentials, port=port, timeout=timeout, retries=retries
    )
    if not ident.ok:
        return finished(ident.status, {}, ident.error or NO_NOTE, started)
    object_id = ident.values.get(SYS_OBJECT_ID)
    enterprise = enterprise_of(object_id) if isinstance(object_id, str) else None
    order = _ORDER.get(enterprise, _DEFAULT_ORDER) if enterprise is not None else _DEFAULT_ORDER
    poll = _Poll(host, credentials, port, timeout, retries, cpu_sample_s)
    readings: dict[str, float] = {}
    found: list[Note] = []
    cpu_done = mem_done = False
    for source in order:
        cpu_fn, mem_fn = _SOURCES[source]
        if not cpu_done and (cpu := await cpu_fn(poll)) is not None:
            readings["snmp.cpu_pct"] = round(cpu, 2)
            found.append(note("cpu {percent:.0f} % ({source})", percent=cpu, source=source))
            cpu_done = True
        if not mem_done and (memory := await mem_fn(poll)) is not None:
            percent, used, total = memory
            readings["snmp.mem_used_pct"] = round(percent, 2)
            if used is not None and total is not None:
                readings["snmp.mem_used_bytes"] = used
                readings["snmp.mem_total_bytes"] = total
            found.append(note("memory {percent:.0f} % ({source})", percent=percent, source=source))
            mem_done = True
        if cpu_done and mem_done:
            break
    if not found:
        return finished(
            ProbeStatus.FAILED,
            {},
            note(
                "no CPU or memory data in {mibs} MIBs (sysObjectID {object_id})",
                mibs=", ".join(order),
                object_id=str(object_id),
            ),
            started,
        )
    return finished(ProbeStatus.OK, readings, notes_joined(*found), started)


async def probe_snmp_oid(
    *,
    host: str,
    credentials: SnmpCredentials,
    oid: str,
    port: int = 161,
    timeout: float = 2.0,
    retries: int = 1,
    expect: str | None = None,
    reading: str = "snmp.value",
) -> ProbeResult:
    """GET any one OID: a number becomes the `reading`; with `expect`, a string must contain it.

    With `expect` the check is FAILED on a mismatch and the reading is snmp.match (1/0); a
    missing object (noSuchObject/noSuchInstance) is FAILED with the OID named.
    """
    started = time.perf_counter()
    if not METRIC_NAME_RE.fullmatch(reading):
        return finished(
            ProbeStatus.UNKNOWN,
            {},
            note("invalid reading name {name}", name=repr(reading)),
            started,
        )
    try:
        oid = _clean_oid(oid)
    except ValueError as exc:
        return finished(ProbeStatus.UNKNOWN, {}, verbatim(str(exc)), started)
    reply = await snmp_get(host, [oid], credentials, port=port, timeout=timeout, retries=retries)
    if not reply.ok:
        return finished(reply.status, {}, reply.error or NO_NOTE, started)
    if oid not in reply.values:
        return finished(
            ProbeStatus.FAILED,
            {},
            note("no such object {oid} on {host}", oid=oid, host=host),
            started,
        )
    value = reply.values[oid]
    text = as_text(value)
    if expect is not None:
        matched = expect in text
        status = ProbeStatus.OK if matched else ProbeStatus.FAILED
        shown = text if len(text) <= 80 else text[:77] + "..."
        values = {"oid": oid, "value": repr(shown), "expected": repr(expect)}
        return finished(
            status,
            {"snmp.match": 1.0 if matched else 0.0},
            note("{oid} = {value} contains {expected}", **values)
            if matched
            else note("{oid} = {value} does not contain {expected}", **values),
            started,
        )
    number: float | None = float(value) if isinstance(value, int) else None
    if number is None:
        with contextlib.suppress(ValueError):
            number = float(text)  # numbers sent as strings (common in vendor MIBs)
    if number is None:
        return finished(
            ProbeStatus.OK,
            {},
            note("{oid} = {value} (not a number, no reading)", oid=oid, value=repr(text[:80])),
            started,
        )
    return finished(
        ProbeStatus.OK,
        {reading: number},
        Note("{oid} = {value}", {"oid": oid, "value": value if isinstance(value, int) else text}),
        started,
    )
