"""The SNMP trap receiver the poller runs: SNMP v1/v2c notifications (traps and informs) and
SNMPv3 traps and informs on a configurable UDP address, accepted only with a community or a v3
user of the stored SNMP credentials (a v3 trap only from a sender engine id named on them, a v3
inform addressed to the receiver's own engine id).

Plain asyncio and pysnmp, no Django: the poller hands it the communities and stores what it
receives (monitoring.services.snmp_traps_record). A notification with an unknown community is
dropped by pysnmp and counted there, like any agent does: it is unauthenticated.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto.api import v2c
from pysnmp.proto.rfc1902 import OctetString

from onestop.monitoring.probes.snmp import SnmpCredentials

log = logging.getLogger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
MAX_VARIABLES = 100
MAX_VALUE = 500
# pysnmp's IANA enterprise number, which the engine ids it makes up carry too.
PYSNMP_ENTERPRISE = 20408
SECURITY_LEVELS = {"noAuthNoPriv": 1, "authNoPriv": 2, "authPriv": 3}


@dataclass(frozen=True)
class ReceivedTrap:
    """One notification as it arrived."""

    source: str
    version: str  # "1", "2c" or "3"
    # The stored credentials whose community it carried (several may share one community).
    credential_ids: tuple[int, ...]
    trap_oid: str
    uptime_s: float | None
    variables: dict[str, str] = field(default_factory=dict)
    received_at: float = field(default_factory=time.time)
    sender: str = ""  # the v3 user


def parse_listen(value: str) -> tuple[str, int]:
    """ "host:port" (or "[v6]:port") to (host, port); raises ValueError with the reason."""
    host, colon, port = value.strip().rpartition(":")
    if not colon or not host:
        raise ValueError("must be host:port, e.g. 0.0.0.0:162")
    host = host.strip("[]")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("the port must be a number from 1 to 65535")
    return host, int(port)


def engine_id_for(seed: str) -> bytes:
    """A stable RFC 3411 SNMP engine id for `seed`: pysnmp's enterprise number, format 5
    (octets) and 12 bytes of the seed's SHA-256, so the seed itself is never sent."""
    digest = hashlib.sha256(seed.encode()).digest()
    return (0x80000000 | PYSNMP_ENTERPRISE).to_bytes(4, "big") + b"\x05" + digest[:12]


@contextlib.contextmanager
def _temporary_files_in(folder: str | None) -> Iterator[None]:
    """pysnmp keeps an engine's boot counter (RFC 3414 wants it to grow across restarts, for
    the same engine id) under the temporary folder, which a service's PrivateTmp empties at
    every start: point it at a folder that lasts, while the engine is made (before any other
    thread of the poller writes temporary files)."""
    if folder is None:
        yield
        return
    os.makedirs(folder, mode=0o700, exist_ok=True)
    previous, tempfile.tempdir = tempfile.tempdir, folder
    try:
        yield
    finally:
        tempfile.tempdir = previous


class _Receiver(ntfrcv.NotificationReceiver):
    """pysnmp's notification receiver, asking `accept` before it acknowledges an inform or
    hands a notification on: a refused inform gets no answer, as with wrong keys."""

    def __init__(
        self, snmp_engine: engine.SnmpEngine, callback: Callable, accept: Callable
    ) -> None:
        super().__init__(snmp_engine, callback)
        self._accept = accept

    def process_pdu(
        self,
        snmp_engine: Any,
        mp_model: int,
        security_model: int,
        security_name: Any,
        security_level: int,
        context_engine_id: Any,
        context_name: Any,
        pdu_version: int,
        pdu: Any,
        max_size: int,
        state_reference: Any,
    ) -> None:
        if self._accept(security_model, security_level, pdu):
            super().process_pdu(
                snmp_engine,
                mp_model,
                security_model,
                security_name,
                security_level,
                context_engine_id,
                context_name,
                pdu_version,
                pdu,
                max_size,
                state_reference,
            )


class TrapReceiver:
    """Listens on one UDP address inside the running event loop, as the SNMP engine
    `engine_id` (pysnmp makes one up when None: SNMPv3 informs then reach it only until the
    next restart)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        on_trap: Callable[[ReceivedTrap], None],
        engine_id: bytes | None = None,
        state_dir: str | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._on_trap = on_trap
        self._engine_id = engine_id
        self._state_dir = state_dir
        self._engine: engine.SnmpEngine | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self._communities: dict[str, tuple[int, ...]] = {}
        self._v3_users: dict[int, tuple[SnmpCredentials, tuple[bytes, ...]]] = {}
        self._v3_entries: list[tuple[str, bytes]] = []
        # pysnmp's security name -> credential ids, for communities and for v3 users.
        self._v1_index: dict[str, tuple[int, ...]] = {}
        self._v3_index: dict[tuple[str, bytes], tuple[int, ...]] = {}
        # The security level of the keys each v3 user was added with: pysnmp checks a message's
        # against it only as the authoritative engine (informs), so a trap could name a user
        # without using its keys (noAuthNoPriv).
        self._v3_levels: dict[tuple[str, bytes], int] = {}
        self._last_security_name = ""
        self._last_v3 = False
        self._last_user = ""
        self._last_engine_id = b""
        self.received = 0

    @property
    def port(self) -> int:
        """The port actually bound (the one asked for, or the system's choice for 0)."""
        return self._port

    @property
    def engine_id(self) -> bytes:
        """The receiver's SNMP engine id, which devices sending SNMPv3 informs address."""
        assert self._engine_id is not None, "open() first"
        return self._engine_id

    def open(self) -> None:
        """Binds the address (call inside the running loop); raises OSError when it cannot,
        e.g. the port is taken or below 1024 without the right to bind it."""
        ipv6 = ":" in self._host
        # Bound here rather than by pysnmp, which binds later in a task: a taken port must
        # fail now, with its reason, not silently afterwards.
        sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        with _temporary_files_in(self._state_dir):
            self._engine = engine.SnmpEngine(
                snmpEngineID=OctetString(self._engine_id) if self._engine_id else None
            )
        self._engine_id = bytes(self._engine.snmpEngineID)
        log.info("SNMP engine id of the trap receiver: %s", self._engine_id.hex())
        transport = (udp6.Udp6AsyncioTransport if ipv6 else udp.UdpAsyncioTransport)()
        config.add_transport(
            self._engine,
            udp6.DOMAIN_NAME if ipv6 else udp.DOMAIN_NAME,
            transport.open_server_mode(sock=sock),
        )
        # Which community a message carried: the receiver's callback is not told.
        self._engine.observer.register_observer(
            self._remember_sender, "rfc2576.processIncomingMsg", "rfc3414.processIncomingMsg"
        )
        self._receiver = _Receiver(self._engine, self._received, self._accept)

    def communities_set(self, communities: Mapping[int, str]) -> None:
        """Accepts exactly these communities from now on (credential id -> community)."""
        assert self._engine is not None, "open() first"
        by_community: dict[str, list[int]] = {}
        for credential_id, community in communities.items():
            if community:
                by_community.setdefault(community, []).append(credential_id)
        wanted = {community: tuple(sorted(ids)) for community, ids in by_community.items()}
        if wanted == self._communities:
            return
        for index in self._v1_index:
            config.delete_v1_system(self._engine, index)
        self._v1_index = {}
        for number, (community, ids) in enumerate(sorted(wanted.items())):
            index = f"trap-community-{number}"
            config.add_v1_system(self._engine, index, community)
            self._v1_index[index] = ids
        self._communities = wanted

    def users_set(self, users: Mapping[int, tuple[SnmpCredentials, list[bytes]]]) -> None:
        """Accepts SNMPv3 notifications from exactly these users from now on (credential id
        -> (credentials, the engine ids of the devices that send traps with them)). A v3 trap
        is authenticated with its sender's engine id, so only the named senders are heard; an
        inform with the receiver's own (the sender discovers it first), so every user is."""
        assert self._engine is not None, "open() first"
        wanted = {cid: (cred, tuple(ids)) for cid, (cred, ids) in users.items()}
        if wanted == self._v3_users:
            return
        for user, engine_id in self._v3_entries:
            config.delete_v3_user(self._engine, user, securityEngineId=OctetString(engine_id))
        self._v3_entries = []
        self._v3_index = {}
        self._v3_levels = {}
        keys_of: dict[tuple[str, bytes], tuple] = {}
        owner: dict[tuple[str, bytes], int] = {}
        shadowed: dict[int, int] = {}
        # By id, so the oldest credentials keep a user name when a newer one reuses it.
        for credential_id, (credentials, engine_ids) in sorted(wanted.items()):
            if credentials.problem() or credentials.version != "3":
                continue
            keys = (
                credentials.auth_protocol_id(),
                credentials.auth_key,
                credentials.priv_protocol_id(),
                credentials.priv_key,
            )
            for engine_id in dict.fromkeys((*engine_ids, self.engine_id)):
                key = (credentials.user, engine_id)
                if key not in keys_of:
                    config.add_v3_user(
                        self._engine,
                        credentials.user,
                        authProtocol=credentials.auth_protocol_id(),
                        authKey=credentials.auth_key or None,
                        privProtocol=credentials.priv_protocol_id(),
                        privKey=credentials.priv_key or None,
                        securityEngineId=OctetString(engine_id),
                    )
                    self._v3_entries.append(key)
                    keys_of[key], owner[key] = keys, credential_id
                    self._v3_levels[key] = SECURITY_LEVELS[credentials.security_level]
                elif keys_of[key] != keys:
                    # pysnmp holds one user per (engine id, user name), and a message names
                    # only those: credentials reusing a name with other keys cannot be added
                    # beside it, so what is sent with their keys is dropped.
                    shadowed[credential_id] = owner[key]
                    continue
                # Credentials sharing name and keys are told apart by nothing: it names all.
                self._v3_index[key] = (*self._v3_index.get(key, ()), credential_id)
        for credential_id, kept in shadowed.items():
            log.warning(
                "SNMPv3 credentials %d have the user name of credentials %d with other keys: "
                "informs (and traps from engine ids both name) sent with their keys are dropped",
                credential_id,
                kept,
            )
        self._v3_users = wanted

    def close(self) -> None:
        if self._engine is not None:
            if self._receiver is not None:
                self._receiver.close(self._engine)
            self._engine.close_dispatcher()
            self._engine = None

    def _remember_sender(self, _engine: Any, point: str, variables: Mapping, _ctx: Any) -> None:
        self._last_security_name = str(variables.get("securityName", ""))
        self._last_v3 = "3414" in point
        # pysnmp gives b"" (not an OctetString) for a message without a user name.
        user = variables.get("userName") if self._last_v3 else None
        self._last_user = str(user) if user else ""
        self._last_engine_id = (
            bytes(variables.get("securityEngineId", b"")) if self._last_v3 else b""
        )

    def _accept(self, security_model: int, security_level: int, pdu: Any) -> bool:
        """Whether a notification pysnmp let through is one of ours: pysnmp passes a v3 trap
        without a user name or naming a user without its keys, and either kind under any
        engine id it knows the user under."""
        if security_model != 3:
            return True  # a community pysnmp knows
        key = (self._last_user, self._last_engine_id)
        inform = pdu.tagSet == v2c.InformRequestPDU.tagSet
        return (
            key in self._v3_index
            and security_level >= self._v3_levels[key]
            # A trap comes from a named sender engine, an inform to this one.
            and inform == (self._last_engine_id == self.engine_id)
        )

    def _received(
        self,
        snmp_engine: Any,
        state_reference: Any,
        _context_engine_id: Any,
        _context_name: Any,
        var_binds: Iterable,
        _ctx: Any,
    ) -> None:
        try:
            _domain, address = snmp_engine.message_dispatcher.get_transport_info(state_reference)
            variables: dict[str, str] = {}
            for name, value in list(var_binds)[:MAX_VARIABLES]:
                variables[str(name)] = value.prettyPrint()[:MAX_VALUE]
            uptime = variables.pop(SYS_UPTIME, None)
            version = "3" if self._last_v3 else "2c" if SNMP_TRAP_OID in variables else "1"
            trap = ReceivedTrap(
                source=str(address[0]),
                version=version,
                sender=self._last_user,
                credential_ids=self._v3_index[(self._last_user, self._last_engine_id)]
                if self._last_v3
                else self._v1_index.get(self._last_security_name, ()),
                trap_oid=variables.pop(SNMP_TRAP_OID, ""),
                uptime_s=int(uptime) / 100 if uptime and uptime.isdigit() else None,
                variables=variables,
            )
        except Exception:
            # A malformed notification must not stop the receiver (nor the poller around it).
            log.exception("an SNMP notification could not be read")
            return
        self.received += 1
        self._on_trap(trap)
