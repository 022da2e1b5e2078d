"""The live backend (SimCluster, real TCP and time) with the bundled client and unmodified
kombu: the same scenario data, a different backend and client, no change to the scenario."""

from __future__ import annotations

from scenarios import adapters, catalog
from scenarios.runner import run_one


def test_the_bundled_client_passes_a_kill_on_the_live_backend():
    result = run_one(catalog.find("publish.confirms-kill"), 1, adapters.load("bundled"), "live")
    assert result.passed, (result.misses, result.error, result.escaped)
    assert result.figures["confirmed"] == 100 and result.figures["reconnects"] >= 1
    assert any(kind == "fault" for _, kind, _ in result.events)
    assert result.digest == "", "real time: no determinism claimed"


def test_kombu_consumes_through_a_kill_on_the_live_backend():
    result = run_one(catalog.find("consume.mixin-kill"), 1, adapters.load("kombu"), "live")
    assert result.passed, (result.misses, result.error, result.escaped)
    assert result.client == "kombu" and result.figures["delivered"] == 100


def test_an_adapter_on_a_backend_it_does_not_run_on_says_where_it_runs():
    class LiveOnly:
        name, backends = "live-only", ("live",)
        publisher = consumer = None

    result = run_one(catalog.find("consume.mixin-kill"), 1, LiveOnly(), "virtual")
    assert result.verdict == "error" and "runs on the live backend" in result.error


def test_an_isolated_role_on_the_live_backend_goes_silent_and_comes_back():
    """isolate/rejoin through the role's own proxies: the publisher (only) loses its link
    with no FIN/RST, finds out by heartbeats, and recovers after the rejoin."""
    scenario = catalog.find("network.isolated-publisher")
    result = run_one(scenario, 1, adapters.load("bundled"), "live")
    assert result.passed, (result.misses, result.error, result.escaped)
    faults = [d["action"] for _, kind, d in result.events if kind == "fault"]
    assert faults == ["isolate publisher", "rejoin publisher"]
    rejoined = next(t for t, kind, _ in result.events if kind == "fault" and t > 10)
    publisher_recovered = [
        t for t, kind, d in result.events
        if kind == "recovery_succeeded" and d.get("actor") == "publisher"
    ]  # fmt: skip
    assert publisher_recovered and min(publisher_recovered) >= rejoined, "back after the rejoin"
    assert not [
        t for t, kind, d in result.events
        if kind == "recovery_succeeded" and d.get("actor") == "consumer"
    ], "the consumer's links were not touched"  # fmt: skip
    assert result.figures["max_publish_recovery"] < 15 and rejoined > 0


class _QuietEnv:
    """A run whose consumer went quiet (a hung client): settled by silence, not drained."""

    publishers_left = 0

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        self.now += 0.5
        return self.now

    def settled(self) -> bool:
        return True  # nothing delivered for SETTLE_QUIET s

    def drained(self) -> bool:
        return False  # yet confirmed messages are still undelivered


def test_the_fault_schedule_still_repairs_what_it_broke_when_a_client_went_quiet():
    """A paused node is resumed on time even if the consumer hangs: stopping the schedule
    early would leave the fault in place and blame the client for Warren's omission."""
    from scenarios.backends.realtime import schedule
    from scenarios.model import Fault

    fired = []
    faults = [Fault("pause", ("node3",), at=1.0), Fault("resume", ("node3",), at=2.0)]
    schedule(_QuietEnv(), faults, lambda fault: fired.append(fault.action))
    assert fired == ["pause", "resume"]
