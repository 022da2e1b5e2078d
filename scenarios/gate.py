"""``warren gate``: the CI resilience gate (DESIGN section 6).

It reads ``[tool.warren]`` from the project's ``pyproject.toml``::

    [tool.warren]
    client = "mypkg.warren:factory"   # default: bundled (or "celery:mypkg.worker:app")
    backend = "live"                  # default: virtual (a Celery worker needs live or real)
    select = "publish.*"              # -k patterns: a string or a list (default: all)
    scenarios = ["mypkg.scenarios"]   # more scenario sources (modules or .toml files)
    seeds = 5                         # seeds 1..5 (default 3)
    baseline = "warren-baseline.json" # default; committed by the project
    tolerance = 0.1                   # a figure may grow 10 % over its baseline ...
    slack = 0.25                      # ... or this much, whichever is more (default 0.25)

    [tool.warren.thresholds]          # on top of each scenario's own expectations,
    max_publish_recovery = "<= 10"    # wherever the scenario has the figure

runs the scenarios over the seeds, and exits 1 when a run fails or when a gated figure
(:data:`GATED`, the worst value over the seeds) regressed past the tolerance against the
baseline; ``--update-baseline`` writes the baseline instead. Bad configuration or a
malformed baseline exits 2 naming the bad part. The Markdown summary goes to
``$GITHUB_STEP_SUMMARY`` when it is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from scenarios import adapters, catalog
from scenarios.checker import evaluate, format_value, parse_threshold
from scenarios.model import ScenarioError
from scenarios.runner import BACKENDS, run_many

#: the figures the baseline keeps: for each, more is worse
GATED = (
    "lost",
    "unexpected",
    "duplicated",
    "failed",
    "unknown",
    "blocked_publishes",
    "escaped",
    "max_publish_recovery",
    "max_delivery_recovery",
    "max_publish_latency",
    "max_consumer_silence",
)
KEYS = {
    "client", "backend", "select", "scenarios", "seeds", "baseline", "tolerance", "slack",
    "thresholds",
}  # fmt: skip
BASELINE_VERSION = 1


class GateError(ValueError):
    """Bad ``[tool.warren]`` settings or a malformed baseline: exit 2."""


@dataclass
class GateConfig:
    client: str = "bundled"
    backend: str = "virtual"
    select: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    seeds: int = 3
    baseline: Path = Path("warren-baseline.json")
    tolerance: float = 0.1
    slack: float = 0.25
    thresholds: dict = field(default_factory=dict)


def read_config(pyproject: Path) -> GateConfig:
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise GateError(f"{pyproject}: {exc}") from exc
    table = data.get("tool", {}).get("warren")
    if not isinstance(table, dict):
        raise GateError(f"{pyproject}: no [tool.warren] table")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise GateError(f"[tool.warren]: unknown keys {unknown} (known: {sorted(KEYS)})")
    select = table.get("select", [])
    config = GateConfig(
        client=str(table.get("client", "bundled")),
        backend=str(table.get("backend", "virtual")),
        select=[select] if isinstance(select, str) else list(select),
        scenarios=list(table.get("scenarios", [])),
        seeds=table.get("seeds", 3),
        baseline=pyproject.parent / table.get("baseline", "warren-baseline.json"),
        tolerance=table.get("tolerance", 0.1),
        slack=table.get("slack", 0.25),
        thresholds=dict(table.get("thresholds", {})),
    )
    if not isinstance(config.seeds, int) or isinstance(config.seeds, bool) or config.seeds < 1:
        raise GateError(f"[tool.warren] seeds: an integer >= 1, got {config.seeds!r}")
    if config.backend not in BACKENDS:
        raise GateError(
            f"[tool.warren] backend: one of {', '.join(BACKENDS)}, got {config.backend!r}"
        )
    for name in ("tolerance", "slack"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise GateError(f"[tool.warren] {name}: a number >= 0, got {value!r}")
    for figure, threshold in config.thresholds.items():
        try:
            parse_threshold(figure, threshold)
        except ValueError as exc:
            raise GateError(f"[tool.warren.thresholds] {exc}") from None
    return config


def read_baseline(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GateError(f"baseline {path}: not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
        raise GateError(f"baseline {path}: expected an object with version {BASELINE_VERSION}")
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, dict) or not all(
        isinstance(v, dict) and all(isinstance(x, (int, float)) for x in v.values())
        for v in scenarios.values()
    ):
        raise GateError(f"baseline {path}: 'scenarios' must map names to {{figure: number}}")
    return scenarios


def worst_figures(results: list) -> dict[str, dict[str, float]]:
    """Per scenario, the worst value over its seeds of every gated figure."""
    worst: dict[str, dict[str, float]] = {}
    for r in results:
        mine = worst.setdefault(r.scenario, {})
        for figure in GATED:
            if figure in r.figures:
                mine[figure] = max(mine.get(figure, float("-inf")), r.figures[figure])
    return worst


def regressions(now: dict, baseline: dict, tolerance: float, slack: float) -> list[str]:
    found = []
    for scenario, figures in sorted(now.items()):
        before = baseline.get(scenario)
        if before is None:
            continue  # a new scenario: nothing to regress from
        for figure, value in sorted(figures.items()):
            if figure not in before:
                continue
            allowed = before[figure] + max(slack, tolerance * abs(before[figure]))
            if value > allowed:
                found.append(
                    f"{scenario}: {figure} {format_value(value)} > baseline "
                    f"{format_value(before[figure])} (allowed up to {format_value(allowed)})"
                )
    return found


def run_gate(args: argparse.Namespace) -> int:
    try:
        config = read_config(args.pyproject)
        baseline = None if args.update_baseline else read_baseline(config.baseline)
        adapters.check_spec(config.client)
        scenarios = catalog.builtin()
        for source in config.scenarios:
            scenarios += catalog.load(source)
        if config.select:
            chosen = [s for p in config.select for s in catalog.select(scenarios, p)]
            scenarios = list({s.name: s for s in chosen}.values())
        if not scenarios:
            raise GateError(f"[tool.warren] select {config.select!r} matches no scenario")
    except (GateError, ScenarioError, adapters.AdapterError) as exc:
        print(f"warren gate: {exc}", file=sys.stderr)
        return 2
    results = list(
        run_many(scenarios, list(range(1, config.seeds + 1)), config.client, config.backend,
                 extra=tuple(config.scenarios), jobs=args.jobs)
    )  # fmt: skip
    for r in results:  # the project's thresholds, wherever the scenario has the figure
        extra = {f: t for f, t in config.thresholds.items() if f in r.figures}
        if r.verdict == "pass" and extra:
            r.misses = evaluate(r.figures, extra)
            r.verdict = "fail" if r.misses else "pass"
    now = worst_figures(results)
    found = regressions(now, baseline or {}, config.tolerance, config.slack)
    failed = [r for r in results if not r.passed]
    _report(results, found, config, args)
    if args.update_baseline:
        if failed:
            print("warren gate: not writing a baseline from failing runs", file=sys.stderr)
            return 1
        payload = {"version": BASELINE_VERSION, "client": config.client, "scenarios": now}
        config.baseline.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        print(f"baseline written: {config.baseline}")
        return 0
    return 1 if failed or found else 0


def _report(results, found, config, args) -> None:
    from scenarios.report import markdown, write_all

    summary = markdown.render(results, f"warren gate: {config.client}")
    if found:
        summary += "\n## Regressions against the baseline\n\n" + "".join(
            f"- {line}\n" for line in found
        )
    passed = sum(1 for r in results if r.passed)
    print(f"warren gate: {passed} of {len(results)} runs passed, {len(found)} regression(s)")
    for r in results:
        if not r.passed:
            print(f"  FAIL {r.scenario} (seed {r.seed}): {'; '.join(r.misses) or r.error}")
            print(f"       {r.replay}")
    for line in found:
        print(f"  REGRESSION {line}")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as out:
            out.write(summary)
    if args.report is not None:
        write_all(results, args.report, f"warren gate: {config.client}")


def add_parser(sub) -> None:
    gate = sub.add_parser("gate", help="the CI resilience gate ([tool.warren] in pyproject)")
    gate.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    gate.add_argument("--update-baseline", action="store_true", help="write the baseline")
    gate.add_argument("--report", type=Path, default=None, help="also write a report folder")
    gate.add_argument("--jobs", type=int, default=1, help="parallel processes")
    gate.set_defaults(func=run_gate)
