"""The one result type every agentless probe answers (ICMP, TCP, HTTP/TLS, DNS, SNMP).

Kept small and stable on purpose: the poller and every probe module depend on it. Plain Python,
no Django, so probes run in the poller's event loop and in tests without settings.
"""

from __future__ import annotations

import enum
import re
import time
from dataclasses import dataclass

# The metric store's rule for a metric name (onestop.metrics.services.NAME_RE).
METRIC_NAME_RE = re.compile(r"[a-z0-9_.]{1,100}")


class ProbeStatus(enum.StrEnum):
    """What one check found.

    OK: the target answered as expected.
    FAILED: the target answered, but not as expected (HTTP 500, body or DNS answer mismatch,
        NXDOMAIN, an invalid or expired TLS certificate, a wrong banner).
    UNREACHABLE: nothing answered (timeout, refused, no route, 100 % ping loss).
    UNKNOWN: the check could not be made here (no permission for ICMP, bad configuration), so
        it says nothing about the target; the poller must not alert "down" on it.
    """

    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProbeResult:
    """One check's outcome.

    readings: metric name -> value, names matching METRIC_NAME_RE (e.g. ``ping.rtt_ms``);
        only what was actually measured (an unreachable host has no latency).
    message: a short human-readable explanation, empty or terse when OK.
    duration_ms: wall time the whole probe took, retries included.
    """

    status: ProbeStatus
    readings: dict[str, float]
    message: str
    duration_ms: float

    def __post_init__(self) -> None:
        # A bad name is a programming error in a probe; fail loudly in tests, not in the store.
        for name in self.readings:
            if not METRIC_NAME_RE.fullmatch(name):
                raise ValueError(f"invalid metric name: {name!r}")

    @property
    def ok(self) -> bool:
        return self.status is ProbeStatus.OK


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading)."""
    return round((time.perf_counter() - started) * 1000, 3)


def finished(
    status: ProbeStatus, readings: dict[str, float], message: str, started: float
) -> ProbeResult:
    """The result of a probe that began at `started` (time.perf_counter())."""
    return ProbeResult(status, readings, message, elapsed_ms(started))
