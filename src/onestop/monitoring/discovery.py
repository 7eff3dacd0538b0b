"""SNMP discovery: sweep addresses for agents, tell what answered from its sysObjectID and
sysDescr, and read its interfaces.

Plain asyncio on the probe module, no ORM: the services turn what is found into devices.
Nothing here raises for network trouble; an address that does not answer (silence, ICMP
unreachable, a wrong community, refused v3 credentials) is simply not in the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from onestop.monitoring.probes.snmp import (
    SYS_DESCR,
    SYS_NAME,
    SYS_OBJECT_ID,
    SnmpCredentials,
    SnmpValue,
    as_text,
    enterprise_of,
    probe_snmp_interfaces,
    snmp_engine,
    snmp_get,
    snmp_walk,
)

SYS_CONTACT = "1.3.6.1.2.1.1.4.0"  # SNMPv2-MIB::sysContact.0
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"  # SNMPv2-MIB::sysLocation.0
# ENTITY-MIB::entPhysicalSerialNum.1: the chassis' serial number on many (not all) devices.
ENT_SERIAL_1 = "1.3.6.1.2.1.47.1.1.1.1.11.1"
IF_PHYS_ADDRESS = "1.3.6.1.2.1.2.2.1.6"  # IF-MIB::ifPhysAddress (MAC of each interface)

IDENTITY_OIDS = (SYS_OBJECT_ID, SYS_DESCR, SYS_NAME, SYS_LOCATION, SYS_CONTACT, ENT_SERIAL_1)

# Device kinds, as the asset register spells them (assets.models.Device.Kind values; kept as
# plain strings so this module needs no Django).
SWITCH, ROUTER, FIREWALL, ACCESS_POINT = "switch", "router", "firewall", "access_point"
SERVER, DESKTOP, PRINTER, NAS, UPS, CAMERA, OTHER = (
    "server",
    "desktop",
    "printer",
    "nas",
    "ups",
    "camera",
    "other",
)

MAX_INTERFACES = 1000

log = logging.getLogger(__name__)


# --- identification --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Enterprise:
    name: str
    kind: str | None  # what this maker's devices usually are; None: cannot tell
    # True for agent software (net-snmp, Windows, ESXi): the name says what runs on the box,
    # not who made it, so it is the operating system and the vendor stays unknown.
    software: bool = False


# IANA private enterprise numbers (the n in 1.3.6.1.4.1.n of a sysObjectID).
ENTERPRISES: dict[int, _Enterprise] = {
    # network gear
    9: _Enterprise("Cisco", ROUTER),  # refined by image family (C3750 switch, C2900 router, ASA)
    2011: _Enterprise("Huawei", None),  # by model: S/CE switch, AR/NE router, USG firewall, AP
    25506: _Enterprise("H3C", None),  # by model: S/E switch, MSR router, SecPath/F firewall, WA
    2636: _Enterprise("Juniper", ROUTER),  # EX/QFX switch, SRX firewall, MX router
    3224: _Enterprise("Juniper", FIREWALL),  # NetScreen / ScreenOS
    30065: _Enterprise("Arista", SWITCH),
    6486: _Enterprise("Alcatel-Lucent", SWITCH),  # OmniSwitch
    1916: _Enterprise("Extreme Networks", SWITCH),
    4526: _Enterprise("Netgear", SWITCH),  # ReadyNAS too (by sysDescr)
    11863: _Enterprise("TP-Link", SWITCH),
    4413: _Enterprise("Broadcom", SWITCH),  # FASTPATH-based white-label switches
    4881: _Enterprise("Ruijie", SWITCH),
    171: _Enterprise("D-Link", SWITCH),
    890: _Enterprise("Zyxel", SWITCH),
    43: _Enterprise("3Com", SWITCH),
    3902: _Enterprise("ZTE", None),
    14988: _Enterprise("MikroTik", ROUTER),
    3375: _Enterprise("F5", OTHER),  # BIG-IP load balancers
    # security
    12356: _Enterprise("Fortinet", FIREWALL),  # FortiSwitch, FortiAP by model
    25461: _Enterprise("Palo Alto Networks", FIREWALL),
    2620: _Enterprise("Check Point", FIREWALL),
    8741: _Enterprise("SonicWall", FIREWALL),
    2604: _Enterprise("Sophos", FIREWALL),
    # wireless
    41112: _Enterprise("Ubiquiti", ACCESS_POINT),  # UniFi
    10002: _Enterprise("Ubiquiti", ACCESS_POINT),  # airOS reports Frogfoot's number
    14823: _Enterprise("Aruba", ACCESS_POINT),
    14179: _Enterprise("Cisco", ACCESS_POINT),  # Airespace wireless LAN controllers
    25053: _Enterprise("Ruckus", ACCESS_POINT),
    # servers and storage
    674: _Enterprise("Dell", SERVER),  # PowerConnect switches by sysObjectID
    232: _Enterprise("HPE", SERVER),  # Compaq / iLO
    2: _Enterprise("IBM", SERVER),
    42: _Enterprise("Oracle", SERVER),  # Sun
    6574: _Enterprise("Synology", NAS),
    24681: _Enterprise("QNAP", NAS),
    # agent software: the OS is known, the maker of the hardware is not
    8072: _Enterprise("Net-SNMP", SERVER, software=True),  # Linux, BSD (the sysDescr says)
    2021: _Enterprise("Net-SNMP", SERVER, software=True),  # old UCD-SNMP agents
    12325: _Enterprise("bsnmpd", SERVER, software=True),  # FreeBSD, pfSense, OPNsense
    311: _Enterprise("Windows", SERVER, software=True),  # workstations by sysObjectID
    6876: _Enterprise("VMware ESXi", SERVER, software=True),
    # printers
    11: _Enterprise("HP", None),  # printers and ProCurve switches by sysObjectID
    1347: _Enterprise("Kyocera", PRINTER),
    367: _Enterprise("Ricoh", PRINTER),
    1602: _Enterprise("Canon", PRINTER),
    2435: _Enterprise("Brother", PRINTER),
    253: _Enterprise("Xerox", PRINTER),
    18334: _Enterprise("Konica Minolta", PRINTER),
    1248: _Enterprise("Epson", PRINTER),
    641: _Enterprise("Lexmark", PRINTER),
    2385: _Enterprise("Sharp", PRINTER),
    # power
    318: _Enterprise("APC", UPS),
    534: _Enterprise("Eaton", UPS),  # Powerware
    705: _Enterprise("Eaton", UPS),  # MGE UPS Systems
    476: _Enterprise("Vertiv", UPS),  # Liebert
    # video
    39165: _Enterprise("Hikvision", CAMERA),
}

# Product subtrees whose kind the sysObjectID alone settles.
_OBJECT_KINDS = (
    ("1.3.6.1.4.1.11.2.3.9.", PRINTER),  # HP JetDirect peripherals
    ("1.3.6.1.4.1.11.2.3.7.", SWITCH),  # HP ProCurve / Aruba switches
    ("1.3.6.1.4.1.674.10895.", SWITCH),  # Dell PowerConnect
    ("1.3.6.1.4.1.311.1.1.3.1.1", DESKTOP),  # Windows workstation
)

# Words of a sysDescr that settle the kind, whoever made the device; first match wins, so
# the specific (a printer's "JetDirect") come before the generic ("switch").
_KIND_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (
            PRINTER,
            r"printer|laserjet|officejet|pagewide|jetdirect|\bmfp\b|ecosys|taskalfa|"
            r"imagerunner|bizhub|aficio|workcentre|versalink|docuprint|apeos",
        ),
        (UPS, r"\bups\b|smart-ups|symmetra|uninterruptible|powerware"),
        (
            FIREWALL,
            r"firewall|fortigate|adaptive security appliance|pan-os|palo alto|sonicwall|"
            r"sonicos|pfsense|opnsense|secpath|\busg\d|check ?point|\bgaia\b|\bsrx\d",
        ),
        (NAS, r"\bnas\b|synology|diskstation|rackstation|\bqnap\b|readynas|truenas|freenas"),
        (SWITCH, r"\bswitch|catalyst|nexus|nx-os"),
        (ACCESS_POINT, r"access point|aironet|airos|\buap\b|wireless ap|airengine"),
        (CAMERA, r"camera|hikvision|dahua"),
        (ROUTER, r"\brouter\b|routeros"),
    )
)

# Per maker, model patterns that settle the kind (checked in order on the model found).
_MODEL_KINDS: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    name: tuple((re.compile(pattern, re.IGNORECASE), kind) for pattern, kind in rules)
    for name, rules in {
        "Cisco": (
            # Catalyst switch images (C2960, C3560, C3750, C3850, C4500, C9300 …) …
            (r"^(C29[4-7]\d|C3[5-8][56]0|C4[59]\d\d|CAT\d|C9[2-6]00|C1000|IE\d|ME\d|N\dK)", SWITCH),
            (r"^ASA", FIREWALL),
            (r"^(AP\d|AIR)", ACCESS_POINT),
            # … and routers (ISR C800/C1900/C2900/C3900, 7200, ASR, CSR).
            (r"^(C8\d\d|C1[0-9]\d\d|C2[6-9]\d\d|C3[6-9]\d\d|C7\d\d\d|ISR|ASR|CSR)", ROUTER),
        ),
        "Huawei": (
            (r"^(S\d|CE\d|CX\d|E\d)", SWITCH),
            (r"^(AR\d|NE\d|ATN|CX600)", ROUTER),
            (r"^(USG|Eudemon|HiSec)", FIREWALL),
            (r"^(AP\d|AirEngine|AC\d)", ACCESS_POINT),
        ),
        "H3C": (
            (r"^(S\d|E\d|LS)", SWITCH),
            (r"^(MSR|SR\d|CR\d)", ROUTER),
            (r"^(F\d{3,}|SecPath)", FIREWALL),
            (r"^(WA\d|WX\d)", ACCESS_POINT),
        ),
        "Juniper": (
            (r"^(EX|QFX)", SWITCH),
            (r"^SRX", FIREWALL),
            (r"^(MX|PTX|ACX)", ROUTER),
        ),
        "Fortinet": (
            (r"^FortiSwitch", SWITCH),
            (r"^FortiAP", ACCESS_POINT),
        ),
        "MikroTik": ((r"^CRS", SWITCH),),
    }.items()
}


def _first(pattern: str, text: str, flags: int = 0) -> str:
    match = re.search(pattern, text, flags)
    return match.group(1).strip() if match else ""


def _model(vendor: str, descr: str) -> str:
    """The model (or model family) a vendor's sysDescr names, or ""."""
    if vendor == "Cisco":
        # "Cisco IOS Software, C3750 Software (C3750-IPSERVICESK9-M), Version …" → C3750
        # (a model has a digit: IOS XE's "Catalyst L3 Switch Software (CAT9K_IOSXE)" has none)
        model = _first(r"\b([A-Za-z][A-Za-z_]*\d\w*)\s+Software\s+\(", descr)
        if model:
            return model.upper()
        if "Adaptive Security Appliance" in descr:
            return "ASA"
        return _first(r"NX-OS\(tm\)\s+(\w+)", descr).upper()
    if vendor == "Huawei":
        # "… Version 5.160 (S5720 V200R007C00SPC500)" → S5720; else the first line's product.
        model = _first(r"\(([A-Za-z]+[\w]*?)\s+V\d{3}R\d{3}", descr)
        return model or _first(r"^\s*([A-Z]{1,9}\d[\w]*)", descr)
    if vendor == "H3C":
        # "H3C Switch E528 Software …" → E528; "H3C S5130-28S-SI" → S5130
        return _first(
            r"\bH3C\s+(?:Switch\s+|Router\s+|SecPath\s+)?([A-Z]{1,6}\d{2,}[A-Z0-9]*)", descr
        )
    if vendor == "Juniper":
        # "Juniper Networks, Inc. ex2200-24t-4g Ethernet Switch, kernel JUNOS …"
        return _first(r"Juniper Networks, Inc\.\s+(\S+)", descr).upper()
    if vendor == "Fortinet":
        return _first(r"\b(Forti\w+-\w+)", descr)
    if vendor == "MikroTik":
        return _first(r"RouterOS\s+(\S+)", descr)
    return ""


@dataclass(frozen=True)
class Identity:
    """What a sysObjectID and sysDescr tell: maker, model, kind and operating system."""

    vendor: str
    model: str
    kind: str
    os_name: str = ""
    os_version: str = ""


def _os(enterprise: _Enterprise | None, descr: str) -> tuple[str, str]:
    """(operating system, version) where the sysDescr says them plainly."""
    if re.match(r"(Linux|FreeBSD|OpenBSD|NetBSD|SunOS|Darwin)\s+\S+\s+(\S+)", descr):
        # net-snmp's sysDescr is `uname -a`: "Linux host 6.1.0-18-amd64 #1 SMP …"
        words = descr.split()
        return words[0], words[2]
    if "pfSense" in descr or "OPNsense" in descr:
        return ("pfSense" if "pfSense" in descr else "OPNsense"), _first(r"\s(\d[\w.-]*)", descr)
    if "Software: Windows" in descr:
        version = _first(r"Windows Version ([\d.]+ \(Build \d+)", descr)
        return "Windows", (version + ")") if version else ""
    if descr.startswith("VMware ESX"):
        return _first(r"^(VMware ESXi?)", descr), _first(r"^VMware ESXi?\s+(\S+)", descr)
    if "Cisco" in descr:
        version = _first(r"Version\s+([^,\s]+)", descr)
        if "NX-OS" in descr:
            return "Cisco NX-OS", version
        if "Adaptive Security Appliance" in descr:
            return "Cisco ASA", version
        if "IOS-XE" in descr or "IOS XE" in descr or "IOSXE" in descr:
            return "Cisco IOS XE", version
        if "IOS" in descr:
            return "Cisco IOS", version
    if "VRP" in descr:
        version = _first(r"\(\S+\s+(V\d{3}R\d{3}\w*)\)", descr)
        return "Huawei VRP", version or _first(r"Version\s+([\d.]+)", descr)
    if "H3C" in descr or "Comware" in descr:
        version = _first(r"Version\s+([\d.]+(?:,\s*Release\s+\w+)?)", descr)
        return "H3C Comware", version.replace(",", "")
    if "JUNOS" in descr:
        return "Junos", _first(r"JUNOS\s+(\S+?),?\s", descr + " ")
    if enterprise is not None and enterprise.software:
        return enterprise.name if enterprise.name not in ("Net-SNMP", "bsnmpd") else "", ""
    return "", ""


def describe(sys_object_id: str, sys_descr: str) -> Identity:
    """Maker, model, kind and OS from sysObjectID and sysDescr.

    The kind is settled by, in order: a product subtree of the sysObjectID (an HP JetDirect is
    a printer), words of the sysDescr ("printer", "firewall", "switch" …), the maker's model
    families (Cisco C3750 switch, Huawei AR router), the maker's usual kind; else "other".
    """
    sys_object_id = (sys_object_id or "").strip().lstrip(".")
    descr = " ".join((sys_descr or "").split())  # CR/LF of multi-line sysDescrs → spaces
    number = enterprise_of(sys_object_id)
    enterprise = ENTERPRISES.get(number) if number is not None else None
    vendor = enterprise.name if enterprise and not enterprise.software else ""
    model = _model(vendor, descr) if vendor else ""
    os_name, os_version = _os(enterprise, descr)
    kind = _kind(sys_object_id, descr, enterprise, model)
    return Identity(vendor, model[:100], kind, os_name[:100], os_version[:100])


def _kind(sys_object_id: str, descr: str, enterprise: _Enterprise | None, model: str) -> str:
    for prefix, kind in _OBJECT_KINDS:
        if sys_object_id.startswith(prefix):
            return kind
    for kind, words in _KIND_WORDS:
        if words.search(descr):
            return kind
    if enterprise is None:
        return OTHER
    for pattern, kind in _MODEL_KINDS.get(enterprise.name, ()):
        if model and pattern.search(model):
            return kind
    return enterprise.kind or OTHER


def identify(sys_object_id: str, sys_descr: str) -> tuple[str, str, str]:
    """(vendor, model, kind) of a device from its sysObjectID and sysDescr; see `describe`."""
    identity = describe(sys_object_id, sys_descr)
    return identity.vendor, identity.model, identity.kind


# --- the sweep -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundInterface:
    """One interface of a discovered device, for the asset register's inventory."""

    index: int
    name: str
    mac: str
    speed_bps: int | None
    up: bool | None
    admin_up: bool | None

    def as_inventory(self) -> dict[str, object]:
        return {
            "name": self.name,
            "mac": self.mac,
            "speed_bps": self.speed_bps,
            "up": self.up,
            "admin_up": self.admin_up,
            "index": self.index,
        }


@dataclass(frozen=True)
class Found:
    """A device that answered: what it said about itself, what that identifies, its ports."""

    address: str
    sys_object_id: str
    sys_descr: str
    sys_name: str
    sys_location: str = ""
    sys_contact: str = ""
    serial: str = ""
    identity: Identity = field(default_factory=lambda: Identity("", "", OTHER))
    interfaces: tuple[FoundInterface, ...] = ()
    interfaces_error: str = ""

    @property
    def vendor(self) -> str:
        return self.identity.vendor

    @property
    def model(self) -> str:
        return self.identity.model

    @property
    def kind(self) -> str:
        return self.identity.kind


# What agents put in serial number fields when they have none; matching devices by one of
# these would merge different devices.
_NOT_SERIALS = frozenset(
    {"unknown", "none", "n/a", "na", "not specified", "not available", "default", "serial"}
)
_SERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{3,99}$")


def plausible_serial(text: str) -> str:
    """The serial number if it looks like one (4+ letters and digits, not a placeholder such
    as "N/A" or "000000"), else ""."""
    text = text.strip()
    if not _SERIAL_RE.match(text) or text.lower() in _NOT_SERIALS or len(set(text)) == 1:
        return ""
    return text


def _mac(value: SnmpValue) -> str:
    if not isinstance(value, bytes) or len(value) != 6 or not any(value):
        return ""
    return ":".join(f"{byte:02x}" for byte in value)


async def _interfaces(
    address: str, credentials: SnmpCredentials, port: int, timeout: float
) -> tuple[tuple[FoundInterface, ...], str]:
    # The device has just answered, so a lost packet here is worth one retry.
    probe, macs = await asyncio.gather(
        probe_snmp_interfaces(
            host=address,
            credentials=credentials,
            port=port,
            timeout=timeout,
            retries=1,
            max_interfaces=MAX_INTERFACES,
        ),
        snmp_walk(
            address,
            IF_PHYS_ADDRESS,
            credentials,
            port=port,
            timeout=timeout,
            retries=1,
            max_rows=MAX_INTERFACES,
        ),
    )
    prefix = IF_PHYS_ADDRESS + "."
    mac_of = {oid[len(prefix) :]: v for oid, v in macs.values.items() if oid.startswith(prefix)}
    interfaces = tuple(
        FoundInterface(
            index=row.index,
            name=(row.name or row.descr)[:200],
            mac=_mac(mac_of.get(str(row.index))),
            speed_bps=int(row.speed_bps) if row.speed_bps is not None else None,
            up=None if row.oper_status is None else row.oper_status == 1,
            admin_up=None if row.admin_status is None else row.admin_status == 1,
        )
        for row in probe.interfaces
    )
    return interfaces, "" if probe.ok else probe.message


async def _probe_one(
    address: str,
    credentials: SnmpCredentials,
    port: int,
    timeout: float,
    interfaces: bool,
    interfaces_budget: float,
) -> Found | None:
    reply = await snmp_get(
        address, IDENTITY_OIDS, credentials, port=port, timeout=timeout, retries=0
    )
    if not reply.ok or not reply.values:
        return None
    values = reply.values
    object_id = values.get(SYS_OBJECT_ID)
    object_id = object_id if isinstance(object_id, str) else ""
    descr = as_text(values.get(SYS_DESCR))
    found = Found(
        address=address,
        sys_object_id=object_id,
        sys_descr=descr,
        sys_name=as_text(values.get(SYS_NAME)),
        sys_location=as_text(values.get(SYS_LOCATION)),
        sys_contact=as_text(values.get(SYS_CONTACT)),
        serial=plausible_serial(as_text(values.get(ENT_SERIAL_1))),
        identity=describe(object_id, descr),
    )
    if not interfaces:
        return found
    try:
        async with asyncio.timeout(interfaces_budget):
            rows, error = await _interfaces(address, credentials, port, timeout)
    except TimeoutError:
        rows, error = (), f"interfaces not read within {interfaces_budget:g} s"
    return dataclasses.replace(found, interfaces=rows, interfaces_error=error)


async def sweep(
    *,
    addresses: Iterable[str],
    credentials: SnmpCredentials,
    port: int = 161,
    timeout: float = 1.0,
    concurrency: int = 64,
    interfaces: bool = True,
    interfaces_budget: float = 60.0,
) -> list[Found]:
    """Asks every address for its identity (one GET, no retries), at most `concurrency` at a
    time, then walks the interfaces of those that answered. Returns what answered, in the
    order of `addresses`; never raises for network trouble.

    Each request is bounded by the probe module's own deadline, an interface walk by
    `interfaces_budget`, so a sweep of n addresses ends within about
    n / concurrency x (timeout + 2 s) plus the walks of the devices found.
    """
    if credentials.problem():
        return []
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(address: str) -> Found | None:
        async with limit:
            try:
                return await _probe_one(
                    address, credentials, port, timeout, interfaces, interfaces_budget
                )
            except Exception:
                # The probe module turns network trouble into replies; anything else is a bug
                # with this one device's answer, which must not cost the rest of the sweep.
                log.exception("discovery of %s failed", address)
                return None

    results = await asyncio.gather(*(one(str(address)) for address in addresses))
    return [found for found in results if found is not None]


# pysnmp keeps one engine per process, rebuilt when a new event loop uses it (see the probe
# module). Two sweeps in two worker threads at once would each replace the other's engine, so
# sweeps in one process take turns.
_SWEEP_LOCK = threading.Lock()


def sweep_blocking(
    *,
    addresses: Iterable[str],
    credentials: SnmpCredentials,
    port: int = 161,
    timeout: float = 1.0,
    concurrency: int = 64,
    interfaces: bool = True,
    interfaces_budget: float = 60.0,
) -> list[Found]:
    """`sweep` in a fresh event loop, from synchronous code (a worker's task); sweeps of one
    process run one after the other. The loop's SNMP socket is closed at the end."""

    async def main() -> list[Found]:
        try:
            return await sweep(
                addresses=addresses,
                credentials=credentials,
                port=port,
                timeout=timeout,
                concurrency=concurrency,
                interfaces=interfaces,
                interfaces_budget=interfaces_budget,
            )
        finally:
            with contextlib.suppress(Exception):
                snmp_engine().close_dispatcher()

    with _SWEEP_LOCK:
        return asyncio.run(main())
