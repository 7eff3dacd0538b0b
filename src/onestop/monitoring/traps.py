"""The SNMP trap receiver the poller runs: SNMP v1/v2c notifications (traps and informs) and
SNMPv3 traps on a configurable UDP address, accepted only with a community or a v3 user of the
stored SNMP credentials (a v3 trap only from a sender engine id named on them).

Plain asyncio and pysnmp, no Django: the poller hands it the communities and stores what it
receives (monitoring.services.snmp_traps_record). A notification with an unknown community is
dropped by pysnmp and counted there, like any agent does: it is unauthenticated.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto.rfc1902 import OctetString

from onestop.monitoring.probes.snmp import SnmpCredentials

log = logging.getLogger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
MAX_VARIABLES = 100
MAX_VALUE = 500


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


class TrapReceiver:
    """Listens on one UDP address inside the running event loop."""

    def __init__(self, *, host: str, port: int, on_trap: Callable[[ReceivedTrap], None]) -> None:
        self._host, self._port = host, port
        self._on_trap = on_trap
        self._engine: engine.SnmpEngine | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self._communities: dict[str, tuple[int, ...]] = {}
        self._v3_users: dict[int, tuple[SnmpCredentials, tuple[bytes, ...]]] = {}
        self._v3_entries: list[tuple[str, bytes]] = []
        # pysnmp's security name -> credential ids, for communities and for v3 users.
        self._v1_index: dict[str, tuple[int, ...]] = {}
        self._v3_index: dict[tuple[str, bytes], tuple[int, ...]] = {}
        self._last_security_name = ""
        self._last_user = ""
        self._last_engine_id = b""
        self.received = 0

    @property
    def port(self) -> int:
        """The port actually bound (the one asked for, or the system's choice for 0)."""
        return self._port

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
        self._engine = engine.SnmpEngine()
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
        self._receiver = ntfrcv.NotificationReceiver(self._engine, self._received)

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
        """Accepts SNMPv3 traps from exactly these users from now on (credential id ->
        (credentials, the engine ids of the devices that send traps with them): a v3 trap is
        authenticated with its sender's engine id, so only the named senders are heard)."""
        assert self._engine is not None, "open() first"
        wanted = {cid: (cred, tuple(ids)) for cid, (cred, ids) in users.items()}
        if wanted == self._v3_users:
            return
        for user, engine_id in self._v3_entries:
            config.delete_v3_user(self._engine, user, securityEngineId=OctetString(engine_id))
        self._v3_entries = []
        self._v3_index = {}
        for credential_id, (credentials, engine_ids) in wanted.items():
            if credentials.problem() or credentials.version != "3":
                continue
            for engine_id in engine_ids:
                key = (credentials.user, engine_id)
                if key not in self._v3_index:
                    # pysnmp keys a v3 user by (engine id, user name) and accepts notifications
                    # only under the user's own name as security name: credentials sharing
                    # both are told apart by nothing, so the trap names them all.
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
                self._v3_index[key] = (*self._v3_index.get(key, ()), credential_id)
        self._v3_users = wanted

    def close(self) -> None:
        if self._engine is not None:
            if self._receiver is not None:
                self._receiver.close(self._engine)
            self._engine.close_dispatcher()
            self._engine = None

    def _remember_sender(self, _engine: Any, point: str, variables: Mapping, _ctx: Any) -> None:
        self._last_security_name = str(variables.get("securityName", ""))
        v3 = "3414" in point
        self._last_user = str(variables.get("userName", "")) if v3 else ""
        self._last_engine_id = bytes(variables.get("securityEngineId", b"")) if v3 else b""

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
            version = "3" if self._last_user else "2c" if SNMP_TRAP_OID in variables else "1"
            trap = ReceivedTrap(
                source=str(address[0]),
                version=version,
                sender=self._last_user,
                credential_ids=self._v3_index.get((self._last_user, self._last_engine_id), ())
                if self._last_user
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
