"""The disk buffer: every report is written here first and deleted only after the server's ack."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from onestop_agent.state import ensure_dir, write_atomic

MAX_REPORTS = 10_000
MAX_BYTES = 50 * 1024 * 1024
DROPPED_FILE = "dropped"
SUFFIX = ".json"


class Spool:
    """One JSON file per report, named by its zero-padded seq so name order is send order.

    Bounded by count and bytes: when full, the oldest report is dropped and counted; the count
    is persisted so it survives a restart and reaches the server with the next report.
    """

    def __init__(
        self, path: Path, *, max_reports: int = MAX_REPORTS, max_bytes: int = MAX_BYTES
    ) -> None:
        self.path = path
        self.max_reports = max_reports
        self.max_bytes = max_bytes
        ensure_dir(path)
        self._sizes: dict[int, int] = {}
        for entry in os.scandir(path):
            stem, suffix = os.path.splitext(entry.name)
            if suffix == SUFFIX and stem.isdigit():
                self._sizes[int(stem)] = entry.stat().st_size
            elif entry.name.startswith(".") and entry.name.endswith(".tmp"):
                # Left by a crash between write and rename: never acknowledged, never complete.
                os.unlink(entry.path)
        self._order = sorted(self._sizes)
        self._bytes = sum(self._sizes.values())
        self.dropped = self._read_dropped()

    def __len__(self) -> int:
        return len(self._order)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def max_seq(self) -> int:
        return self._order[-1] if self._order else 0

    def add(self, report: dict[str, Any]) -> None:
        """Stores a report under its seq, then drops the oldest until within the bounds."""
        seq = int(report["seq"])
        data = json.dumps(report, separators=(",", ":"), allow_nan=False).encode("utf-8")
        write_atomic(self._file(seq), data)
        self._sizes[seq] = len(data)
        self._order.append(seq)
        self._bytes += len(data)
        dropped = 0
        # The newest report always stays, even if it alone exceeds the byte bound.
        while len(self._order) > 1 and (
            len(self._order) > self.max_reports or self._bytes > self.max_bytes
        ):
            self._remove(self._order[0])
            dropped += 1
        if dropped:
            self.add_dropped(dropped)

    def oldest(self) -> dict[str, Any] | None:
        """The next report to send, or None when the buffer is empty.

        A file that cannot be parsed (a disk error) is dropped and counted rather than
        blocking every report behind it.
        """
        while self._order:
            seq = self._order[0]
            try:
                return json.loads(self._file(seq).read_bytes())
            except (OSError, ValueError):
                self._remove(seq)
                self.add_dropped(1)
        return None

    def ack(self, seq: int) -> None:
        """The server stored this report: delete it."""
        self._remove(seq)

    def add_dropped(self, count: int) -> None:
        self.dropped += count
        self._write_dropped()

    def clear_dropped(self, count: int) -> None:
        """The server has recorded `count` drops; any newer ones stay pending."""
        self.dropped = max(0, self.dropped - count)
        self._write_dropped()

    def _file(self, seq: int) -> Path:
        return self.path / f"{seq:012d}{SUFFIX}"

    def _remove(self, seq: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._file(seq).unlink()
        self._bytes -= self._sizes.pop(seq, 0)
        self._order.remove(seq)

    def _read_dropped(self) -> int:
        try:
            return int((self.path / DROPPED_FILE).read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_dropped(self) -> None:
        write_atomic(self.path / DROPPED_FILE, str(self.dropped).encode("ascii"))
