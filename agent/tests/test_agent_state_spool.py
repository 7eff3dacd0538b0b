"""The state file (0600, atomic) and the bounded disk buffer (order, drops, restarts)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from onestop_agent import state
from onestop_agent.spool import Spool


def make_state(**changes: object) -> state.State:
    return state.State(server="https://onestop.example", agent_id=3, secret="abc", **changes)


def test_state_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        state.save(tmp_path / "st", make_state(seq=5))
    finally:
        os.umask(old)

    path = tmp_path / "st" / state.STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "st").stat().st_mode) == 0o700
    loaded = state.load(tmp_path / "st")
    assert (loaded.agent_id, loaded.secret, loaded.seq) == (3, "abc", 5)
    assert loaded.config["interval"] == 60


def test_state_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state.save(tmp_path, make_state(seq=1))

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        state.save(tmp_path, make_state(seq=2))

    # The old state is intact and no half-written file is left behind.
    assert state.load(tmp_path).seq == 1
    assert [p.name for p in tmp_path.iterdir()] == [state.STATE_FILE]


def test_missing_state_says_to_enroll(tmp_path: Path) -> None:
    with pytest.raises(state.StateError, match="onestop-agent enroll"):
        state.load(tmp_path)


def report(seq: int, size: int = 0) -> dict:
    return {"report_id": f"r{seq}", "seq": seq, "samples": [], "pad": "x" * size}


def test_spool_sends_in_seq_order_and_deletes_on_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for seq in (1, 2, 3):
        spool.add(report(seq))

    sent = []
    while (oldest := spool.oldest()) is not None:
        sent.append(oldest["seq"])
        spool.ack(oldest["seq"])

    assert sent == [1, 2, 3]
    assert len(spool) == 0
    assert not list(tmp_path.glob("*.json"))


def test_spool_drops_oldest_beyond_count_bound(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_reports=3)
    for seq in range(1, 6):
        spool.add(report(seq))

    assert len(spool) == 3
    assert spool.oldest()["seq"] == 3
    assert spool.dropped == 2


def test_spool_drops_oldest_beyond_byte_bound(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=2_500)
    for seq in range(1, 5):
        spool.add(report(seq, size=1_000))

    assert len(spool) == 2
    assert spool.size_bytes <= 2_500
    assert spool.oldest()["seq"] == 3
    assert spool.dropped == 2


def test_spool_and_drop_counter_survive_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_reports=2)
    for seq in (7, 8, 9):
        spool.add(report(seq))
    # A crash between writing a report and renaming it leaves a temporary file.
    (tmp_path / ".000000000010.json.99.tmp").write_text("{")

    again = Spool(tmp_path, max_reports=2)

    assert (len(again), again.dropped, again.max_seq()) == (2, 1, 9)
    assert again.oldest() == report(8)
    assert not list(tmp_path.glob(".*.tmp"))
    again.clear_dropped(1)
    assert Spool(tmp_path).dropped == 0


def test_unreadable_report_is_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.add(report(1))
    spool.add(report(2))
    (tmp_path / "000000000001.json").write_text("{not json")

    assert spool.oldest()["seq"] == 2
    assert spool.dropped == 1
    assert json.loads((tmp_path / "000000000002.json").read_text())["seq"] == 2
