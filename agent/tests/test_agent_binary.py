"""The PyInstaller one-file build (slow: opt in with ONESTOP_AGENT_BINARY_TEST=1)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

AGENT_DIR = Path(__file__).resolve().parents[1]
BINARY = AGENT_DIR / "dist" / "onestop-agent"

pytestmark = pytest.mark.skipif(
    os.environ.get("ONESTOP_AGENT_BINARY_TEST") != "1",
    reason="builds the standalone binary; set ONESTOP_AGENT_BINARY_TEST=1",
)


def test_binary_builds_and_fails_cleanly_on_unreachable_server(tmp_path: Path) -> None:
    subprocess.run([AGENT_DIR / "build.sh"], check=True, timeout=600)

    shown = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    assert "enroll" in shown.stdout

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    enroll = subprocess.run(
        [BINARY, "enroll", "--server", f"http://127.0.0.1:{port}", "--token", "et_x",
         "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert enroll.returncode == 1
    assert enroll.stderr.startswith("onestop-agent: enrolment failed: cannot reach")
    assert enroll.stderr.count("\n") == 1
