"""The harness the ``warren`` fixture yields (scenarios.harness), used directly."""

from __future__ import annotations

import pytest

from scenarios.harness import Settings, open_harness


@pytest.mark.parametrize("backend", ["virtual", "live"])
def test_at_takes_a_callable_as_a_step_and_names_it_in_the_schedule(backend):
    harness = open_harness(Settings(backend=backend, nodes=1))
    try:
        seen = []

        def look() -> None:
            seen.append(round(harness.now()))

        harness.spawn("idle", harness.sleep, 2.0)
        harness.at(1.0, look)
        harness.run(until=5)
        assert seen == [1]
        assert harness.schedule[0].endswith(" look"), harness.schedule
    finally:
        harness.close()
