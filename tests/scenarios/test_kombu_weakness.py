"""Scenarios that catch a known kombu weakness fail with unmodified kombu, for the reason
the comparison table gives (scenarios/catalog/kombu_notes.py), while the bundled client
passes the same scenario on the same backend: in virtual time (kombu on the world's virtual
OS layer) as on the live backend where the reasons were first measured."""

from __future__ import annotations

import pytest

from scenarios import adapters, catalog
from scenarios.catalog import kombu_notes
from scenarios.runner import run_one


def fault_time(result, action: str) -> float:
    return next(t for t, kind, d in result.events if kind == "fault" and d["action"] == action)


def recoveries(result, actor: str) -> list[float]:
    return [
        t for t, kind, d in result.events
        if kind == "recovery_succeeded" and d.get("actor") == actor
    ]  # fmt: skip


@pytest.fixture(scope="module", params=["virtual", "live"])
def hung_node(request):
    scenario = catalog.find("consume.ensure-hung-node")
    return scenario, {
        client: run_one(scenario, 1, adapters.load(client), request.param)
        for client in ("bundled", "kombu")
    }


def test_kombu_stalls_in_its_polite_close_until_the_hung_node_resumes(hung_node):
    scenario, results = hung_node
    assert scenario.kombu_weakness == kombu_notes.POLITE_CLOSE
    ours, kombu = results["bundled"], results["kombu"]
    assert ours.passed, (ours.misses, ours.error)
    assert kombu.verdict == "fail", (kombu.misses, kombu.error)
    assert any(m.startswith("max_consumer_silence") for m in kombu.misses), kombu.misses
    resumed = fault_time(kombu, "resume node3")
    # the reason: no failover while node3 hangs; kombu's reconnect comes only once the node
    # answers its channel.close again, and then nothing confirmed is lost
    assert min(recoveries(kombu, "consumer")) >= resumed
    assert min(recoveries(ours, "consumer")) < resumed - 20
    assert kombu.figures["lost"] == 0 and kombu.figures["delivered"] >= 100


def test_kombu_simple_queue_fails_over_then_waits_in_its_rebind_until_the_node_resumes():
    """kombu's SimpleQueue leaves node3 in time, but its revive's queue.bind waits for the
    hung peer (broker_sim.schema_lock), so nothing is consumed until node3 answers; the
    bundled client re-binds without waiting and consumes at once."""
    scenario = catalog.find("consume.simple-hung-node")
    assert scenario.kombu_weakness == kombu_notes.REBIND_WAITS
    ours, kombu = (run_one(scenario, 1, adapters.load(c), "virtual") for c in ("bundled", "kombu"))
    assert ours.passed, (ours.misses, ours.error)
    assert kombu.verdict == "fail" and kombu.figures["lost"] == 0, kombu.misses
    paused, resumed = fault_time(kombu, "pause node3"), fault_time(kombu, "resume node3")
    assert paused < min(recoveries(kombu, "consumer")) < resumed, "kombu did fail over"
    after_pause = [t for t, kind, d in kombu.events if kind == "deliver" and t > paused]
    assert min(after_pause) >= resumed, "yet it consumed nothing until the resume"


@pytest.mark.parametrize("backend", ["virtual", "live"])
def test_kombu_lets_the_404_of_a_queue_on_a_down_node_escape_ensure(backend):
    scenario = catalog.find("cluster.queue-node-down")
    assert scenario.kombu_weakness == kombu_notes.REDECLARE_404
    kombu = run_one(scenario, 1, adapters.load("kombu"), backend)
    assert kombu.verdict == "fail"
    assert "escaped == 0: got 1" in kombu.misses
    (trace,) = kombu.escaped
    assert "NotFound" in trace and "404" in trace and "in revive" in trace


def test_kombu_in_virtual_time_fails_exactly_the_scenarios_the_live_backend_showed():
    """The catalog with kombu on the virtual backend (seconds): the publish/consume
    scenarios it fails are exactly those whose kombu weakness was measured on the live
    backend, each for the same reason; it passes every other one."""
    scenarios = [s for s in catalog.builtin() if s.probe is None]
    kombu = adapters.load("kombu")
    verdicts = {s.name: run_one(s, 1, kombu, "virtual") for s in scenarios}
    failed = {name for name, r in verdicts.items() if not r.passed}
    assert failed == {s.name for s in scenarios if s.kombu_weakness}
    assert all(r.verdict in ("pass", "fail") for r in verdicts.values())  # no errors
    again = run_one(catalog.find("network.blackhole"), 1, kombu, "virtual")
    assert again.digest == verdicts["network.blackhole"].digest
