"""The inventory document: what this machine is and what is installed on it."""

from __future__ import annotations

import socket
from typing import Any

import psutil

from onestop_agent.collectors import disks
from onestop_agent.system import Platform


def nics() -> list[dict[str, Any]]:
    """Each interface but loopback, with its MAC and IP addresses (IPv6 zone suffix removed)."""
    found = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        if name == "lo":
            continue
        nic: dict[str, Any] = {"name": name, "ips": []}
        for addr in addrs:
            if addr.family == psutil.AF_LINK and addr.address:
                nic["mac"] = addr.address.lower()
            elif addr.family in (socket.AF_INET, socket.AF_INET6):
                nic["ips"].append(addr.address.split("%", 1)[0])
        found.append(nic)
    return found


def collect(platform: Platform) -> dict[str, Any]:
    """The inventory as the protocol names it; fields that cannot be read are left out."""
    os_info = platform.os_info()
    doc: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "machine_id": platform.machine_id(),
        "os": {key: os_info[key] for key in ("name", "version", "kernel")},
    }
    cpu: dict[str, Any] = {}
    model = platform.cpu_model()
    if model:
        cpu["model"] = model
    cores = psutil.cpu_count(logical=False)
    threads = psutil.cpu_count(logical=True)
    if cores:
        cpu["cores"] = cores
    if threads:
        cpu["threads"] = threads
    doc["cpu"] = cpu
    doc["memory_bytes"] = psutil.virtual_memory().total
    entries = []
    for part in disks(platform):
        try:
            total = psutil.disk_usage(part.mountpoint).total
        except OSError:
            continue
        entries.append(
            {
                "device": part.device,
                "mount": part.mountpoint,
                "fs": part.fstype,
                "total_bytes": total,
            }
        )
    doc["disks"] = entries
    doc["nics"] = nics()
    doc.update(platform.hardware())
    software = platform.installed_software()
    if software is not None:
        doc["software"] = software
    doc["users"] = sorted({user.name for user in psutil.users() if user.name})
    return doc
