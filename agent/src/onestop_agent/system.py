"""The small interface behind which each operating system's specifics live."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

# Exit status for "enrol again": a service manager must not restart an agent the server refuses.
STOP_EXIT_STATUS = 3


class AlreadyRunning(Exception):
    """Another agent process holds the state folder."""


class Platform(Protocol):
    """What the agent needs from the operating system beyond psutil."""

    name: str

    def machine_id(self) -> str: ...

    def os_info(self) -> dict[str, str]: ...

    def cpu_model(self) -> str | None: ...

    def hardware(self) -> dict[str, str]: ...

    def is_pseudo_fs(self, fstype: str, mountpoint: str) -> bool: ...

    def installed_software(self) -> list[dict[str, str]] | None: ...

    def services_active(self, names: list[str]) -> dict[str, bool]: ...

    def exclusive_lock(self, path: Path) -> AbstractContextManager[None]: ...

    def service_unit(self, command: list[str], state_dir: Path) -> tuple[Path, str]: ...

    def install_service(self, path: Path, text: str) -> None: ...


def current() -> Platform:
    """This machine's platform; only Linux exists so far."""
    if sys.platform.startswith("linux"):
        from onestop_agent.platform_linux import LinuxPlatform

        return LinuxPlatform()
    raise SystemExit(f"onestop-agent: {sys.platform} is not supported yet (Linux only)")
