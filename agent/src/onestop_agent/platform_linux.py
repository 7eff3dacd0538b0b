"""Everything Linux-specific: machine-id, os-release, DMI, package lists, systemd, file locks.

The rest of the agent uses only psutil, the stdlib, and the `Platform` interface in
`system.py`; a Windows or macOS port adds its own module next to this one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from onestop_agent.system import STOP_EXIT_STATUS, AlreadyRunning

DMI_DIR = Path("/sys/class/dmi/id")
UNIT_PATH = Path("/etc/systemd/system/onestop-agent.service")

# Filesystems that hold no user data; psutil already skips the "nodev" ones.
PSEUDO_FS = frozenset({"squashfs", "tmpfs", "devtmpfs", "overlay", "iso9660", "udf", "autofs"})
# DMI fillers vendors leave in place of a real value.
DMI_PLACEHOLDERS = frozenset(
    {"", "to be filled by o.e.m.", "default string", "system serial number", "not specified", "0"}
)
SOFTWARE_LIMIT = 5000
COMMAND_TIMEOUT = 30.0


class LinuxPlatform:
    """The Linux implementation of `system.Platform`."""

    name = "linux"

    def machine_id(self) -> str:
        for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
            with contextlib.suppress(OSError):
                value = Path(path).read_text(encoding="ascii").strip()
                if value:
                    return value
        return ""

    def os_info(self) -> dict[str, str]:
        """name, version, kernel and pretty (the one-line form sent at enrolment)."""
        try:
            release = platform.freedesktop_os_release()
        except OSError:
            release = {}
        name = release.get("NAME", "Linux")
        version = release.get("VERSION_ID", "")
        return {
            "name": name,
            "version": version,
            "kernel": platform.release(),
            "pretty": release.get("PRETTY_NAME", f"{name} {version}".strip()),
        }

    def cpu_model(self) -> str | None:
        with contextlib.suppress(OSError):
            for line in (
                Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split("\n")
            ):
                key, _, value = line.partition(":")
                # "model name" on x86, "Model" on Raspberry Pi and other ARM boards.
                if key.strip() in ("model name", "Model") and value.strip():
                    return value.strip()
        return None

    def hardware(self) -> dict[str, str]:
        """vendor, model, serial from DMI; product_serial is root-only, so it is often absent."""
        found = {}
        for key, filename in (
            ("vendor", "sys_vendor"),
            ("model", "product_name"),
            ("serial", "product_serial"),
        ):
            with contextlib.suppress(OSError):
                value = (DMI_DIR / filename).read_text(encoding="utf-8", errors="replace").strip()
                if value.lower() not in DMI_PLACEHOLDERS:
                    found[key] = value
        return found

    def is_pseudo_fs(self, fstype: str, mountpoint: str) -> bool:
        # Container runtimes bind-mount single files (/etc/hosts); they are not disks.
        return fstype in PSEUDO_FS or not os.path.isdir(mountpoint)

    def installed_software(self) -> list[dict[str, str]] | None:
        """Installed packages from dpkg or rpm (at most SOFTWARE_LIMIT), None if neither works."""
        dpkg = shutil.which("dpkg-query")
        if dpkg:
            fmt = r"${db:Status-Abbrev}\t${Package}\t${Version}\n"
            lines = _run_lines([dpkg, "-W", "-f", fmt])
            if lines is not None:
                packages = []
                for line in lines:
                    status, _, rest = line.partition("\t")
                    name, _, version = rest.partition("\t")
                    # "rc" = removed, configuration kept; only "ii" is installed.
                    if status.strip() == "ii" and name:
                        packages.append({"name": name, "version": version, "publisher": ""})
                return packages[:SOFTWARE_LIMIT]
        rpm = shutil.which("rpm")
        if rpm:
            fmt = r"%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{VENDOR}\n"
            lines = _run_lines([rpm, "-qa", "--qf", fmt])
            if lines is not None:
                packages = []
                for line in lines:
                    name, _, rest = line.partition("\t")
                    version, _, vendor = rest.partition("\t")
                    if name:
                        publisher = "" if vendor == "(none)" else vendor
                        packages.append({"name": name, "version": version, "publisher": publisher})
                return packages[:SOFTWARE_LIMIT]
        return None

    def services_active(self, names: list[str]) -> dict[str, bool]:
        """Whether each systemd unit is active; units systemd cannot answer for are left out."""
        systemctl = shutil.which("systemctl")
        if not names or not systemctl:
            return {}
        # One call for all units: `is-active` prints one state per unit, in order.
        lines = _run_lines([systemctl, "is-active", "--", *names], check=False)
        if lines is None or len(lines) != len(names):
            return {}
        return {name: line.strip() == "active" for name, line in zip(names, lines, strict=True)}

    @contextlib.contextmanager
    def exclusive_lock(self, path: Path) -> Iterator[None]:
        """Holds an advisory lock so two agents never share one state (they would reuse seqs)."""
        fh: IO[str] = open(path, "a")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyRunning(
                    f"another onestop-agent is using {path.parent} (lock {path})"
                ) from None
            yield
        finally:
            fh.close()

    def service_unit(self, command: list[str], state_dir: Path) -> tuple[Path, str]:
        """The systemd unit that runs `command run --state-dir DIR`, and where it goes."""
        exec_start = shlex.join([*command, "run", "--state-dir", str(state_dir)])
        text = (
            "[Unit]\n"
            "Description=OneStop monitoring agent\n"
            "Wants=network-online.target\n"
            "After=network-online.target\n"
            "\n"
            "[Service]\n"
            "Type=simple\n"
            f"ExecStart={exec_start}\n"
            "Restart=always\n"
            "RestartSec=10\n"
            f"# Exit {STOP_EXIT_STATUS}: the server refused this agent; enroll it again.\n"
            f"RestartPreventExitStatus={STOP_EXIT_STATUS}\n"
            "\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
        )
        return UNIT_PATH, text

    def install_service(self, path: Path, text: str) -> None:
        """Writes the unit, reloads systemd and starts the agent now and at every boot."""
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
        systemctl = shutil.which("systemctl") or "/usr/bin/systemctl"
        for args in (["daemon-reload"], ["enable", "--now", path.stem]):
            try:
                subprocess.run([systemctl, *args], check=True, timeout=60)  # noqa: S603 - fixed tool and arguments
            except subprocess.SubprocessError as exc:
                raise OSError(f"systemctl {' '.join(args)}: {exc}") from None


def _run_lines(argv: list[str], *, check: bool = True) -> list[str] | None:
    """Runs a read-only system tool; None if it fails, hangs or is missing."""
    try:
        result = subprocess.run(  # noqa: S603 - a resolved system tool with our own arguments
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=check
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.splitlines()
