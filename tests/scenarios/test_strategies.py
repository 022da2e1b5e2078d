"""Property-based fault schedules (scenarios.strategies): the bundled client holds the
properties, deliberately weakened clients (tests/scenarios/weakened.py) are caught, and
Hypothesis shrinks each counterexample to a short schedule."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import run_state_machine_as_test

from scenarios.model import ConsumerSpec, Publisher
from scenarios.strategies import (
    EPISODES,
    PHASES,
    PropertyFailure,
    WarrenMachine,
    check,
    fault_schedules,
    workloads,
)
from tests.scenarios.weakened import AckFirst, Forgetful, NoReconsume

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)
#: a classic queue on node1 with its consumer on node2: node1's death cancels the consumer;
#: publishing (75 s) outlasts the last repair (60 s at most), so deliveries are due after it
CANCELLED = (Publisher(messages=150, interval=0.5, heartbeat=4), ConsumerSpec(nodes=(1, 2, 0)))
#: a worker busy 0.4 s of every 0.5 s for 75 s: a crash at any moment is likely mid-message
WORKING = (
    Publisher(messages=150, interval=0.5, heartbeat=4),
    ConsumerSpec(work_seconds=0.4, prefetch=1),
)
CASES = {  # client, fault kinds, queue type, workload, the expectation it misses
    "forgetful": (Forgetful, ("kill", "stop", "pause"), "quorum", None, "lost == 0"),
    "no-reconsume": (NoReconsume, ("kill",), "classic", CANCELLED, "max_delivery_recovery"),
    "ack-first": (AckFirst, ("crash",), "quorum", WORKING, "unprocessed == 0"),
}


def shrunk_failure(adapter, kinds, queue_type, workload, examples: int = 200):
    """Run the property until it fails; the schedule Hypothesis shrank it to, and the text."""
    failures = []

    @settings(SETTINGS, max_examples=examples)
    @given(fault_schedules(nodes=3, max_faults=3, kinds=kinds))
    def holds(schedule):
        try:
            check(adapter, schedule, workload, queue_type=queue_type)
        except PropertyFailure as exc:
            failures.append((schedule, str(exc)))
            raise

    with pytest.raises(PropertyFailure):
        holds()
    return failures[-1]  # the last failure Hypothesis reports is the shrunk one


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_bundled_client_holds_the_property_that_catches_a_weakened_one(case):
    _client, kinds, queue_type, workload, _miss = CASES[case]

    @settings(SETTINGS, max_examples=25)
    @given(fault_schedules(nodes=3, max_faults=3, kinds=kinds))
    def holds(schedule):
        check("bundled", schedule, workload, queue_type=queue_type)

    holds()


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_weakened_client_is_caught_with_a_short_shrunk_schedule(case):
    client, kinds, queue_type, workload, miss = CASES[case]
    schedule, text = shrunk_failure(client(), kinds, queue_type, workload)
    assert len(schedule) <= 2, schedule  # one fault and its repair
    first = EPISODES[kinds[0]][0]
    assert schedule[0].action == first and miss in text
    assert "seed 1" in text and f"schedule: {first} " in text


class BundledMachine(WarrenMachine):
    client = "bundled"


class ForgetfulMachine(WarrenMachine):
    client = Forgetful()
    messages = 200  # 20 s of publishing: room for a kill mid-stream


def test_the_state_machine_holds_for_the_bundled_client():
    run_state_machine_as_test(
        BundledMachine, settings=settings(SETTINGS, max_examples=15, stateful_step_count=20)
    )


def test_the_state_machine_catches_the_forgetful_client_in_few_steps():
    with pytest.raises(AssertionError, match=r"lost = \d+ after steps") as info:
        run_state_machine_as_test(
            ForgetfulMachine,
            settings=settings(SETTINGS, max_examples=100, stateful_step_count=20),
        )
    steps = str(info.value).split("after steps ", 1)[1].split("]", 1)[0]
    assert steps.count(",") + 1 <= 4, steps  # shrunk: a break and a step or two


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fault_schedules(nodes=0), "nodes must be an integer >= 1, got 0"),
        (lambda: fault_schedules(max_faults=-1), "max_faults must be >= 0"),
        (lambda: fault_schedules(kinds=("meteor",)), "unknown fault kinds ['meteor']"),
        (lambda: fault_schedules(nodes=1, kinds=("partition",)), "a partition needs nodes >= 2"),
        (lambda: workloads(max_messages=0), "max_messages must be >= 1"),
    ],
)
def test_impossible_bounds_are_refused_when_the_strategy_is_made(call, message):
    with pytest.raises(InvalidArgument) as info:
        call()
    assert message in str(info.value)
