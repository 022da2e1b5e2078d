"""``warren compare``: the catalog with the bundled client, kombu and pika side by side, on
the virtual backend (unmodified kombu in virtual time, a few seconds) or ``--backend live``
(real sockets and time, minutes): verdict and key figures per scenario, and for each
scenario kombu or pika fails, why, in one line: the scenario's ``kombu_weakness`` /
``pika_weakness`` when it names one, else the expectation missed. Probe scenarios (checks of
the bundled client's own API: retry accounting, configuration) have no kombu or pika
counterpart and say so.
``--markdown FILE`` writes the table (the README's comes from it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from scenarios import catalog
from scenarios.checker import format_value
from scenarios.model import ScenarioError
from scenarios.runner import run_many

CLIENTS = ("bundled", "kombu", "pika")  # the bundled client, then the unmodified libraries


def brief(result) -> str:
    f = result.figures
    return (
        f"lost {format_value(f.get('lost', 0))}, dup {format_value(f.get('duplicated', 0))}, "
        f"recovery {format_value(f.get('max_publish_recovery', 0))} s, "
        f"silence {format_value(f.get('max_consumer_silence', 0))} s"
    )


def why(scenario, client: str, result) -> str:
    """One line: why ``client`` failed ``scenario`` (its noted weakness, else the misses)."""
    if result.passed:
        return ""
    noted = getattr(scenario, f"{client}_weakness", None)
    return noted or "; ".join(result.misses) or (result.error or "")[:160]


def columns(clients: tuple[str, ...]) -> list[str]:
    out = ["scenario", clients[0], f"{clients[0]} figures"]
    for client in clients[1:]:
        out += [client, f"{client} figures", f"why {client} fails"]
    return out


def rows(scenarios, results: dict, clients: tuple[str, ...] = CLIENTS) -> list[tuple]:
    out = []
    for s in scenarios:
        ours = results[(clients[0], s.name)]
        row = [s.name, ours.verdict, brief(ours)]
        for client in clients[1:]:
            if s.probe is not None:  # a check of the bundled client's own API
                row += ["n/a", "", ""]
            else:
                theirs = results[(client, s.name)]
                row += [theirs.verdict, brief(theirs), why(s, client, theirs)]
        out.append(tuple(row))
    return out


def markdown(
    table_rows: list[tuple], seconds: float, backend: str, seed: int, clients=CLIENTS
) -> str:
    header = columns(clients)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows]
    return "\n".join(lines) + f"\n\n({backend} backend, seed {seed}, {seconds:.3g} s)\n"


def run_compare(args: argparse.Namespace) -> int:
    try:
        scenarios = catalog.select_builtin(args.pattern)
    except ScenarioError as exc:
        print(f"warren compare: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    results = {}
    for client in CLIENTS:
        chosen = scenarios if client == "bundled" else [s for s in scenarios if s.probe is None]
        for r in run_many(chosen, [args.seed], client, args.backend, args.jobs):
            results[(client, r.scenario)] = r
            print(f"  {client:8} {r.scenario:42} {r.verdict}", flush=True)
    table_rows = rows(scenarios, results)
    seconds = time.monotonic() - started
    out = Table(title=f"the bundled client vs kombu and pika ({args.backend} backend)")
    for column in columns(CLIENTS):
        out.add_column(column, max_width=44)
    for row in table_rows:
        out.add_row(*row)
    Console(width=240).print(out)
    if args.markdown is not None:
        args.markdown.write_text(markdown(table_rows, seconds, args.backend, args.seed))
    ours_failed = sum(1 for r in table_rows if r[1] != "pass")
    return 1 if ours_failed else 0


def add_parser(sub) -> None:
    compare = sub.add_parser("compare", help="the catalog with the bundled client, kombu, pika")
    compare.add_argument("-k", dest="pattern", help="scenarios whose name or family matches")
    compare.add_argument("--seed", type=int, default=1)
    compare.add_argument(
        "--backend", choices=("virtual", "live"), default="virtual", help="default: virtual"
    )
    compare.add_argument("--jobs", type=int, default=1, help="parallel processes")
    compare.add_argument("--markdown", type=Path, default=None, help="write the table here")
    compare.set_defaults(func=run_compare)
