"""install-service: the systemd unit it would write (--dry-run changes nothing)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from onestop_agent import cli, system


def test_install_service_dry_run_prints_the_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["install-service", "--state-dir", str(tmp_path), "--dry-run"])

    out = capsys.readouterr().out
    assert out.startswith("# /etc/systemd/system/onestop-agent.service\n")
    lines = out.splitlines()
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv[-3:] == ["run", "--state-dir", str(tmp_path.resolve())]
    assert Path(argv[0]).is_absolute()
    assert "Restart=always" in lines
    assert f"RestartPreventExitStatus={system.STOP_EXIT_STATUS}" in lines
    assert "WantedBy=multi-user.target" in lines


def test_self_command_runs_the_installed_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The console script pip installs, wherever the environment is.
    script = tmp_path / "bin" / "onestop-agent"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr("sys.argv", [str(script), "install-service"])

    assert cli.self_command() == [str(script.resolve())]
