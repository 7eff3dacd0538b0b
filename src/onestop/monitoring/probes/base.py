"""The one result type every agentless probe answers (ICMP, TCP, HTTP/TLS, DNS, SNMP).

Kept small and stable on purpose: the poller and every probe module depend on it. Plain Python,
no Django, so probes run in the poller's event loop and in tests without settings.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


def _untranslated(template: str) -> str:
    return template


@dataclass(frozen=True)
class Note:
    """A message a probe writes: an English template with {named} fields (str.format syntax)
    and their values.

    The template is also the msgid of its translation: probes run without Django and
    translate nothing, so the message is stored as a Note and shown later in the reader's
    language. A value may itself be a Note (translated with it).
    """

    template: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, translate: Callable[[str], str] = _untranslated) -> str:
        values = {
            name: value.render(translate) if isinstance(value, Note) else value
            for name, value in self.params.items()
        }
        if not self.template:
            return ""  # gettext("") is the catalogue's header
        try:
            return translate(self.template).format_map(values)
        except (KeyError, IndexError, ValueError):
            # A translation that lost or broke a field must not hide the message.
            return self.template.format_map(values)

    def __str__(self) -> str:
        return self.render()

    def as_data(self) -> dict[str, Any]:
        """JSON-ready form, read back by `Note.from_data`."""
        return {
            "template": self.template,
            "params": {
                name: value.as_data() if isinstance(value, Note) else value
                for name, value in self.params.items()
            },
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Note:
        params = {
            name: cls.from_data(value) if isinstance(value, dict) else value
            for name, value in data.get("params", {}).items()
        }
        return cls(str(data["template"]), params)


def note(template: str, /, **params: Any) -> Note:
    """A Note; `note` is an extraction keyword of `make messages`, so `template` must be a
    literal string for it to be translated."""
    return Note(template, params)


def verbatim(text: str) -> Note:
    """A Note of words that are not ours to translate (a system error, a device's answer)."""
    return Note("{text}", {"text": text})


def notes_joined(first: Note, *more: Note) -> Note:
    """Several notes shown as one, separated by "; " (or the reader's language's separator)."""
    for following in more:
        first = note("{first}; {second}", first=first, second=following)
    return first


NO_NOTE = Note("")


@dataclass(frozen=True)
class ProbeResult:
    """One check's outcome.

    readings: metric name -> value, names matching METRIC_NAME_RE (e.g. ``ping.rtt_ms``);
        only what was actually measured (an unreachable host has no latency).
    note: a short explanation, empty or terse when OK (`message` is it in English).
    duration_ms: wall time the whole probe took, retries included.
    """

    status: ProbeStatus
    readings: dict[str, float]
    note: Note
    duration_ms: float

    def __post_init__(self) -> None:
        # A bad name is a programming error in a probe; fail loudly in tests, not in the store.
        for name in self.readings:
            if not METRIC_NAME_RE.fullmatch(name):
                raise ValueError(f"invalid metric name: {name!r}")

    @property
    def ok(self) -> bool:
        return self.status is ProbeStatus.OK

    @property
    def message(self) -> str:
        return str(self.note)


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading)."""
    return round((time.perf_counter() - started) * 1000, 3)


def finished(
    status: ProbeStatus, readings: dict[str, float], message: Note, started: float
) -> ProbeResult:
    """The result of a probe that began at `started` (time.perf_counter())."""
    return ProbeResult(status, readings, message, elapsed_ms(started))
