"""Collectors and inventory: the protocol's metric names, sane values, NIC rates from counters."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest
from conftest import PROTOCOL_METRICS

from onestop_agent import collectors, inventory, platform_linux
from onestop_agent.collectors import NicCounters, counter_delta, nic_rates
from onestop_agent.platform_linux import LinuxPlatform

LABEL_OF = {"disk": "mount", "net": "nic", "service": "name", "process": "name"}


def by_name(samples: list[list]) -> dict[str, list[list]]:
    found: dict[str, list[list]] = {}
    for sample in samples:
        found.setdefault(sample[1], []).append(sample)
    return found


def test_collect_uses_only_protocol_names_with_sane_values() -> None:
    collector = collectors.Collector(LinuxPlatform())
    samples = collector.collect(watch_services=[], watch_processes=[])
    names = by_name(samples)

    assert set(names) <= PROTOCOL_METRICS
    required = [
        "cpu.percent",
        "load.1",
        "mem.used_percent",
        "mem.available_bytes",
        "swap.used_percent",
        "uptime.seconds",
        "proc.count",
    ]
    # A container whose root is an overlay has no real disk to report: only real ones count.
    if collectors.disks(LinuxPlatform()):
        required += ["disk.used_percent", "disk.free_bytes"]
    for name in required:
        assert name in names, name
    for when, name, labels, value in samples:
        assert isinstance(when, float)
        assert isinstance(value, float)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        prefix = name.split(".")[0]
        assert set(labels) == ({LABEL_OF[prefix]} if prefix in LABEL_OF else set()), name
        if name.endswith("percent"):
            assert 0.0 <= value <= 100.0, (name, value)
        else:
            assert value >= 0.0, (name, value)
    real_mounts = {part.mountpoint for part in collectors.disks(LinuxPlatform())}
    reported = {s[2]["mount"] for s in names.get("disk.used_percent", [])}
    assert reported == real_mounts
    assert names["proc.count"][0][3] == pytest.approx(len(psutil.pids()), abs=20)


def test_nic_rates_for_each_nic_but_loopback() -> None:
    collector = collectors.Collector(LinuxPlatform())
    samples = collector.collect(watch_services=[], watch_processes=[])
    nics = set(collectors.read_nic_counters())
    rx = {s[2]["nic"] for s in samples if s[1] == "net.rx_bps"}
    assert rx == nics
    assert "lo" not in rx


def test_nic_rate_from_counters() -> None:
    before = {"eth0": NicCounters(1_000, 5_000, 1, 0)}
    after = {"eth0": NicCounters(61_000, 5_600, 4, 0), "wlan0": NicCounters(10, 10, 0, 0)}

    rates = nic_rates(before, after, 60.0)

    assert rates == {
        "eth0": {
            "net.rx_bps": 1_000.0,
            "net.tx_bps": 10.0,
            "net.rx_errors": 3.0,
            "net.tx_errors": 0.0,
        }
    }
    assert nic_rates(before, after, 0.0) == {}


def test_nic_rate_after_counter_reset() -> None:
    # The driver was reloaded: counters restarted from zero during the interval.
    before = {"eth0": NicCounters(9_000_000, 8_000_000, 50, 7)}
    after = {"eth0": NicCounters(2_000, 1_000, 2, 0)}

    rates = nic_rates(before, after, 10.0)["eth0"]

    assert rates["net.rx_bps"] == 200.0
    assert rates["net.tx_bps"] == 100.0
    assert rates["net.rx_errors"] == 2.0
    assert rates["net.tx_errors"] == 0.0
    assert counter_delta(5, 5) == 0


def test_watched_processes_by_name() -> None:
    own = psutil.Process().name()
    collector = collectors.Collector(LinuxPlatform())

    samples = collector.collect(watch_services=[], watch_processes=[own, "no-such-process-x"])

    up = {s[2]["name"]: s[3] for s in samples if s[1] == "process.up"}
    assert up == {own: 1.0, "no-such-process-x": 0.0}


def fake_tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_watched_services_through_systemctl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `systemctl is-active a b` prints one state per unit and exits 3 when one is not active.
    fake_tool(tmp_path, "systemctl", 'echo "$@" > "$0.args"; printf "active\\ninactive\\n"; exit 3')
    monkeypatch.setenv("PATH", str(tmp_path))
    platform = LinuxPlatform()

    assert platform.services_active(["sshd", "nginx"]) == {"sshd": True, "nginx": False}
    assert (tmp_path / "systemctl.args").read_text().split() == ["is-active", "--", "sshd", "nginx"]
    samples = collectors.Collector(platform).collect(
        watch_services=["sshd", "nginx"], watch_processes=[]
    )
    assert {s[2]["name"]: s[3] for s in samples if s[1] == "service.up"} == {
        "sshd": 1.0,
        "nginx": 0.0,
    }


def test_services_left_out_when_systemd_cannot_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(tmp_path, "systemctl", 'echo "System has not been booted with systemd" >&2; exit 1')
    monkeypatch.setenv("PATH", str(tmp_path))

    assert LinuxPlatform().services_active(["sshd"]) == {}


def test_dmi_values_left_out_when_unreadable_or_placeholder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sys_vendor").write_text("Dell Inc.\n")
    (tmp_path / "product_name").write_text("To Be Filled By O.E.M.\n")
    # product_serial is missing, as when it is root-only and we are not root.
    monkeypatch.setattr(platform_linux, "DMI_DIR", tmp_path)

    assert LinuxPlatform().hardware() == {"vendor": "Dell Inc."}


def test_dpkg_packages_only_installed_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(
        tmp_path,
        "dpkg-query",
        'printf "ii \\topenssh-server\\t1:9.2p1-2\\nrc \\told-tool\\t1.0\\nii \\tcurl\\t7.88\\n"',
    )
    monkeypatch.setenv("PATH", str(tmp_path))

    assert LinuxPlatform().installed_software() == [
        {"name": "openssh-server", "version": "1:9.2p1-2", "publisher": ""},
        {"name": "curl", "version": "7.88", "publisher": ""},
    ]


def test_inventory_document() -> None:
    doc = inventory.collect(LinuxPlatform())

    assert doc["hostname"]
    assert doc["machine_id"] == LinuxPlatform().machine_id()
    assert set(doc["os"]) == {"name", "version", "kernel"}
    assert doc["os"]["kernel"] == os.uname().release
    assert doc["cpu"]["threads"] == psutil.cpu_count()
    assert doc["memory_bytes"] == psutil.virtual_memory().total
    real_mounts = {part.mountpoint for part in collectors.disks(LinuxPlatform())}
    reported = {d["mount"] for d in doc["disks"]}
    assert reported <= real_mounts
    if "/" in real_mounts:  # an overlay root (containers) is no disk of its own
        assert "/" in reported
    for disk in doc["disks"]:
        assert set(disk) == {"device", "mount", "fs", "total_bytes"}
    for nic in doc["nics"]:
        assert nic["name"] != "lo"
        assert set(nic) <= {"name", "mac", "ips"}
    assert isinstance(doc["users"], list)
    assert all(value is not None for value in doc.values())
