"""Unmodified pika (BlockingConnection) on the catalog: in virtual time it fails exactly the
scenarios whose pika weakness is noted (scenarios/catalog/pika_notes.py), for that reason,
and the live backend shows the same."""

from __future__ import annotations

import pytest

from scenarios import adapters, catalog
from scenarios.catalog import pika_notes
from scenarios.runner import run_one

HEARTBEAT_CHECK_SLACK = 5.0  # pika.heartbeat: _check_interval = timeout + 5
STACK_TIMEOUT = 15.0  # pika.connection.Parameters.DEFAULT_STACK_TIMEOUT


def test_pika_in_virtual_time_fails_exactly_the_scenarios_noted_for_it():
    scenarios = [s for s in catalog.builtin() if s.probe is None]
    pika = adapters.load("pika")
    verdicts = {s.name: run_one(s, 1, pika, "virtual") for s in scenarios}
    assert all(r.verdict in ("pass", "fail") for r in verdicts.values()), {
        n: r.error for n, r in verdicts.items() if r.error
    }
    failed = {name for name, r in verdicts.items() if not r.passed}
    assert failed == {s.name for s in scenarios if s.pika_weakness}
    assert all(r.figures["lost"] == 0 for r in verdicts.values())  # late, never lost


@pytest.mark.parametrize("backend", ["virtual", "live"])
def test_pika_finds_a_hung_node_at_its_heartbeat_check_then_waits_on_it_again(backend):
    scenario = catalog.find("publish.confirms-hung-node")
    assert scenario.pika_weakness == pika_notes.SLOW_HEARTBEAT_CHECK
    result = run_one(scenario, 1, adapters.load("pika"), backend)
    assert result.verdict == "fail" and result.figures["lost"] == 0, result.misses
    heartbeat = scenario.publishers[0].heartbeat
    paused = next(t for t, k, d in result.events if k == "fault" and d["action"] == "pause node1")
    error_at, error, hung = next(
        (t, d["error"], d["broker"])
        for t, k, d in result.events
        if k == "error" and d["actor"] == "publisher"
    )
    check = heartbeat + HEARTBEAT_CHECK_SLACK
    assert error == "AMQPHeartbeatTimeout"
    assert check - 1 <= error_at - paused <= 2 * check + 1, (paused, error_at)
    back, broker = next(
        (t, d["broker"])
        for t, k, d in result.events
        if k == "recovery_succeeded" and d["actor"] == "publisher"
    )
    assert back - error_at >= STACK_TIMEOUT - 1  # the hung node1 is tried first again
    assert broker != hung  # and the next node is the one that answers
