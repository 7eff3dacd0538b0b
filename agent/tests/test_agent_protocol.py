"""The agent against a real loopback HTTP(S) server that plays the server side of the protocol."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import AGENT_ID, GOOD_TOKEN, PROTOCOL_METRICS, SECRET, FakeServer, TlsFiles

from onestop_agent import __version__, cli, state, system
from onestop_agent.runner import Agent, Backoff, Stop
from onestop_agent.spool import Spool


def make_agent(state_dir: Path, **kwargs: object) -> Agent:
    return Agent(state_dir, state.load(state_dir), system.current(), **kwargs)


def enroll_error(*argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(["enroll", *argv])
    # A string SystemExit prints on stderr and exits 1.
    assert isinstance(exc.value.code, str)
    return exc.value.code


def test_enroll_stores_state_0600(server: FakeServer, tmp_path: Path, capsys) -> None:
    state_dir = tmp_path / "st"

    cli.main(
        [
            "enroll",
            "--server",
            server.url + "/",
            "--token",
            GOOD_TOKEN,
            "--state-dir",
            str(state_dir),
        ]
    )

    assert "enrolled as agent 17 (device 42)" in capsys.readouterr().out
    sent = server.requests_to("/api/agent/v1/enroll")[0]
    assert sent.headers["user-agent"] == f"onestop-agent/{__version__}"
    assert sent.body["token"] == GOOD_TOKEN
    assert sent.body["agent_version"] == __version__
    assert sent.body["machine_id"] == system.current().machine_id()
    assert sent.body["hostname"] == socket.gethostname()
    path = state_dir / state.STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["server"] == server.url
    assert (saved["agent_id"], saved["secret"], saved["seq"]) == (AGENT_ID, SECRET, 0)
    assert saved["config"]["version"] == "v1"


def test_enroll_with_bad_token_says_so(server: FakeServer, tmp_path: Path) -> None:
    message = enroll_error(
        "--server", server.url, "--token", "et_old", "--state-dir", str(tmp_path)
    )

    assert message == (
        "onestop-agent: enrolment failed: the token is invalid or expired (create a new one)"
    )
    assert not (tmp_path / state.STATE_FILE).exists()


def test_enroll_unreachable_server_is_one_clean_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    message = enroll_error(
        "--server", f"http://127.0.0.1:{port}", "--token", "t", "--state-dir", str(tmp_path)
    )

    assert message.startswith("onestop-agent: enrolment failed: cannot reach http://127.0.0.1:")
    assert "\n" not in message


def test_enroll_rejects_a_non_http_server(tmp_path: Path) -> None:
    message = enroll_error("--server", "ftp://x", "--token", "t", "--state-dir", str(tmp_path))
    assert "http:// or https://" in message


def test_enroll_through_proxy(server: FakeServer, tmp_path: Path) -> None:
    # The fake server acts as the proxy: it sees the absolute URL in the request line.
    cli.main(
        ["enroll", "--server", "http://onestop.invalid", "--token", GOOD_TOKEN,
         "--proxy", server.url, "--state-dir", str(tmp_path)]
    )  # fmt: skip

    assert server.received[0].request_line == "http://onestop.invalid/api/agent/v1/enroll"
    assert state.load(tmp_path).proxy == server.url


def test_ca_bundle_accepted_and_refused_without(
    tls_server: FakeServer, tls_files: TlsFiles, tmp_path: Path
) -> None:
    message = enroll_error(
        "--server",
        tls_server.url,
        "--token",
        GOOD_TOKEN,
        "--state-dir",
        str(tmp_path / "a"),
    )
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert "--ca-bundle" in message

    state_dir = tmp_path / "b"
    cli.main(
        ["enroll", "--server", tls_server.url, "--token", GOOD_TOKEN,
         "--ca-bundle", str(tls_files.cert), "--state-dir", str(state_dir)]
    )  # fmt: skip

    saved = state.load(state_dir)
    # The bundle is copied next to the state, so the operator's file may go.
    assert Path(saved.ca_bundle) == (state_dir / state.CA_BUNDLE_FILE).resolve()
    assert Path(saved.ca_bundle).read_bytes() == tls_files.cert.read_bytes()
    assert make_agent(state_dir).run_once() is True
    assert [r["seq"] for r in tls_server.reports()] == [1]


def test_run_once_pulls_config_sends_inventory_and_report(
    server: FakeServer, enrolled_dir: Path
) -> None:
    server.config = {**server.config, "watch_processes": ["no-such-process-x"]}

    assert make_agent(enrolled_dir).run_once() is True

    paths = [r.path for r in server.received]
    assert paths == [
        "/api/agent/v1/enroll",
        "/api/agent/v1/config",
        "/api/agent/v1/inventory",
        "/api/agent/v1/report",
    ]
    for sent in server.received[1:]:
        assert sent.headers["authorization"] == f"Agent {AGENT_ID}:{SECRET}"
        assert sent.headers["user-agent"] == f"onestop-agent/{__version__}"
    inventory = server.requests_to("/api/agent/v1/inventory")[0].body
    assert inventory["machine_id"] == system.current().machine_id()
    (report,) = server.reports()
    assert report["seq"] == 1
    assert len(report["report_id"]) == 32
    assert report["dropped"] == 0
    assert report["heartbeat"]["agent_version"] == __version__
    assert {s[1] for s in report["samples"]} <= PROTOCOL_METRICS
    assert [s[3] for s in report["samples"] if s[1] == "process.up"] == [0.0]
    # After one second the NIC rates have a baseline.
    assert any(s[1] == "net.rx_bps" for s in report["samples"])
    assert state.load(enrolled_dir).seq == 1


def test_outage_then_replay_in_order(server: FakeServer, enrolled_dir: Path) -> None:
    agent = make_agent(enrolled_dir)
    server.report_status = 503
    for _ in range(3):
        assert agent.cycle(force=True) is False
    assert len(agent.spool) == 3

    server.report_status = 200
    assert agent.exchange(force=True) is True

    assert [r["seq"] for r in server.reports()] == [1, 2, 3]
    assert len(agent.spool) == 0


def test_outage_survives_restart(server: FakeServer, enrolled_dir: Path) -> None:
    server.report_status = 429
    first = make_agent(enrolled_dir)
    first.cycle(force=True)
    first.cycle(force=True)

    server.report_status = 200
    again = make_agent(enrolled_dir)
    assert again.cycle(force=True) is True

    assert [r["seq"] for r in server.reports()] == [1, 2, 3]


def test_lost_acknowledgement_is_stored_once(server: FakeServer, enrolled_dir: Path) -> None:
    agent = make_agent(enrolled_dir)
    server.report_status, server.store_then_fail = 502, True
    agent.cycle(force=True)

    server.report_status, server.store_then_fail = 200, False
    agent.exchange(force=True)

    attempts = [r.body["report_id"] for r in server.requests_to("/api/agent/v1/report")]
    assert len(attempts) == 2
    assert attempts[0] == attempts[1]
    assert len(server.reports()) == 1
    assert len(agent.spool) == 0


def test_dropped_count_sent_with_next_report_then_reset(
    server: FakeServer, enrolled_dir: Path
) -> None:
    spool = Spool(enrolled_dir / "spool", max_reports=2)
    agent = make_agent(enrolled_dir, spool=spool)
    server.report_status = 503
    for _ in range(4):
        agent.cycle(force=True)
    assert spool.dropped == 2

    server.report_status = 200
    # Adding report 5 drops report 3: three drops travel with report 4, the oldest left.
    agent.cycle(force=True)

    assert [(r["seq"], r["dropped"]) for r in server.reports()] == [(4, 3), (5, 0)]
    assert spool.dropped == 0
    assert Spool(enrolled_dir / "spool").dropped == 0


def test_reenroll_stops_and_keeps_the_spool(server: FakeServer, enrolled_dir: Path) -> None:
    agent = make_agent(enrolled_dir)
    agent.cycle(force=True)
    # A clone restored from an older copy of the state reuses seq 1 with a new report_id.
    clone_state = state.load(enrolled_dir)
    clone_state.seq = 0
    state.save(enrolled_dir, clone_state)
    clone = make_agent(enrolled_dir, spool=Spool(enrolled_dir / "clone-spool"))

    with pytest.raises(Stop, match="clone"):
        clone.cycle(force=True)

    assert len(clone.spool) == 1
    assert len(server.reports()) == 1


def test_cli_run_exits_3_on_reenroll(server: FakeServer, enrolled_dir: Path, caplog) -> None:
    server.last_seq = 100

    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--once", "--state-dir", str(enrolled_dir)])

    assert exc.value.code == system.STOP_EXIT_STATUS
    assert "looks like a clone" in caplog.text
    assert len(Spool(enrolled_dir / "spool")) == 1


def test_revoked_credential_stops(server: FakeServer, enrolled_dir: Path, caplog) -> None:
    saved = state.load(enrolled_dir)
    saved.secret = "revoked"
    state.save(enrolled_dir, saved)

    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--once", "--state-dir", str(enrolled_dir)])

    assert exc.value.code == system.STOP_EXIT_STATUS
    assert "invalid or revoked" in caplog.text
    # Stopped at the first refusal: nothing after the config pull was tried.
    assert [r.path for r in server.received[1:]] == ["/api/agent/v1/config"]


def test_cli_run_once_exit_status_when_server_down(
    server: FakeServer, enrolled_dir: Path, caplog
) -> None:
    server.report_status = 503

    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--once", "--state-dir", str(enrolled_dir)])

    assert exc.value.code == 1
    assert "1 report(s) kept in the buffer" in caplog.text


def test_new_config_version_is_pulled(server: FakeServer, enrolled_dir: Path) -> None:
    agent = make_agent(enrolled_dir)
    agent.run_once()
    server.config = {**server.config, "version": "v2", "interval": 30, "watch_services": ["sshd"]}

    agent.cycle(force=True)

    assert [r.path for r in server.received][-2:] == [
        "/api/agent/v1/report",
        "/api/agent/v1/config",
    ]
    config = state.load(enrolled_dir).config
    assert (config["version"], config["interval"], config["watch_services"]) == ("v2", 30, ["sshd"])
    assert agent.interval == 30


def test_backoff_waits_then_retries(server: FakeServer, enrolled_dir: Path) -> None:
    now = [1000.0]
    agent = make_agent(enrolled_dir, clock=lambda: now[0])
    server.report_status = 503
    agent.cycle()
    attempts = len(server.received)

    # Collection goes on, but no request is made while backing off.
    assert agent.cycle() is False
    assert len(server.received) == attempts
    assert len(agent.spool) == 2

    server.report_status = 200
    now[0] = agent.next_attempt
    assert agent.exchange() is True
    assert [r["seq"] for r in server.reports()] == [1, 2]


def test_backoff_is_capped_at_five_minutes() -> None:
    backoff = Backoff()
    delays = [backoff.failure() for _ in range(12)]

    assert 9.0 <= delays[0] <= 11.0
    assert delays[1] > delays[0]
    assert max(delays) <= 300.0
    assert delays[-1] == 300.0
    backoff.success()
    assert backoff.failure() <= 11.0


def test_run_loop_reports_every_interval(server: FakeServer, enrolled_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "onestop_agent", "run", "--state-dir", str(enrolled_dir),
         "--interval-override", "0.3"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while len(server.reports()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)

    assert [r["seq"] for r in server.reports()][:3] == [1, 2, 3]
    assert proc.returncode == 130


def test_second_agent_on_same_state_is_refused(server: FakeServer, enrolled_dir: Path) -> None:
    platform = system.current()
    with platform.exclusive_lock(enrolled_dir / cli.LOCK_FILE), pytest.raises(SystemExit) as exc:
        cli.main(["run", "--once", "--state-dir", str(enrolled_dir)])

    assert "another onestop-agent is using" in str(exc.value.code)
