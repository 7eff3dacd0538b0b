"""Ping (ICMP echo) with icmplib: packet loss and round-trip times.

Linux allows ICMP echo two ways: raw sockets (root or CAP_NET_RAW) or unprivileged "ping"
datagram sockets, which the kernel allows only to groups inside net.ipv4.ping_group_range (it
covers ICMPv6 too). Which one this process may use is decided once and cached; when neither is
allowed every ping answers UNKNOWN with the fix, instead of pretending the host is down.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

from icmplib import async_ping
from icmplib.exceptions import ICMPLibError, NameLookupError, SocketPermissionError

from .base import Note, ProbeResult, ProbeStatus, finished, note

CAP_NET_RAW = 13  # bit number in /proc/self/status CapEff (linux/capability.h)
PING_GROUP_RANGE_PATH = "/proc/sys/net/ipv4/ping_group_range"

FIX_HINT = note(
    "allow unprivileged ping with {sysctl} (persist it in /etc/sysctl.d/), or give the poller "
    "raw sockets with {setcap} or systemd's {ambient}",
    sysctl='`sysctl -w net.ipv4.ping_group_range="0 2147483647"`',
    setcap="`setcap cap_net_raw+ep <python binary>`",
    ambient="AmbientCapabilities=CAP_NET_RAW",
)


class IcmpMode(enum.Enum):
    RAW = "raw"  # icmplib privileged=True
    DATAGRAM = "datagram"  # icmplib privileged=False
    NONE = "none"


@dataclass(frozen=True)
class IcmpAccess:
    mode: IcmpMode
    reason: Note


def decide_icmp_mode(
    *,
    cap_net_raw: bool,
    groups: Iterable[int],
    group_range: tuple[int, int] | None,
    datagram_without_range: bool = False,
) -> IcmpAccess:
    """Which ICMP sockets a process may open, from facts gathered elsewhere (pure, testable).

    cap_net_raw: the process holds CAP_NET_RAW (root normally does).
    groups: its real, effective and supplementary group ids.
    group_range: net.ipv4.ping_group_range (low, high), None when unreadable.
    datagram_without_range: the platform allows ping sockets without that sysctl (macOS).
    Raw sockets win when allowed: they work for every group and do not depend on a sysctl.
    """
    if cap_net_raw:
        return IcmpAccess(IcmpMode.RAW, note("raw sockets (root or CAP_NET_RAW)"))
    if group_range is not None:
        low, high = group_range
        allowed = [g for g in groups if low <= g <= high]
        if allowed:
            return IcmpAccess(
                IcmpMode.DATAGRAM,
                note(
                    "ping sockets (group {group} in {low}-{high})",
                    group=allowed[0],
                    low=low,
                    high=high,
                ),
            )
        # "1 0" is the kernel default: nobody.
        return IcmpAccess(
            IcmpMode.NONE,
            note(
                "ICMP not permitted: no CAP_NET_RAW and no group of this process in "
                "ping_group_range {low} {high}; {fix}",
                low=low,
                high=high,
                fix=FIX_HINT,
            ),
        )
    if datagram_without_range:
        return IcmpAccess(IcmpMode.DATAGRAM, note("ping sockets (platform default)"))
    return IcmpAccess(
        IcmpMode.NONE, note("ICMP not permitted: no CAP_NET_RAW; {fix}", fix=FIX_HINT)
    )


def _read_group_range(path: str = PING_GROUP_RANGE_PATH) -> tuple[int, int] | None:
    try:
        with open(path) as f:
            low, high = f.read().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def _has_cap_net_raw() -> bool:
    # CapEff is authoritative: root in a container may lack CAP_NET_RAW, a setcap'ed binary
    # may have it without being root. Fall back to "root" where /proc is missing.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_RAW & 1)
    except (OSError, ValueError, IndexError):
        pass
    return hasattr(os, "geteuid") and os.geteuid() == 0


@functools.cache
def icmp_access() -> IcmpAccess:
    """This process's ICMP access, decided once (privileges do not change under the poller)."""
    groups = {os.getgid(), os.getegid(), *os.getgroups()}
    return decide_icmp_mode(
        cap_net_raw=_has_cap_net_raw(),
        groups=groups,
        group_range=_read_group_range(),
        datagram_without_range=sys.platform == "darwin",
    )


async def probe_ping(
    *,
    host: str,
    timeout: float,
    count: int = 3,
    interval: float = 0.2,
    payload_size: int = 56,
    access: IcmpAccess | None = None,
) -> ProbeResult:
    """Send `count` echo requests `interval` seconds apart; the whole probe lasts <= timeout.

    Each reply may take what is left of the budget split evenly: (timeout - gaps) / count.
    Any reply makes the host OK; ping.loss_pct tells how many were lost. Readings: ping.loss_pct
    always, ping.rtt_min_ms / ping.rtt_ms (average) / ping.rtt_max_ms when something answered.
    `access` overrides the cached privilege decision (tests).
    """
    started = time.perf_counter()
    access = access or icmp_access()
    if access.mode is IcmpMode.NONE:
        return finished(ProbeStatus.UNKNOWN, {}, access.reason, started)
    count = max(1, count)
    interval = max(0.0, min(interval, timeout / count))
    reply_timeout = max(0.01, (timeout - (count - 1) * interval) / count)
    try:
        async with asyncio.timeout(timeout):
            found = await async_ping(
                host,
                count=count,
                interval=interval,
                timeout=reply_timeout,
                privileged=access.mode is IcmpMode.RAW,
                payload_size=payload_size,
            )
    except TimeoutError:
        # Only a slow name lookup can get here: replies are bounded by reply_timeout.
        return finished(
            ProbeStatus.UNREACHABLE,
            {},
            note("no answer within {timeout:g} s", timeout=timeout),
            started,
        )
    except NameLookupError:
        return finished(ProbeStatus.UNKNOWN, {}, note("cannot resolve {host}", host=host), started)
    except SocketPermissionError:
        return finished(
            ProbeStatus.UNKNOWN, {}, note("ICMP not permitted; {fix}", fix=FIX_HINT), started
        )
    except (ICMPLibError, OSError) as exc:
        return finished(
            ProbeStatus.UNKNOWN, {}, note("ping failed: {error}", error=str(exc)), started
        )
    loss = round(found.packet_loss * 100, 1)
    readings = {"ping.loss_pct": loss}
    if not found.is_alive:
        return finished(
            ProbeStatus.UNREACHABLE,
            readings,
            note(
                "no reply to {sent} echo request(s) (loss {loss:g} %)",
                sent=found.packets_sent,
                loss=loss,
            ),
            started,
        )
    readings |= {
        "ping.rtt_min_ms": round(found.min_rtt, 3),
        "ping.rtt_ms": round(found.avg_rtt, 3),
        "ping.rtt_max_ms": round(found.max_rtt, 3),
    }
    message = note(
        "loss {loss:g} %, rtt {min:.2f}/{avg:.2f}/{max:.2f} ms",
        loss=loss,
        min=found.min_rtt,
        avg=found.avg_rtt,
        max=found.max_rtt,
    )
    return finished(ProbeStatus.OK, readings, message, started)
