"""The catalog: at least 30 scenarios, each well-formed, each passing with the bundled
client on the virtual backend over a sweep of seeds; the same seed replays byte for byte;
bad definitions are refused naming the bad part."""

from __future__ import annotations

import pytest

from scenarios import adapters, catalog
from scenarios.model import ConsumerSpec, Fault, Publisher, Scenario, ScenarioError, pipeline
from scenarios.runner import run_one

SEEDS = range(5)
SCENARIOS = catalog.builtin()
FAMILIES_ASKED = {"connect", "client_api", "publish", "consume", "heartbeat", "cluster", "network"}


def test_the_catalog_covers_what_it_must():
    assert len(SCENARIOS) >= 30
    assert {s.family for s in SCENARIOS} == FAMILIES_ASKED
    for s in SCENARIOS:
        assert s.description and s.checks, s.name
    names = {s.name for s in SCENARIOS}
    for expected in (
        "connect.shuffle",
        "ensure.max-retries-none",
        "ensure.deadline",
        "cluster.rolling-restart",
        "cluster.partition-flapping",
        "cluster.resource-alarm",
        "network.blackhole",
        "pool.through-an-outage",
        "config.refused",
        "ensure.irrecoverable-404",
    ):
        assert expected in names


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_scenario_passes_with_the_bundled_client_over_a_seed_sweep(scenario):
    adapter = adapters.load("bundled")
    for seed in SEEDS:
        result = run_one(scenario, seed, adapter)
        assert result.passed, (seed, result.misses, result.error, result.escaped, result.replay)


def test_a_scenario_replays_to_the_same_digest():
    scenario = catalog.find("publish.confirms-kill")
    adapter = adapters.load("bundled")
    first, again = run_one(scenario, 3, adapter), run_one(scenario, 3, adapter)
    assert first.digest == again.digest
    assert run_one(scenario, 4, adapter).digest != first.digest


def test_conditional_faults_fire_on_their_condition():
    result = run_one(catalog.find("publish.conditional-kill"), 1, adapters.load("bundled"))
    kill = next(t for t, kind, d in result.events if kind == "fault")
    confirmed_before = sum(
        1 for t, kind, d in result.events if kind == "publish_ok" and d["confirmed"] and t <= kill
    )
    assert confirmed_before == 50


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name"}, "a name is lowercase"),
        ({"faults": (Fault("explode", at=1.0),)}, "unknown fault 'explode'"),
        ({"faults": (Fault("kill", ("node1",)),)}, "needs one of at= or when="),
        ({"faults": (Fault("kill", ("node1",), when="lots > 3"),)}, "condition 'lots > 3'"),
        ({"expect": {"nonsense": "== 0"}}, "unknown figure 'nonsense'"),
        ({"expect": {"lost": "none"}}, "threshold 'none' for 'lost'"),
        ({"consumers": (ConsumerSpec(style="telepathy"),)}, "consumer style 'telepathy'"),
        ({"publishers": (Publisher(nodes=(7,)),)}, "names nodes [7]"),
    ],
)
def test_bad_definitions_are_refused_naming_the_bad_part(kwargs, message):
    base = {"name": "user.x", "family": "user", "description": "d", "checks": "c"}
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Scenario(**{**base, **kwargs})


def test_an_escaping_exception_and_a_role_that_never_returns_are_reported():
    class Broken:
        name = "broken"

        def publisher(self, env, spec):
            raise RuntimeError("the user's publisher crashed")

        def consumer(self, env, spec):
            env.sleep(1)

    scenario = pipeline("user.crash", "d", "c")
    result = run_one(scenario, 1, Broken())
    assert result.verdict == "fail" and "escaped == 0: got 1" in result.misses
    assert "the user's publisher crashed" in result.escaped[0]

    class Stuck(Broken):
        def publisher(self, env, spec):
            while True:  # never yields to the world: bounded by the wall timeout
                pass

    stuck = run_one(scenario, 1, Stuck(), wall_timeout=1)
    assert stuck.verdict == "error" and "real time" in stuck.error


def test_user_scenarios_from_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        """
[[scenario]]
name = "user.kill"
description = "node1 dies"
checks = "nothing lost"
publishers = [{messages = 20, nodes = [0, 1]}]
consumers = [{style = "mixin"}]
faults = [{action = "kill", args = ["node1"], at = 1.0}]
expect = {lost = "== 0"}
"""
    )
    (scenario,) = catalog.load(str(path))
    assert scenario.publishers[0].nodes == (0, 1)
    assert run_one(scenario, 2, adapters.load("bundled")).passed
    path.write_text("[[scenario]]\nname = 'user.bad'\nfaults = [{action = 'explode', at = 1}]\n")
    with pytest.raises(ScenarioError, match="unknown fault 'explode'"):
        catalog.load(str(path))
