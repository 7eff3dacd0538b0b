"""The state engine of checks, as pure functions (no database): one result in, the new state out.

A check is in one of four states: OK, WARNING, CRITICAL or UNKNOWN. Each result is first turned
into a *candidate* state (what this one result says), then the candidate has to be confirmed by
`consecutive` results in a row before the check's state changes.

Candidate of one result (`candidate`):

- The probe could not run (`ProbeStatus.UNKNOWN`) → UNKNOWN: nothing is known about the target.
- The target did not answer or answered wrongly (`UNREACHABLE`, `FAILED`, or neither a value
  nor a status) → CRITICAL for an availability check (no answer *is* the problem), UNKNOWN for a
  threshold check (a metric that is missing says nothing about its level).
- An availability check whose target answered (`ProbeStatus.OK`) with no value → OK.
- Otherwise the value is compared with the thresholds (an availability check may have thresholds
  too, e.g. on the round-trip time; without any, an answer is OK):

  * "higher is worse": CRITICAL when value ≥ critical, WARNING when value ≥ warning, else OK;
    "lower is worse" is the mirror image (value ≤ critical …).
  * Hysteresis: a state already reached holds until the value is clearly back. CRITICAL holds
    while the value is still beyond `critical − hysteresis`; once CRITICAL or WARNING, the check
    comes back to OK only when the value reaches the recovery level: `recovery` if given, else
    `warning − hysteresis` (or `critical − hysteresis` when there is no warning level). In
    between, CRITICAL steps down to WARNING (or holds, when there is no warning level).
    "Beyond" and "reaches" mirror for "lower is worse". Hysteresis is measured from the
    *confirmed* state, never from a candidate, and UNKNOWN holds nothing.

Confirmation (`evaluate`), with N = `consecutive` ≥ 1:

- A candidate equal to the current state confirms it and resets the running count.
- Otherwise the result joins the current *run* if it points the same way as the run: worse (more
  severe than the state), better (less severe) or unknown. From UNKNOWN, OK counts as better and
  WARNING/CRITICAL as worse. A result that points another way starts a new run of 1, so an
  interrupted run starts over.
- The run remembers its *bound*: the mildest candidate of a worse run, the most severe of a
  better run. When the run reaches N results the state becomes the bound, so the new state is
  one that all N results agreed on (OK → WARNING, CRITICAL, CRITICAL with N=3 gives WARNING).
- N = 1 changes the state at the first differing result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class Direction(StrEnum):
    HIGHER_IS_WORSE = "higher"
    LOWER_IS_WORSE = "lower"


class Mode(StrEnum):
    THRESHOLD = "threshold"  # a metric's level decides; no data is UNKNOWN
    AVAILABILITY = "availability"  # no answer is CRITICAL; thresholds (if any) on the answer


class ProbeStatus(StrEnum):
    """What a probe says besides a number; the values of the poller's probes.base.ProbeStatus,
    so either enum (or its plain string) can be passed."""

    OK = "ok"  # the target answered as expected
    FAILED = "failed"  # it answered, but not as expected (HTTP 500, missing text, bad banner)
    UNREACHABLE = "unreachable"  # nothing answered (timeout, refused, 100 % loss)
    UNKNOWN = "unknown"  # the probe itself could not run: nothing is known about the target


_SEVERITY = {State.OK: 0, State.WARNING: 1, State.CRITICAL: 2}


@dataclass(frozen=True)
class Rule:
    """How a check judges its results."""

    direction: Direction = Direction.HIGHER_IS_WORSE
    warning: float | None = None
    critical: float | None = None
    recovery: float | None = None  # back to OK only here; default: warning − hysteresis
    hysteresis: float = 0.0
    consecutive: int = 1
    mode: Mode = Mode.THRESHOLD


@dataclass(frozen=True)
class Memory:
    """What a check carries from one result to the next."""

    state: State = State.UNKNOWN
    candidate: State | None = None  # the bound of the running run, None when there is none
    count: int = 0  # results in the running run


@dataclass(frozen=True)
class Outcome:
    """The check after one result: its memory, what the result said and whether it changed."""

    memory: Memory
    previous: State
    candidate: State  # what this one result said
    changed: bool

    @property
    def state(self) -> State:
        return self.memory.state


def _worse(value: float, level: float, direction: Direction) -> bool:
    """True when value is strictly worse than level."""
    return value > level if direction == Direction.HIGHER_IS_WORSE else value < level


def _toward_ok(level: float, amount: float, direction: Direction) -> float:
    """The level moved by amount towards the good side."""
    return level - amount if direction == Direction.HIGHER_IS_WORSE else level + amount


def _entering(value: float, rule: Rule) -> State:
    """The state the value reaches on its own, without hysteresis."""
    if rule.critical is not None and not _worse(rule.critical, value, rule.direction):
        return State.CRITICAL  # value at or beyond critical
    if rule.warning is not None and not _worse(rule.warning, value, rule.direction):
        return State.WARNING
    return State.OK


def recovery_level(rule: Rule) -> float | None:
    """The level a value must reach to bring a WARNING or CRITICAL check back to OK."""
    if rule.recovery is not None:
        return rule.recovery
    level = rule.warning if rule.warning is not None else rule.critical
    return None if level is None else _toward_ok(level, rule.hysteresis, rule.direction)


def _held(value: float, rule: Rule, state: State) -> State:
    """The state the confirmed state keeps for this value (hysteresis), OK if none."""
    if state not in (State.WARNING, State.CRITICAL):
        return State.OK
    if state == State.CRITICAL and rule.critical is not None:
        holds_at = _toward_ok(rule.critical, rule.hysteresis, rule.direction)
        if _worse(value, holds_at, rule.direction):
            return State.CRITICAL
    back = recovery_level(rule)
    if back is None or not _worse(value, back, rule.direction):
        return State.OK
    # Not back to OK yet: CRITICAL steps down to WARNING, or holds when there is no WARNING.
    return State.WARNING if rule.warning is not None else state


def candidate(rule: Rule, state: State, value: float | None, status: str | None = None) -> State:
    """What one result says, given the check's confirmed state (see the module docstring)."""
    if status == ProbeStatus.UNKNOWN:
        return State.UNKNOWN
    if value is not None and not math.isfinite(value):
        value = None
    answered = status == ProbeStatus.OK or (status is None and value is not None)
    if not answered:
        return State.CRITICAL if rule.mode == Mode.AVAILABILITY else State.UNKNOWN
    if value is None:
        return State.OK if rule.mode == Mode.AVAILABILITY else State.UNKNOWN
    entering, held = _entering(value, rule), _held(value, rule, state)
    return entering if _SEVERITY[entering] >= _SEVERITY[held] else held


def _way(state: State, target: State) -> str:
    """Which way a candidate points from the confirmed state: worse, better or unknown."""
    if target == State.UNKNOWN:
        return "unknown"
    if state == State.UNKNOWN:
        return "better" if target == State.OK else "worse"
    return "worse" if _SEVERITY[target] > _SEVERITY[state] else "better"


def _bound(way: str, bound: State, target: State) -> State:
    if way == "worse":
        return min(bound, target, key=_SEVERITY.__getitem__)
    if way == "better":
        return max(bound, target, key=_SEVERITY.__getitem__)
    return target


def evaluate(rule: Rule, memory: Memory, value: float | None, status: str | None = None) -> Outcome:
    """Feeds one result to a check and returns its new memory (see the module docstring)."""
    needed = max(int(rule.consecutive), 1)
    said = candidate(rule, memory.state, value, status)
    if said == memory.state:
        return Outcome(Memory(memory.state), memory.state, said, changed=False)
    way = _way(memory.state, said)
    running = memory.candidate
    if running is not None and memory.count > 0 and _way(memory.state, running) == way:
        bound, count = _bound(way, running, said), memory.count + 1
    else:
        bound, count = said, 1
    if count >= needed:
        return Outcome(Memory(bound), memory.state, said, changed=True)
    return Outcome(Memory(memory.state, bound, count), memory.state, said, changed=False)


def problems(rule: Rule) -> dict[str, str]:
    """What makes no sense in a rule, as {field: code}; empty when it is sound.

    Codes: not_finite, no_levels, warning_beyond_critical, recovery_wrong_side,
    negative_hysteresis, consecutive_too_small.
    """
    found: dict[str, str] = {}
    for field in ("warning", "critical", "recovery", "hysteresis"):
        level = getattr(rule, field)
        if level is not None and not math.isfinite(level):
            found[field] = "not_finite"
    if found:
        return found
    if rule.mode == Mode.THRESHOLD and rule.warning is None and rule.critical is None:
        found["critical"] = "no_levels"
    both = rule.warning is not None and rule.critical is not None
    if both and not _worse(rule.critical, rule.warning, rule.direction):
        found["warning"] = "warning_beyond_critical"
    entry = rule.warning if rule.warning is not None else rule.critical
    if rule.recovery is not None and (
        entry is None or not _worse(entry, rule.recovery, rule.direction)
    ):
        found["recovery"] = "recovery_wrong_side"
    if rule.hysteresis < 0:
        found["hysteresis"] = "negative_hysteresis"
    if rule.consecutive < 1:
        found["consecutive"] = "consecutive_too_small"
    return found
