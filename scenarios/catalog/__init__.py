"""The scenario catalog: the built-in scenarios, one small file per family, plus the user's.

Each family module holds a ``SCENARIOS`` tuple of :class:`scenarios.model.Scenario`. A user
adds theirs with ``warren run --scenarios mypkg.myscenarios`` (a module with a ``SCENARIOS``
list) or ``--scenarios path/to/scenarios.toml`` (:func:`load_toml`: one ``[[scenario]]``
table each, with ``setup``, ``publishers``, ``consumers``, ``faults``, ``expect`` keys that
mirror the dataclasses).
"""

from __future__ import annotations

import fnmatch
import importlib
import tomllib
from pathlib import Path

from scenarios.model import (
    ConsumerSpec,
    Fault,
    Probe,
    Publisher,
    Scenario,
    ScenarioError,
    Setup,
)

FAMILIES = ("connect", "client_api", "publish", "consume", "heartbeat", "cluster", "network")


def builtin() -> list[Scenario]:
    found: list[Scenario] = []
    for family in FAMILIES:
        found.extend(importlib.import_module(f"scenarios.catalog.{family}").SCENARIOS)
    names = [s.name for s in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(f"scenario names used twice: {', '.join(duplicates)}")
    return found


def load(source: str) -> list[Scenario]:
    """User scenarios from a ``.toml`` file or an importable module's ``SCENARIOS``."""
    if source.endswith(".toml"):
        return load_toml(Path(source))
    try:
        module = importlib.import_module(source)
    except ImportError as exc:
        raise ScenarioError(f"scenarios {source!r} cannot be imported: {exc}") from exc
    scenarios = getattr(module, "SCENARIOS", None)
    if not isinstance(scenarios, (list, tuple)) or not all(
        isinstance(s, Scenario) for s in scenarios
    ):
        raise ScenarioError(f"module {source!r} has no SCENARIOS list of Scenario objects")
    return list(scenarios)


def load_toml(path: Path) -> list[Scenario]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    tables = data.get("scenario")
    if not isinstance(tables, list):
        raise ScenarioError(f"{path}: expected [[scenario]] tables")
    return [_from_table(path, table) for table in tables]


def _from_table(path: Path, table: dict) -> Scenario:
    where = f"{path}: scenario {table.get('name', '?')!r}"
    try:
        probe = table.get("probe")
        return Scenario(
            name=table["name"],
            family=table.get("family", "user"),
            description=table.get("description", ""),
            checks=table.get("checks", ""),
            setup=Setup(**table.get("setup", {})),
            publishers=tuple(Publisher(**_tuples(p)) for p in table.get("publishers", [{}])),
            consumers=tuple(ConsumerSpec(**_tuples(c)) for c in table.get("consumers", [{}])),
            probe=Probe(**probe) if probe else None,
            faults=tuple(
                Fault(**{**f, "args": tuple(f.get("args", ()))}) for f in table.get("faults", [])
            ),
            expect=dict(table.get("expect", {})),
            duration=float(table.get("duration", 300.0)),
        )
    except ScenarioError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc!r}") from exc


def _tuples(table: dict) -> dict:
    return {k: tuple(v) if k == "nodes" else v for k, v in table.items()}


def select(scenarios: list[Scenario], pattern: str | None) -> list[Scenario]:
    """``-k``: a glob over names and families, or a substring of a name."""
    if not pattern:
        return list(scenarios)
    return [
        s
        for s in scenarios
        if pattern in s.name
        or fnmatch.fnmatch(s.name, pattern)
        or fnmatch.fnmatch(s.family, pattern)
    ]


def select_builtin(pattern: str | None) -> list[Scenario]:
    """The built-in scenarios ``-k pattern`` selects, or ScenarioError when none."""
    chosen = select(builtin(), pattern)
    if not chosen:
        raise ScenarioError(f"no scenario matches -k {pattern!r}")
    return chosen


def find(name: str, extra: tuple[str, ...] = ()) -> Scenario:
    everything = builtin() + [s for source in extra for s in load(source)]
    for scenario in everything:
        if scenario.name == name:
            return scenario
    raise ScenarioError(f"unknown scenario {name!r} (warren run --list names them)")
