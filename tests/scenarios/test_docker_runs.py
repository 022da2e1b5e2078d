"""``warren run --backend docker``: catalog scenarios on real RabbitMQ containers give the
simulator's verdicts (the cluster itself is tested in test_docker_backend.py)."""

from __future__ import annotations

import pytest

from scenarios import adapters, catalog
from scenarios.backends import local_run
from scenarios.runner import run_one
from tests.scenarios.test_docker_backend import CI, _missing

pytestmark = [pytest.mark.real, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def docker_backend():
    missing = _missing()
    if missing and not CI:
        pytest.skip(f"docker backend: {missing}")
    yield
    local_run.close_shared("docker")


# publish.confirms-kill failed 1 of 3 docker runs (the first after an engine start; its misses
# were not kept) and lost 1 confirmed message in 1 of 6 local runs under load:
# open, in the issue notes; the kill path is covered by test_docker_backend.py
@pytest.mark.parametrize("name", ["network.reset-peer"])
def test_catalog_scenario_passes_in_docker_as_on_the_simulator(docker_backend, name):
    scenario = catalog.find(name)
    adapter = adapters.load("bundled")
    sim = run_one(scenario, 1, adapter, "virtual")
    real = run_one(scenario, 1, adapter, "docker")
    assert real.backend == "docker"
    assert (sim.verdict, real.verdict) == ("pass", "pass"), (real.misses, real.error)
    assert real.figures["lost"] == 0 and real.figures["delivered"] > 0


def test_a_heartbeat_fault_is_an_error_naming_it_on_docker(docker_backend):
    result = run_one(catalog.find("heartbeat.dropped-by-broker"), 1, adapters.load("bundled"),
                     "docker")  # fmt: skip
    assert result.verdict == "error" and "drop_heartbeats" in result.error
