"""Warren's pytest plugin (entry point ``pytest11``: active once Warren is installed).

Fixtures:

- ``warren``: a fresh faultable cluster per test (:mod:`scenarios.harness`): ``urls`` /
  ``url`` (failover list), ``spawn(name, fn, *args)``, ``at(seconds, fault, *args)``,
  ``fault(name, *args)`` now, ``run(until)``, ``history``, ``figures()`` (the checker's),
  ``schedule`` (the faults applied). The backend is the live simulated cluster unless
  ``--warren-backend virtual`` or the test's marker says otherwise.
- ``warren_toxiproxy_url``: the cluster's Toxiproxy-compatible API (live backend).

Marker: ``@pytest.mark.warren(nodes=3, backend="virtual", seed=7, users={"app": "pw"},
vhosts=("orders",))``; bad values are a usage error at collection, naming the test and the
setting. Options: ``--warren-backend virtual|live|local|docker``, ``--warren-seed N`` (the
seed of every ``warren`` fixture, default 1: a failure on the virtual backend replays exactly).

On a failure, the report gets a "warren" section: backend, seed, the fault schedule as
applied, and the command that runs the test again with the same seed.
"""

from __future__ import annotations

import pytest

from scenarios.harness import BACKENDS, HarnessError, Settings, open_harness

MARKER = "warren"
_HARNESS_KEY = pytest.StashKey()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("warren", "Warren: chaos testing for AMQP clients")
    group.addoption(
        "--warren-backend",
        default=None,
        help=f"{' or '.join(BACKENDS)}: the warren fixture's (default live) and the catalog "
        "items' (default virtual)",
    )
    group.addoption(
        "--warren-seed", type=int, default=1, help="seed of every warren fixture (default 1)"
    )
    group.addoption(
        "--warren-catalog",
        action="store_true",
        help="collect Warren's scenario catalog as test items (one per scenario and seed)",
    )
    group.addoption("--warren-seeds", type=int, default=1, help="catalog seeds 1..N (default 1)")
    group.addoption("--warren-client", default="bundled", help="catalog client (default bundled)")
    group.addoption("-K", "--warren-select", default=None, help="catalog scenarios matching")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "warren(nodes=3, backend=..., seed=..., users=..., vhosts=...): the warren fixture's "
        "cluster for this test",
    )
    try:
        Settings(backend=config.getoption("--warren-backend") or "live")
    except HarnessError as exc:
        raise pytest.UsageError(f"--warren-backend: {exc}") from None
    if config.getoption("--warren-seeds") < 1:
        raise pytest.UsageError("--warren-seeds: must be >= 1")


def settings_for(item) -> Settings:
    """The harness settings of ``item``: options, then its marker's keywords."""
    config = item.config
    options = {
        "backend": config.getoption("--warren-backend") or "live",
        "seed": config.getoption("--warren-seed"),
    }
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        if marker.args:
            raise HarnessError(f"takes keywords only, got {marker.args!r}")
        options.update(marker.kwargs)
    try:
        return Settings(**options)
    except TypeError as exc:  # an unknown keyword
        raise HarnessError(str(exc).replace("__init__()", "the marker")) from None


def pytest_collection_modifyitems(session, config, items) -> None:
    """Bad marker settings fail the collection with one line per test, not at run time."""
    errors = []
    for item in items:
        if item.get_closest_marker(MARKER) is None:
            continue
        try:
            settings_for(item)
        except HarnessError as exc:
            errors.append(f"{item.nodeid}: @pytest.mark.warren: {exc}")
    if errors:
        raise pytest.UsageError("\n".join(errors))
    if config.getoption("--warren-catalog"):
        items.extend(catalog_items(session, config))


# -- the catalog as test items (pytest-xdist spreads them over cores or hosts) -----------------


class ScenarioFailed(Exception):
    """A catalog item's run did not pass: its misses and replay command."""


class ScenarioItem(pytest.Item):
    """One catalog scenario with one seed on one backend, played by one client."""

    def __init__(self, *, scenario, seed: int, client: str, backend: str, **kwargs):
        super().__init__(**kwargs)
        self.scenario, self.seed, self.client, self.backend = scenario, seed, client, backend

    def runtest(self) -> None:
        from scenarios import adapters
        from scenarios.runner import run_one

        try:
            adapter = adapters.load(self.client)
        except adapters.AdapterError as exc:
            raise ScenarioFailed(str(exc)) from None
        result = run_one(self.scenario, self.seed, adapter, self.backend)
        result.client = self.client  # the replay names the client as it was given
        self.user_properties.append(("digest", result.digest))
        if not result.passed:
            raise ScenarioFailed(
                f"{result.verdict}: {'; '.join(result.misses) or result.error}\n"
                f"replay: {result.replay}"
            )

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return "warren-catalog", None, f"{self.scenario.name} seed {self.seed}"


def catalog_items(session, config) -> list:
    from scenarios import adapters, catalog

    client = config.getoption("--warren-client")
    backend = config.getoption("--warren-backend") or "virtual"
    try:
        adapters.check_spec(client)
        scenarios = catalog.select(catalog.builtin(), config.getoption("--warren-select"))
    except (adapters.AdapterError, ValueError) as exc:
        raise pytest.UsageError(f"--warren-catalog: {exc}") from None
    seeds = range(1, config.getoption("--warren-seeds") + 1)
    return [
        ScenarioItem.from_parent(
            session,
            name=f"warren::{s.name}[{seed}]",
            scenario=s,
            seed=seed,
            client=client,
            backend=backend,
        )  # fmt: skip
        for s in scenarios
        for seed in seeds
    ]


@pytest.fixture
def warren(request):
    """A fresh faultable cluster for this test (see the module docstring)."""
    harness = open_harness(settings_for(request.node))
    request.node.stash[_HARNESS_KEY] = harness
    yield harness
    harness.close()


@pytest.fixture
def warren_toxiproxy_url(warren) -> str:
    """The Toxiproxy-compatible API of the warren fixture's cluster (toxiproxy-python,
    curl, or any Toxiproxy client)."""
    return warren.toxiproxy_url


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    harness = item.stash.get(_HARNESS_KEY, None)
    if harness is not None and report.failed:
        lines = [
            f"backend {harness.backend}, seed {harness.seed}, {len(harness.schedule)} faults:",
            *(f"  {line}" for line in harness.schedule),
            f"replay: {harness.replay(item.nodeid)}",
        ]
        report.sections.append(("warren", "\n".join(lines)))
    return report
