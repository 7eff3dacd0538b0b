"""The real agent process against the real server: enrol with the command the UI prints, report,
inventory, config; then the server becomes unreachable, the agent buffers on disk, and after the
outage every report arrives exactly once, in order.

The outage is real: the agent talks to the server through a TCP relay on loopback that the test
stops (connection refused) and starts again on the same port.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from onestop.assets.models import InventoryChange
from onestop.metrics import selectors as metric_selectors
from onestop.monitoring import services
from onestop.monitoring.models import Agent, AgentReport
from tests import factories
from tests.conftest import require_peer

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
AGENT = Path(sys.executable).with_name("onestop-agent")


class _Relay(socketserver.ThreadingTCPServer):
    """Forwards each connection to the upstream address, byte for byte, both ways."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        super().__init__(("127.0.0.1", port), _Pipe)


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with socket.create_connection(self.server.upstream) as upstream:  # type: ignore[attr-defined]
            pump = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
            pump.start()
            _copy(self.request, upstream)
            pump.join(timeout=10)


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass  # the other side went away: the connection is over
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


class Relay:
    """A relay that can be taken down and brought back on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.upstream = upstream
        self.server: _Relay | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self.server = _Relay(self.port, self.upstream)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None


def _agent(state: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [str(AGENT), *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture
def relay(live_server):
    host, port = live_server.url.removeprefix("http://").split(":")
    relay = Relay((host, int(port)))
    relay.up()
    yield relay
    if relay.server is not None:
        relay.down()


def test_enrol_report_survive_an_outage_and_replay_exactly_once(transactional_db, relay, tmp_path):
    assert AGENT.exists(), "make dev installs the agent into the environment"
    admin = factories.user("admin", username="boss")
    customer = factories.customer(name="上海甲方科技", short_code="SHJF")
    site = factories.site(customer, name="徐汇总部")
    _token, raw = services.enrollment_token_create(actor=admin, site=site)
    state = tmp_path / "agent"

    enrolled = _agent(state, "enroll", "--server", relay.url, "--token", raw)
    assert enrolled.returncode == 0, enrolled.stderr
    agent = Agent.objects.get()
    assert agent.device.site == site

    first = _agent(state, "run", "--once")
    assert first.returncode == 0, first.stderr
    agent.refresh_from_db()
    assert agent.last_seq == 1
    device = agent.device
    device.refresh_from_db()
    assert device.inventory_at is not None and device.hostname == socket.gethostname()
    assert metric_selectors.series_list(source_id=device.pk).filter(name="cpu.percent").exists()

    # The server is unreachable: three runs keep their reports on disk.
    relay.down()
    for _ in range(3):
        offline = _agent(state, "run", "--once")
        assert offline.returncode == 1, offline.stderr
    assert AgentReport.objects.count() == 1
    assert "3 report(s) kept in the buffer" in offline.stderr + offline.stdout

    # Back again: the buffer goes first, oldest first, then the new report.
    relay.up()
    back = _agent(state, "run", "--once")
    assert back.returncode == 0, back.stderr
    reports = list(AgentReport.objects.order_by("received_at", "id").values_list("seq", flat=True))
    assert reports == [1, 2, 3, 4, 5]
    assert len(set(AgentReport.objects.values_list("report_id", flat=True))) == 5
    agent.refresh_from_db()
    assert (agent.last_seq, agent.dropped_reports) == (5, 0)
    # Every report's CPU sample is stored once: five points, one per report.
    now = time.time()
    points = metric_selectors.series_query(
        source_id=device.pk, name="cpu.percent", start=now - 600, end=now + 60
    )
    assert sum(len(series.points) for series in points) == 5
    assert not InventoryChange.objects.filter(device=device).exists()  # same machine, no change

    # Revoked: the agent is refused and stops with its own exit status.
    services.agent_revoke(actor=admin, agent=agent)
    refused = _agent(state, "run", "--once")
    assert refused.returncode == 3
    assert "revoked" in (refused.stderr + refused.stdout).lower()


def test_the_standalone_binary_enrols(transactional_db, relay, tmp_path):
    """The PyInstaller build of the agent, as customers' machines get it: it starts, says one
    clear line when the server cannot be reached, then enrols and reports (built by
    `make agent-binary`; CI builds it before the suite)."""
    binary = Path(__file__).resolve().parents[2] / "agent" / "dist" / "onestop-agent"
    require_peer(binary.exists(), "agent/dist/onestop-agent not built: make agent-binary")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(binary), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )

    shown = run("--help")
    assert shown.returncode == 0 and "enroll" in shown.stdout
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = run(
        "enroll", "--server", f"http://127.0.0.1:{closed_port}", "--token", "et_x",
        "--state-dir", str(tmp_path / "nowhere"),
    )  # fmt: skip
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("onestop-agent: enrolment failed: cannot reach")
    assert unreachable.stderr.count("\n") == 1

    admin = factories.user("admin", username="boss")
    site = factories.site(factories.customer(name="苏州乙方", short_code="SZYF"), name="工厂")
    _token, raw = services.enrollment_token_create(actor=admin, site=site)
    state = tmp_path / "binary-agent"
    for args in (("enroll", "--server", relay.url, "--token", raw), ("run", "--once")):
        done = run(*args, "--state-dir", str(state))
        assert done.returncode == 0, done.stderr
    assert Agent.objects.get().last_seq == 1
