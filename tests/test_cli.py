"""The `onestop` command, run as a real process with its own data folder."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

TIMEOUT = 60
GOOD_KEY = "bKev0GDh2MGAl9SSeLmZWOnhG-FbAn7sTkTec5F0PL4="
PASSWORD = "correct-horse-battery-9"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without OneStop settings, so each test sets its own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ONESTOP_")
        and key not in {"DATABASE_URL", "SECRET_KEY", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        ONESTOP_DATA_DIR=str(data_dir),
        ONESTOP_ENV_FILE=str(data_dir / "absent.env"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def onestop(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "onestop", *args],
        env=_env(data_dir, **extra),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "var"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("template") / "var"
    result = onestop(data_dir, "migrate")
    assert result.returncode == 0, result.stderr
    return data_dir


@pytest.fixture
def migrated(migrated_template, data_dir) -> Path:
    """A migrated data folder of the test's own (a copy: migrating takes a while)."""
    shutil.copytree(migrated_template, data_dir)
    return data_dir


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_check_says_ok_on_a_good_configuration(migrated):
    result = onestop(migrated, "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_migrate_is_quiet(data_dir):
    result = onestop(data_dir, "migrate")
    assert result.returncode == 0
    assert result.stdout == ""


def test_check_names_unapplied_migrations(data_dir):
    result = onestop(data_dir, "check")
    assert result.returncode == 1
    assert "onestop migrate" in _one_line(result.stderr)


@pytest.mark.parametrize(
    ("variable", "settings"),
    [
        ("ONESTOP_PUBLIC_URL", {"ONESTOP_PUBLIC_URL": "ftp://x"}),
        ("ONESTOP_AUDIT_RETENTION_DAYS", {"ONESTOP_AUDIT_RETENTION_DAYS": "10"}),
        ("SECRET_KEY", {"DATABASE_URL": "postgres://onestop@127.0.0.1:9/onestop"}),
        ("ONESTOP_ENCRYPTION_KEY", {"ONESTOP_ENCRYPTION_KEY": "not-a-key"}),
        ("ONESTOP_TRUSTED_PROXIES", {"ONESTOP_TRUSTED_PROXIES": "10.0.0.0/8,lb.example"}),
    ],
)
def test_a_bad_setting_stops_with_one_line_naming_it(data_dir, variable, settings):
    result = onestop(data_dir, "check", **settings)
    assert result.returncode == 2
    assert _one_line(result.stderr).startswith(f"onestop: {variable}: ")
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["serve", "web", "worker", "migrate", "demo", "backup"])
def test_every_command_checks_the_settings_first(data_dir, command):
    result = onestop(data_dir, command, ONESTOP_LANGUAGE="fr")
    assert result.returncode == 2
    assert _one_line(result.stderr).startswith("onestop: ONESTOP_LANGUAGE: ")


def test_generate_key_works_even_when_the_configured_key_is_broken(data_dir):
    result = onestop(data_dir, "generate-key", ONESTOP_ENCRYPTION_KEY="broken")
    assert result.returncode == 0
    Fernet(_one_line(result.stdout).encode())


def _authenticates(data_dir: Path, username: str, password: str) -> bool:
    script = (
        "import django, sys; django.setup();"
        "from django.contrib.auth import authenticate;"
        "from django.test import RequestFactory;"
        "user = authenticate(RequestFactory().post('/login/'), username=sys.argv[1],"
        " password=sys.argv[2]);"
        "print(user is not None and user.is_active and user.role)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, username, password],
        env=_env(data_dir, DJANGO_SETTINGS_MODULE="onestop.config.settings"),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    return result.stdout.strip() == "admin"


def test_createadmin_creates_an_admin_who_can_log_in(migrated):
    result = onestop(
        migrated,
        "createadmin",
        "--username",
        "boss",
        "--password",
        PASSWORD,
        "--email",
        "boss@example.cn",
    )
    assert result.returncode == 0, result.stderr
    assert "boss" in result.stdout
    assert _authenticates(migrated, "boss", PASSWORD)
    assert not _authenticates(migrated, "boss", "wrong-password-123")


def test_createadmin_refuses_a_weak_password_and_a_taken_name(migrated):
    weak = onestop(migrated, "createadmin", "--username", "boss", "--password", "12345")
    assert weak.returncode == 1
    assert "password" in _one_line(weak.stderr)

    assert onestop(migrated, "createadmin", "--username", "boss", "--password", PASSWORD)
    again = onestop(migrated, "createadmin", "--username", "boss", "--password", PASSWORD)
    assert again.returncode == 1
    assert "already exists" in _one_line(again.stderr)


def test_createadmin_without_a_terminal_needs_both_options(migrated):
    result = onestop(migrated, "createadmin", "--username", "boss")
    assert result.returncode == 2
    assert "--password" in _one_line(result.stderr)


def test_backup_and_restore_from_the_command_line(migrated, tmp_path):
    onestop(migrated, "createadmin", "--username", "boss", "--password", PASSWORD)
    (migrated / "files" / "note.txt").write_text("stored file")
    archive = tmp_path / "backup.tar.gz"

    made = onestop(migrated, "backup", "--output", str(archive))
    assert made.returncode == 0, made.stderr
    assert archive.is_file()

    refused = onestop(migrated, "restore", str(archive))
    assert refused.returncode == 1
    assert "--yes" in _one_line(refused.stderr)

    (migrated / "files" / "note.txt").unlink()
    restored = onestop(migrated, "restore", str(archive), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert (migrated / "files" / "note.txt").read_text() == "stored file"
    assert _authenticates(migrated, "boss", PASSWORD)


def test_restore_of_a_missing_archive_is_one_line(migrated, tmp_path):
    result = onestop(migrated, "restore", str(tmp_path / "nope.tar.gz"))
    assert result.returncode == 1
    assert "no such file" in _one_line(result.stderr)


# Long-running commands -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, frontier = [], [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_for(condition, timeout: float, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def _healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@pytest.fixture
def spawn(tmp_path):
    """Starts `onestop ...` in the background; whatever is left is killed at the end."""
    started: list[tuple[subprocess.Popen, list[int]]] = []

    def start(data_dir: Path, *args: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{args[0]}.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "onestop", *args],
                env=_env(data_dir),
                cwd=data_dir.parent,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append((process, []))
        return process, log

    yield start
    for process, _ in started:
        leftovers = _descendants(process.pid)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)
        for pid in leftovers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_serve_answers_healthz_and_stops_cleanly_on_sigterm(migrated, spawn):
    port = _free_port()
    process, log = spawn(migrated, "serve", "--port", str(port))

    assert _wait_for(lambda: _healthz(port) == 200, 30, process), log.read_text()
    assert f"http://127.0.0.1:{port}" in log.read_text()
    assert _wait_for(lambda: len(_descendants(process.pid)) >= 3, 10, process)
    children = _descendants(process.pid)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0, log.read_text()
    assert [pid for pid in children if _alive(pid)] == []
    assert _healthz(port) is None


def test_web_alone_serves_and_stops_on_sigterm(migrated, spawn):
    port = _free_port()
    process, log = spawn(migrated, "web", "--port", str(port), "--workers", "2")
    assert _wait_for(lambda: _healthz(port) == 200, 30, process), log.read_text()
    workers = _descendants(process.pid)
    assert len(workers) == 2

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0, log.read_text()
    assert [pid for pid in workers if _alive(pid)] == []


def test_serve_stops_on_sigint_too(migrated, spawn):
    port = _free_port()
    process, log = spawn(migrated, "serve", "--port", str(port))
    assert _wait_for(lambda: _healthz(port) == 200, 30, process), log.read_text()
    children = _descendants(process.pid)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=TIMEOUT) == 0, log.read_text()
    assert [pid for pid in children if _alive(pid)] == []


def test_serve_refuses_a_port_in_use(migrated):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = onestop(migrated, "serve", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert "cannot listen" in _one_line(result.stderr)


def test_worker_starts_and_stops_on_sigterm(migrated, spawn):
    process, log = spawn(migrated, "worker", "--workers", "1")

    assert _wait_for(lambda: "consumer started" in log.read_text(), 30, process), log.read_text()
    assert "Periodic tasks are disabled" in log.read_text()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0, log.read_text()


def test_worker_with_scheduler_runs_periodic_jobs(migrated, spawn):
    process, log = spawn(migrated, "worker", "--scheduler")
    assert _wait_for(lambda: "consumer started" in log.read_text(), 30, process), log.read_text()
    assert "Periodic tasks are enabled" in log.read_text()
    assert "audit_events_prune" in log.read_text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0


def test_poller_starts_on_its_shard_and_stops_on_sigterm(migrated, spawn):
    process, log = spawn(migrated, "poller", "--shard", "2/3", "--concurrency", "50")
    assert _wait_for(lambda: "poller started" in log.read_text(), 30, process), log.read_text()
    assert "shard 2 of 3, 50 probes at a time" in log.read_text()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0, log.read_text()
    assert "poller stopped" in log.read_text()


@pytest.mark.parametrize("shard", ["0/3", "4/3", "2", "a/b"])
def test_poller_refuses_a_shard_that_is_not_i_of_n(migrated, shard):
    result = onestop(migrated, "poller", "--shard", shard)
    assert result.returncode == 2
    assert "i/N" in result.stderr


def test_poller_receives_traps_where_told_and_refuses_a_taken_port(migrated, spawn):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = onestop(migrated, "poller", "--traps", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot receive SNMP traps on 127.0.0.1:{port}" in result.stderr

    process, log = spawn(migrated, "poller", "--traps", f"127.0.0.1:{port}")
    assert _wait_for(lambda: "poller started" in log.read_text(), 30, process), log.read_text()
    assert f"receiving SNMP traps on 127.0.0.1:{port}" in log.read_text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0, log.read_text()
