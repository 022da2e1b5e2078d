"""``warren fidelity``: is the simulator's verdict RabbitMQ's? Every catalog scenario that
both backends support runs with the same client on the simulated cluster (virtual time,
deterministic) and on a real cluster (``--real local``: rabbitmq-server processes;
``--real docker``: containers), and the table says, per scenario, the
verdict and key figures on each (recovery s, lost, duplicated) and whether the verdicts
agree. A disagreement is either a simulator bug to fix or a RabbitMQ behaviour to explain:
:data:`EXPLAINED` holds the explanations, printed in the table's last column.
``--markdown FILE`` writes the table (the README's comes from it). Exit 0 when every verdict
agrees, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from scenarios import catalog
from scenarios.backends.base import BackendUnavailable
from scenarios.backends.local_run import unsupported
from scenarios.checker import format_value
from scenarios.model import ScenarioError
from scenarios.runner import run_many

REAL_BACKENDS = ("local", "docker")
COLUMNS = ("scenario", "sim", "sim figures", "real", "real figures", "agree", "why they differ")
#: scenario -> the RabbitMQ behaviour behind a known disagreement
EXPLAINED: dict[str, str] = {}


def brief(result) -> str:
    f = result.figures
    if result.error:
        return result.error[:60]
    return (
        f"recovery {format_value(f.get('max_publish_recovery', 0))} s, "
        f"lost {format_value(f.get('lost', 0))}, dup {format_value(f.get('duplicated', 0))}"
    )


def rows(pairs: list[tuple]) -> list[tuple]:
    out = []
    for scenario, sim, real in pairs:
        agree = "yes" if sim.verdict == real.verdict else "no"
        why = "" if agree == "yes" else EXPLAINED.get(scenario.name, "; ".join(real.misses))
        out.append((scenario.name, sim.verdict, brief(sim), real.verdict, brief(real), agree,
                    why))  # fmt: skip
    return out


def markdown(table_rows: list[tuple], real: str, seconds: float) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows]
    agreed = sum(1 for row in table_rows if row[5] == "yes")
    return "\n".join(lines) + (
        f"\n\n{agreed} of {len(table_rows)} verdicts agree (virtual vs {real}, bundled client, "
        f"seed 1, {seconds:.0f} s)\n"
    )


def run_fidelity(args: argparse.Namespace) -> int:
    try:
        scenarios = catalog.select_builtin(args.pattern)
    except ScenarioError as exc:
        print(f"warren fidelity: {exc}", file=sys.stderr)
        return 2
    skipped = [(s.name, unsupported(s, args.real)) for s in scenarios if unsupported(s, args.real)]
    chosen = [s for s in scenarios if not unsupported(s, args.real)]
    started = time.monotonic()
    sims = {r.scenario: r for r in run_many(chosen, [args.seed], args.client, "virtual", 1)}
    pairs = []
    try:
        for real in run_many(chosen, [args.seed], args.client, args.real, 1):
            scenario = next(s for s in chosen if s.name == real.scenario)
            pairs.append((scenario, sims[real.scenario], real))
            print(f"  {real.scenario:42} sim {sims[real.scenario].verdict:5} "
                  f"{args.real} {real.verdict}", flush=True)  # fmt: skip
    except BackendUnavailable as exc:
        print(f"warren fidelity: the {args.real} backend cannot start: {exc}", file=sys.stderr)
        return 2
    table_rows = rows(pairs)
    seconds = time.monotonic() - started
    out = Table(title=f"simulator vs real RabbitMQ ({args.real} backend)")
    for column in COLUMNS:
        out.add_column(column, max_width=48)
    for row in table_rows:
        out.add_row(*row)
    Console(width=240).print(out)
    for name, reason in skipped:
        print(f"  not on {args.real}: {name} ({reason})")
    if args.markdown is not None:
        args.markdown.write_text(markdown(table_rows, args.real, seconds))
    return 0 if all(row[5] == "yes" for row in table_rows) else 1


def add_parser(sub) -> None:
    fidelity = sub.add_parser("fidelity", help="the catalog on the simulator and real RabbitMQ")
    fidelity.add_argument("-k", dest="pattern", help="scenarios whose name or family matches")
    fidelity.add_argument("--seed", type=int, default=1)
    fidelity.add_argument("--client", default="bundled", help="the client adapter (bundled)")
    fidelity.add_argument("--real", choices=REAL_BACKENDS, default="local", help="default: local")
    fidelity.add_argument("--markdown", type=Path, default=None, help="write the table here")
    fidelity.set_defaults(func=run_fidelity)
