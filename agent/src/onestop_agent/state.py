"""The agent's state file: who it is, where its server is, and its report sequence number."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
CA_BUNDLE_FILE = "ca-bundle.pem"

DEFAULT_CONFIG: dict[str, Any] = {
    "version": "",
    "interval": 60,
    "inventory_interval": 21600,
    "watch_services": [],
    "watch_processes": [],
}


class StateError(Exception):
    """The state file is missing or unreadable; the message says what to do."""


@dataclass
class State:
    """Everything the agent must remember across restarts (the secret included, hence 0600)."""

    server: str
    agent_id: int
    secret: str
    seq: int = 0
    ca_bundle: str | None = None
    proxy: str | None = None
    config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_CONFIG))

    @property
    def authorization(self) -> str:
        return f"Agent {self.agent_id}:{self.secret}"


def default_state_dir() -> Path:
    """`/etc/onestop-agent` for root (the service), else the user's config folder."""
    if os.geteuid() == 0:
        return Path("/etc/onestop-agent")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "onestop-agent"


def ensure_dir(path: Path) -> None:
    """Creates the folder readable by its owner only: it holds the secret and the spool."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Writes a file so a crash leaves either the old or the new content, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # O_CREAT's mode is filtered by the umask; the secret must never be group-readable.
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(state_dir: Path) -> State:
    path = state_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateError(
            f"not enrolled: {path} does not exist (run `onestop-agent enroll` first)"
        ) from None
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {path}: {exc}") from None
    try:
        state = State(**raw)
    except TypeError as exc:
        raise StateError(f"{path} is not a valid state file: {exc}") from None
    state.config = {**DEFAULT_CONFIG, **state.config}
    return state


def save(state_dir: Path, state: State) -> None:
    ensure_dir(state_dir)
    data = json.dumps(asdict(state), indent=2, sort_keys=True).encode("utf-8")
    write_atomic(state_dir / STATE_FILE, data)
