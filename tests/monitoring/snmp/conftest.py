"""Real SNMP agents for the SNMP probe tests: snmpsim (recorded devices) and Debian's snmpd.

Both bind 127.0.0.1 on a free UDP port for the whole session. snmpsim serves a handful of
recordings (one community per file name): our own `onestop-counters` (a 32-bit counter that
wraps every ~2 s, a 64-bit one near 2**64) and trimmed copies of real Cisco, Huawei and H3C
devices from the snmpsim-data package. snmpd serves this machine's HOST-RESOURCES and UCD data.
"""

from __future__ import annotations

import asyncio
import bz2
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from onestop.monitoring.probes.snmp import SYS_UPTIME, SnmpCredentials, snmp_get
from tests.conftest import require_peer

DATA = Path(__file__).parent / "data"
# Real devices from snmpsim-data, trimmed to the subtrees the probes read: indexing a full
# recording (up to millions of lines) would take minutes, these take well under a second.
VENDOR_RECORDINGS = {
    "cisco-c3750": "network/switch/cisco-c3750.snmprec.bz2",
    "huawei-s5720": "network/router/huawei-s5720.snmprec.bz2",
    "h3c-e528-2": "network/switch/h3c-e528-2.snmprec.bz2",
}
KEEP_PREFIXES = (
    "1.3.6.1.2.1.1.",  # system
    "1.3.6.1.2.1.2.",  # interfaces (ifTable)
    "1.3.6.1.2.1.25.",  # HOST-RESOURCES-MIB
    "1.3.6.1.2.1.31.1.1.1.",  # ifXTable
    "1.3.6.1.4.1.9.9.48.",  # CISCO-MEMORY-POOL-MIB
    "1.3.6.1.4.1.9.9.109.",  # CISCO-PROCESS-MIB
    "1.3.6.1.4.1.2011.5.25.31.",  # HUAWEI-ENTITY-EXTENT-MIB
    "1.3.6.1.4.1.25506.2.6.",  # HH3C-ENTITY-EXT-MIB
)

V3_USER = "onestop-v3"
V3_AUTH_KEY = "auth-secret-1"
V3_PRIV_KEY = "priv-secret-1"


@dataclass(frozen=True)
class Agent:
    host: str
    port: int
    v3_user: str = V3_USER
    v3_auth_key: str = V3_AUTH_KEY
    v3_priv_key: str = V3_PRIV_KEY

    def v3(self, **overrides: str) -> SnmpCredentials:
        """SHA + AES-128 authPriv credentials for this agent; override any field."""
        fields = {
            "auth_protocol": "SHA",
            "auth_key": self.v3_auth_key,
            "priv_protocol": "AES",
            "priv_key": self.v3_priv_key,
        }
        fields.update(overrides)
        user = fields.pop("user", self.v3_user)
        return SnmpCredentials.v3(user, **fields)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(agent_host: str, port: int, credentials: SnmpCredentials, proc, log: Path):
    """Polls the agent with a real GET until it answers; fails with its log if it never does."""

    async def poll() -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            reply = await snmp_get(
                agent_host, [SYS_UPTIME], credentials, port=port, timeout=0.5, retries=0
            )
            if reply.ok:
                return True
            await asyncio.sleep(0.2)
        return False

    if not asyncio.run(poll()):
        _stop(proc)
        text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        pytest.fail(f"SNMP agent on port {port} did not start:\n{text}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _trim(source: Path, target: Path) -> None:
    with bz2.open(source, "rt", encoding="latin-1") as lines:
        kept = [line for line in lines if line.startswith(KEEP_PREFIXES)]
    target.write_text("".join(kept), encoding="latin-1")


@pytest.fixture(scope="session")
def snmpsim_agent(tmp_path_factory) -> Agent:
    import snmpsim_data

    root = tmp_path_factory.mktemp("snmpsim")
    data = root / "data"
    data.mkdir()
    shutil.copy(DATA / "onestop-counters.snmprec", data)
    recordings = Path(snmpsim_data.__file__).parent / "data"
    for name, relative in VENDOR_RECORDINGS.items():
        _trim(recordings / relative, data / f"{name}.snmprec")
    port = free_udp_port()
    log = root / "snmpsim.log"
    env = dict(os.environ)
    # snmpsim refuses to run as root unless told otherwise; it would then need a user to drop
    # to who can read this interpreter and the venv, which root-owned CI images do not have.
    # It only listens on 127.0.0.1 for the test session, so staying root is harmless.
    env["SNMPSIM_ALLOW_ROOT"] = "true"
    command = [
        sys.executable,
        "-c",
        "import sys; from snmpsim.commands.responder import main; sys.exit(main())",
        f"--data-dir={data}",
        f"--cache-dir={root / 'cache'}",
        f"--agent-udpv4-endpoint=127.0.0.1:{port}",
        f"--logging-method=file:{log}",
        "--log-level=error",
        f"--v3-user={V3_USER}",
        "--v3-auth-proto=SHA",
        f"--v3-auth-key={V3_AUTH_KEY}",
        "--v3-priv-proto=AES",
        f"--v3-priv-key={V3_PRIV_KEY}",
    ]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"), cwd=root
    )
    agent = Agent("127.0.0.1", port)
    _wait_ready(agent.host, port, SnmpCredentials.v2c("onestop-counters"), proc, log)
    yield agent
    _stop(proc)


def snmpd_path() -> str | None:
    found = shutil.which("snmpd")
    return found or ("/usr/sbin/snmpd" if os.path.exists("/usr/sbin/snmpd") else None)


SNMPD_COMMUNITY = "onestop-ro"


@pytest.fixture(scope="session")
def snmpd_agent(tmp_path_factory) -> Agent:
    binary = snmpd_path()
    require_peer(binary is not None, "snmpd is not installed (apt-get install snmpd)")
    root = tmp_path_factory.mktemp("snmpd")
    port = free_udp_port()
    conf = root / "snmpd.conf"
    conf.write_text(
        f"rocommunity {SNMPD_COMMUNITY} 127.0.0.1\n"
        f'createUser {V3_USER} SHA "{V3_AUTH_KEY}" AES "{V3_PRIV_KEY}"\n'
        f"rouser {V3_USER} priv\n"
        "sysName onestop-snmpd-test\n"
        "sysLocation OneStop test suite\n"
    )
    log = root / "snmpd.log"
    env = dict(os.environ)
    # Keep snmpd's engine boots/ID state out of /var/lib/snmp.
    env["SNMP_PERSISTENT_DIR"] = str(root / "state")
    (root / "state").mkdir()
    # -f foreground, -Lo log to stdout, -C only our config file; the address argument is
    # the only listening endpoint.
    command = [binary, "-f", "-Lo", "-C", "-c", str(conf), f"udp:127.0.0.1:{port}"]
    proc = subprocess.Popen(
        command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=root
    )
    agent = Agent("127.0.0.1", port)
    _wait_ready(agent.host, port, SnmpCredentials.v2c(SNMPD_COMMUNITY), proc, log)
    yield agent
    _stop(proc)
