"""System metrics as protocol samples: `[unix time, metric name, labels, value]`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

from onestop_agent.system import Platform

Sample = list[Any]


@dataclass(frozen=True)
class NicCounters:
    """The cumulative counters of one network interface at one moment."""

    rx_bytes: int
    tx_bytes: int
    rx_errors: int
    tx_errors: int


def counter_delta(previous: int, current: int) -> int:
    """Growth of a cumulative counter; after a reset (driver reload, 32-bit wrap) the counter
    restarted from zero, so its current value is the best lower bound of the growth."""
    return current - previous if current >= previous else current


def nic_rates(
    previous: dict[str, NicCounters], current: dict[str, NicCounters], elapsed: float
) -> dict[str, dict[str, float]]:
    """Per NIC seen in both samples: rx/tx bytes per second and rx/tx errors over the interval."""
    if elapsed <= 0:
        return {}
    rates = {}
    for nic, now in current.items():
        before = previous.get(nic)
        if before is None:
            continue
        rates[nic] = {
            "net.rx_bps": counter_delta(before.rx_bytes, now.rx_bytes) / elapsed,
            "net.tx_bps": counter_delta(before.tx_bytes, now.tx_bytes) / elapsed,
            "net.rx_errors": float(counter_delta(before.rx_errors, now.rx_errors)),
            "net.tx_errors": float(counter_delta(before.tx_errors, now.tx_errors)),
        }
    return rates


def read_nic_counters() -> dict[str, NicCounters]:
    counters = psutil.net_io_counters(pernic=True, nowrap=False)
    return {
        nic: NicCounters(c.bytes_recv, c.bytes_sent, c.errin, c.errout)
        for nic, c in counters.items()
        if nic != "lo"
    }


def disks(platform: Platform) -> list[Any]:
    """Real filesystems (psutil partition tuples), one per mount point."""
    seen = set()
    found = []
    for part in psutil.disk_partitions(all=False):
        if part.mountpoint in seen or platform.is_pseudo_fs(part.fstype, part.mountpoint):
            continue
        seen.add(part.mountpoint)
        found.append(part)
    return found


class Collector:
    """Takes one set of samples per interval; keeps the previous NIC counters for the rates."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        # The first cpu_percent() call only sets psutil's baseline; prime it now.
        psutil.cpu_percent(interval=None)
        self._nics = read_nic_counters()
        self._nics_at = time.monotonic()

    def collect(self, *, watch_services: list[str], watch_processes: list[str]) -> list[Sample]:
        now = round(time.time(), 3)
        samples: list[Sample] = []

        def add(name: str, value: float, labels: dict[str, str] | None = None) -> None:
            samples.append([now, name, labels or {}, round(float(value), 3)])

        add("cpu.percent", psutil.cpu_percent(interval=None))
        for name, value in zip(("load.1", "load.5", "load.15"), os.getloadavg(), strict=True):
            add(name, value)
        mem = psutil.virtual_memory()
        add("mem.used_percent", mem.percent)
        add("mem.available_bytes", mem.available)
        add("swap.used_percent", psutil.swap_memory().percent)

        for part in disks(self.platform):
            labels = {"mount": part.mountpoint}
            try:
                usage = psutil.disk_usage(part.mountpoint)
                vfs = os.statvfs(part.mountpoint)
            except OSError:
                continue  # unmounted or unreadable since disk_partitions() listed it
            add("disk.used_percent", usage.percent, labels)
            add("disk.free_bytes", usage.free, labels)
            # Filesystems without a fixed inode table (btrfs) report zero inodes.
            if vfs.f_files:
                add("disk.inodes_used_percent", 100.0 * (1 - vfs.f_ffree / vfs.f_files), labels)

        counters = read_nic_counters()
        at = time.monotonic()
        for nic, rates in sorted(nic_rates(self._nics, counters, at - self._nics_at).items()):
            for name, value in rates.items():
                add(name, value, {"nic": nic})
        self._nics, self._nics_at = counters, at

        add("uptime.seconds", max(0.0, time.time() - psutil.boot_time()))
        add("proc.count", len(psutil.pids()))

        for name, up in self.platform.services_active(watch_services).items():
            add("service.up", 1 if up else 0, {"name": name})
        if watch_processes:
            running = running_process_names()
            for name in watch_processes:
                add("process.up", 1 if name in running else 0, {"name": name})
        return samples


def running_process_names() -> set[str]:
    names = set()
    for proc in psutil.process_iter(["name"]):
        name = proc.info.get("name")
        if name:
            names.add(name)
    return names
