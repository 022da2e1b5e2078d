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


def test_kombu_on_the_virtual_backend_says_where_it_runs():
    result = run_one(catalog.find("consume.mixin-kill"), 1, adapters.load("kombu"), "virtual")
    assert result.verdict == "error" and "runs on the live backend" in result.error


def test_a_world_only_fault_on_the_live_backend_is_an_error_naming_it():
    scenario = catalog.find("network.isolated-publisher")
    result = run_one(scenario, 1, adapters.load("bundled"), "live")
    assert result.verdict == "error" and "['isolate', 'rejoin']" in result.error
