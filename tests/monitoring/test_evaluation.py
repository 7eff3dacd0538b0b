"""The check state engine (monitoring.evaluation) as pure functions: thresholds both ways,
hysteresis at its boundaries, N consecutive results, no data, and availability probes."""

from __future__ import annotations

import math

import pytest

from onestop.monitoring.evaluation import (
    Direction,
    Memory,
    Mode,
    ProbeStatus,
    Rule,
    State,
    candidate,
    evaluate,
    problems,
    recovery_level,
)

OK, WARNING, CRITICAL, UNKNOWN = State.OK, State.WARNING, State.CRITICAL, State.UNKNOWN
CPU = Rule(warning=80, critical=90)  # higher is worse
FREE = Rule(direction=Direction.LOWER_IS_WORSE, warning=20, critical=10)  # lower is worse


def run(rule: Rule, values, memory: Memory | None = None, statuses=None) -> list[Memory]:
    """Feeds the values in order and returns the memory after each one."""
    memory = memory or Memory()
    seen = []
    statuses = statuses or [None] * len(values)
    for value, status in zip(values, statuses, strict=True):
        memory = evaluate(rule, memory, value, status).memory
        seen.append(memory)
    return seen


def states(rule: Rule, values, start: State = UNKNOWN, statuses=None) -> list[State]:
    return [m.state for m in run(rule, values, Memory(start), statuses)]


# Thresholds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, OK), (79.99, OK), (80, WARNING), (89.9, WARNING), (90, CRITICAL), (150, CRITICAL)],
)
def test_higher_is_worse_levels_are_reached_at_the_level(value, expected):
    assert candidate(CPU, OK, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(100, OK), (20.01, OK), (20, WARNING), (10.5, WARNING), (10, CRITICAL), (-3, CRITICAL)],
)
def test_lower_is_worse_is_the_mirror_image(value, expected):
    assert candidate(FREE, OK, value) == expected


def test_only_a_critical_level_skips_warning():
    rule = Rule(critical=95)
    assert states(rule, [50, 94.9, 95, 40]) == [OK, OK, CRITICAL, OK]


def test_only_a_warning_level_never_goes_critical():
    rule = Rule(warning=70)
    assert states(rule, [10, 70, 1000, 69]) == [OK, WARNING, WARNING, OK]


# Hysteresis -------------------------------------------------------------------------------------


def test_without_hysteresis_the_state_follows_the_level_exactly():
    assert states(CPU, [85, 79.9, 80, 90, 89.99], start=OK) == [
        WARNING,
        OK,
        WARNING,
        CRITICAL,
        WARNING,
    ]


def test_recovery_level_holds_warning_until_it_is_reached():
    rule = Rule(warning=80, critical=90, recovery=70)
    # Once WARNING, 79 and 70.01 are still not back; 70 is.
    assert states(rule, [85, 79, 70.01, 70], start=OK) == [WARNING, WARNING, WARNING, OK]
    # From OK the same values never raise WARNING: hysteresis only delays recovery.
    assert states(rule, [79, 70.01, 70], start=OK) == [OK, OK, OK]


def test_recovery_level_mirrors_for_lower_is_worse():
    rule = Rule(direction=Direction.LOWER_IS_WORSE, warning=20, critical=10, recovery=30)
    assert states(rule, [15, 25, 29.9, 30], start=OK) == [WARNING, WARNING, WARNING, OK]
    assert states(rule, [5, 12, 25, 31], start=OK) == [CRITICAL, WARNING, WARNING, OK]


def test_hysteresis_holds_critical_and_steps_down_through_warning():
    rule = Rule(warning=80, critical=90, hysteresis=5)
    # CRITICAL holds above 85; between 75 and 85 it steps down to WARNING; OK at 75 or less.
    assert states(rule, [95, 88, 85.01, 85, 76, 75.01, 75], start=OK) == [
        CRITICAL,
        CRITICAL,
        CRITICAL,
        WARNING,
        WARNING,
        WARNING,
        OK,
    ]
    assert recovery_level(rule) == 75


def test_hysteresis_from_critical_straight_to_ok():
    rule = Rule(warning=80, critical=90, hysteresis=5)
    assert states(rule, [95, 60], start=OK) == [CRITICAL, OK]


def test_hysteresis_without_warning_level_holds_critical_until_recovery():
    rule = Rule(critical=90, recovery=60)
    # No WARNING to step down to: CRITICAL holds until the recovery level.
    assert states(rule, [91, 80, 60.5, 60], start=OK) == [CRITICAL, CRITICAL, CRITICAL, OK]


def test_hysteresis_is_measured_from_the_confirmed_state_not_a_candidate():
    rule = Rule(warning=80, critical=90, recovery=70, consecutive=2)
    # One reading of 85 is only a candidate: the state is still OK, so 75 is plainly OK and the
    # interrupted run never confirms WARNING.
    assert states(rule, [85, 75, 85, 75], start=OK) == [OK, OK, OK, OK]


def test_unknown_holds_nothing():
    rule = Rule(warning=80, critical=90, recovery=70)
    assert candidate(rule, UNKNOWN, 75) == OK
    assert candidate(rule, WARNING, 75) == WARNING


# N consecutive ----------------------------------------------------------------------------------


def test_n_consecutive_results_are_needed_to_change():
    rule = Rule(warning=80, critical=90, consecutive=3)
    memories = run(rule, [95, 95, 95], Memory(OK))
    assert [m.state for m in memories] == [OK, OK, CRITICAL]
    assert [(m.candidate, m.count) for m in memories] == [(CRITICAL, 1), (CRITICAL, 2), (None, 0)]


def test_an_interrupted_run_starts_over():
    rule = Rule(warning=80, critical=90, consecutive=3)
    # Two bad, one good (resets), then three bad.
    assert states(rule, [95, 95, 10, 95, 95, 95], start=OK) == [OK, OK, OK, OK, OK, CRITICAL]
    # A missing value points elsewhere (unknown) and interrupts a worse run too.
    assert states(rule, [95, 95, None, 95, 95], start=OK) == [OK] * 5


def test_a_run_of_mixed_severities_lands_on_the_mildest():
    rule = Rule(warning=80, critical=90, consecutive=3)
    assert states(rule, [95, 85, 95], start=OK) == [OK, OK, WARNING]
    # From WARNING, a CRITICAL run escalates once it is confirmed.
    assert states(rule, [95, 95, 95], start=WARNING) == [WARNING, WARNING, CRITICAL]


def test_a_recovery_run_lands_on_the_most_severe_of_the_run():
    rule = Rule(warning=80, critical=90, consecutive=2)
    assert states(rule, [10, 85], start=CRITICAL) == [CRITICAL, WARNING]
    assert states(rule, [10, 10], start=CRITICAL) == [CRITICAL, OK]


def test_a_result_that_agrees_with_the_state_resets_the_count():
    rule = Rule(critical=90, consecutive=2)
    memory = evaluate(rule, Memory(OK), 95).memory
    assert (memory.candidate, memory.count) == (CRITICAL, 1)
    outcome = evaluate(rule, memory, 10)
    assert outcome.memory == Memory(OK)
    assert not outcome.changed


def test_outcome_reports_the_change_and_the_previous_state():
    outcome = evaluate(Rule(critical=90), Memory(OK), 99)
    assert outcome.changed
    assert (outcome.previous, outcome.state, outcome.candidate) == (OK, CRITICAL, CRITICAL)
    still = evaluate(Rule(critical=90), outcome.memory, 99)
    assert not still.changed
    assert still.state == CRITICAL


def test_a_new_check_needs_n_results_to_leave_unknown():
    rule = Rule(critical=90, consecutive=2)
    assert states(rule, [10, 10]) == [UNKNOWN, OK]
    assert states(rule, [95, 95]) == [UNKNOWN, CRITICAL]
    # OK and CRITICAL point opposite ways from UNKNOWN: each interrupts the other.
    assert states(rule, [10, 95, 10, 95]) == [UNKNOWN] * 4


# No data and availability ------------------------------------------------------------------------


def test_missing_data_is_unknown_after_n_results():
    rule = Rule(warning=80, critical=90, consecutive=2)
    assert states(rule, [95, None, None], start=CRITICAL) == [CRITICAL, CRITICAL, UNKNOWN]
    assert candidate(rule, OK, math.nan) == UNKNOWN
    assert candidate(rule, OK, math.inf) == UNKNOWN


def test_a_threshold_check_whose_probe_fails_is_unknown_not_critical():
    rule = Rule(critical=500)  # e.g. an HTTP response time in ms
    assert candidate(rule, OK, None, ProbeStatus.UNREACHABLE) == UNKNOWN
    assert candidate(rule, OK, None, ProbeStatus.FAILED) == UNKNOWN
    assert candidate(rule, OK, 120.0, ProbeStatus.OK) == OK


def test_availability_no_answer_is_critical():
    ping = Rule(mode=Mode.AVAILABILITY)
    assert candidate(ping, OK, None, ProbeStatus.UNREACHABLE) == CRITICAL
    assert candidate(ping, OK, None, ProbeStatus.FAILED) == CRITICAL
    assert candidate(ping, OK, None, None) == CRITICAL  # no result at all
    assert candidate(ping, CRITICAL, None, ProbeStatus.OK) == OK
    assert candidate(ping, CRITICAL, 0.8, None) == OK  # an answer with its round trip time


def test_availability_with_a_probe_that_could_not_run_is_unknown():
    ping = Rule(mode=Mode.AVAILABILITY)
    assert candidate(ping, OK, None, ProbeStatus.UNKNOWN) == UNKNOWN
    # The plain string value (as the poller's own enum compares) works the same.
    assert candidate(ping, OK, None, "unknown") == UNKNOWN
    assert candidate(ping, OK, None, "unreachable") == CRITICAL


def test_availability_with_thresholds_judges_the_answer():
    ping = Rule(mode=Mode.AVAILABILITY, warning=100, critical=300, consecutive=2)
    results = [(20.0, "ok"), (150.0, "ok"), (150.0, "ok"), (None, "unreachable")]
    results.append((None, "unreachable"))
    memories = run(ping, [v for v, _ in results], Memory(OK), [s for _, s in results])
    assert [m.state for m in memories] == [OK, OK, WARNING, WARNING, CRITICAL]


# Rules that make no sense ----------------------------------------------------------------------


def test_sound_rules_have_no_problems():
    assert problems(CPU) == {}
    assert problems(FREE) == {}
    assert problems(Rule(warning=80, critical=90, recovery=70, hysteresis=2, consecutive=3)) == {}
    assert problems(Rule(mode=Mode.AVAILABILITY)) == {}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (Rule(warning=95, critical=90), {"warning": "warning_beyond_critical"}),
        (Rule(warning=90, critical=90), {"warning": "warning_beyond_critical"}),
        (
            Rule(direction=Direction.LOWER_IS_WORSE, warning=5, critical=10),
            {"warning": "warning_beyond_critical"},
        ),
        (Rule(warning=80, critical=90, recovery=85), {"recovery": "recovery_wrong_side"}),
        (Rule(warning=80, critical=90, recovery=80), {"recovery": "recovery_wrong_side"}),
        (
            Rule(direction=Direction.LOWER_IS_WORSE, warning=20, critical=10, recovery=15),
            {"recovery": "recovery_wrong_side"},
        ),
        (Rule(critical=90, recovery=95), {"recovery": "recovery_wrong_side"}),
        (Rule(), {"critical": "no_levels"}),
        (Rule(critical=90, hysteresis=-1), {"hysteresis": "negative_hysteresis"}),
        (Rule(critical=90, consecutive=0), {"consecutive": "consecutive_too_small"}),
        (Rule(critical=math.nan), {"critical": "not_finite"}),
    ],
)
def test_nonsense_rules_are_named(rule, expected):
    assert problems(rule) == expected
