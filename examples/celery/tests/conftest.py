"""``run_scenario(name, app)``: one of Warren's catalog scenarios against one of the shop's
Celery apps, its worker a real ``celery worker`` process on Warren's live simulated
cluster (real TCP, real time)."""

import pytest

from scenarios import adapters, catalog
from scenarios.runner import run_one


@pytest.fixture
def run_scenario():
    def run(name: str, app: str, seed: int = 1):
        return run_one(catalog.find(name), seed, adapters.load(f"celery:{app}"), "live")

    return run
