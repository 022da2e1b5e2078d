"""Splitting a run for CI matrix jobs: ``warren run --shard K/N`` plays every N-th
(scenario, seed) run starting at the K-th, and ``warren merge DIR...`` joins the shards'
``results.json`` into one report (JUnit, Markdown, HTML) and one exit status.

Runs are dealt round-robin over the run's fixed order (catalog order, then seed), so each
shard gets a mix of fast and slow scenarios and the N shards together hold each run
exactly once. A seed's history does not depend on the shard that plays it, so a shard's
failure replays with the same ``warren replay`` command as an unsharded run's."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

SHARD = re.compile(r"(\d+)/(\d+)")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` with 1 <= K <= N, as argparse's type= (its error is the usage message)."""
    match = SHARD.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (for example 2/4)")
    k, n = int(match[1]), int(match[2])
    if n < 1 or not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be in 1..N and N >= 1")
    return k, n


def deal(items: list, shard: tuple[int, int]) -> list:
    """The K-th of N round-robin hands of ``items``."""
    k, n = shard
    return items[k - 1 :: n]


def add_merge_parser(sub) -> None:
    merge = sub.add_parser(
        "merge",
        help="merge the reports of warren run --shard jobs into one",
        description="Merge the results.json of shard reports into one report; exit 0 if "
        "every run passed, 1 if any failed, 2 on a usage error.",
    )
    merge.add_argument("folders", nargs="+", type=Path, metavar="REPORT", help="shard reports")
    merge.add_argument("--report", type=Path, default=Path("warren-report"), help="output folder")
    merge.add_argument("--expect", type=int, help="fail (exit 1) unless this many runs merged")
    merge.set_defaults(func=cmd_merge)


def cmd_merge(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scenarios.report import store, write_all
    from scenarios.report.terminal import replays, table

    try:
        order, results = store.merge([store.load(folder) for folder in args.folders])
    except store.StoreError as exc:
        print(f"warren merge: {exc}", file=sys.stderr)
        return 2
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(table(results))
    for line in replays(results):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    passed = sum(1 for r in results if r.passed)
    console.print(f"{passed} of {len(results)} runs passed ({len(args.folders)} reports merged)")
    clients = sorted({r.client for r in results})
    backends = sorted({r.backend for r in results})
    title = f"warren run: {', '.join(clients)} on {', '.join(backends)}"
    args.report.mkdir(parents=True, exist_ok=True)
    store.save(results, args.report, order)
    paths = write_all(results, args.report, title)
    console.print(f"report: {paths['html']} ({paths['junit'].name}, {paths['markdown'].name})")
    if args.expect is not None and len(results) != args.expect:
        print(f"warren merge: {len(results)} runs merged, {args.expect} expected", file=sys.stderr)
        return 1
    return 0 if passed == len(results) else 1
