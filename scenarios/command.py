"""``warren run`` and ``warren replay --scenario``: select scenarios, run them (with a live
progress display), print the results table, write the report folder; exit 0 when every
run passed, 1 when one failed or errored, 2 on a usage error (an unknown client, backend,
scenario source, or a pattern that matches nothing)."""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console

from scenarios import adapters, catalog
from scenarios.backends.base import BackendUnavailable
from scenarios.model import ScenarioError
from scenarios.runner import BACKENDS, run_many, run_one


def _usage(message: str) -> int:
    print(f"warren run: {message}", file=sys.stderr)
    return 2


def select(args: argparse.Namespace):
    """The scenarios ``args`` ask for, or raise ScenarioError naming the problem."""
    scenarios = catalog.builtin()
    for source in args.scenarios:
        scenarios += catalog.load(source)
    chosen = catalog.select(scenarios, args.pattern)
    if not chosen:
        raise ScenarioError(f"no scenario matches -k {args.pattern!r} (warren run --list)")
    return chosen


def run_command(args: argparse.Namespace) -> int:
    if args.backend not in BACKENDS:
        return _usage(f"unknown backend {args.backend!r} (backends: {', '.join(BACKENDS)})")
    try:
        scenarios = select(args)
        adapters.check_spec(args.client)  # a factory that fails errs each run, reported
    except (ScenarioError, adapters.AdapterError) as exc:
        return _usage(str(exc))
    if args.list:
        for s in scenarios:
            print(f"{s.name:42} {s.description}")
        return 0
    console = Console()
    if not console.is_terminal:  # a CI log or a pipe: wide enough for the table
        console = Console(width=160)
    seeds = list(range(args.seed, args.seed + args.seeds))
    shard = getattr(args, "shard", (1, 1))
    total = len(scenarios) * len(seeds)
    count = len(range(shard[0] - 1, total, shard[1]))
    if count == 0:
        return _usage(f"shard {shard[0]}/{shard[1]} has no runs: the selection has {total}")
    started = time.monotonic()
    try:
        results = _run_all(args, scenarios, seeds, shard, console, count)
    except BackendUnavailable as exc:  # nothing ran: what is missing, how to fix it
        print(f"warren run: the {args.backend} backend cannot start: {exc}", file=sys.stderr)
        return 2
    results.sort(key=lambda r: ([s.name for s in scenarios].index(r.scenario), r.seed))
    from scenarios.report.terminal import replays, table

    console.print(table(results))
    for line in replays(results):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    passed = sum(1 for r in results if r.passed)
    part = f", shard {shard[0]}/{shard[1]}" if shard != (1, 1) else ""
    console.print(
        f"{passed} of {len(results)} runs passed in {time.monotonic() - started:.1f} s "
        f"(client {args.client}, backend {args.backend}, seeds {seeds[0]}..{seeds[-1]}{part})"
    )
    if not args.no_report:
        from scenarios.report import store, write_all

        paths = write_all(results, args.report, f"warren run: {args.client} on {args.backend}")
        store.save(results, args.report, [s.name for s in scenarios], shard)
        console.print(f"report: {paths['html']} ({paths['junit'].name}, {paths['markdown'].name})")
    return 0 if passed == len(results) else 1


def _run_all(args, scenarios, seeds, shard, console, count) -> list:
    results = []
    with _progress(console) as bar:
        task = bar.add_task("", total=count)
        for result in run_many(
            scenarios,
            seeds,
            args.client,
            args.backend,
            args.jobs,
            tuple(args.scenarios),
            args.wall_timeout,
            shard,
        ):
            results.append(result)
            bar.update(task, advance=1, description=f"{result.scenario} [{result.verdict}]")
    return results


def _progress(console: Console):
    from scenarios.report.terminal import progress

    return progress(console)


def replay_scenario(args: argparse.Namespace) -> int:
    """One scenario, one seed, exactly as ``warren run`` ran it: history, figures, digest."""
    seed = args.seed if args.seed is not None else args.seed_arg
    if seed is None:
        print("warren replay: give the seed (--seed N)", file=sys.stderr)
        return 2
    try:
        scenario = catalog.find(args.scenario, tuple(args.scenarios))
        adapter = adapters.load(args.client)
    except (ScenarioError, adapters.AdapterError) as exc:
        print(f"warren replay: {exc}", file=sys.stderr)
        return 2
    result = run_one(scenario, seed, adapter, args.backend)
    from broker_sim.drivers.virtual import World

    lines = World.format_events(result.events)
    for line in lines:
        print(line)
    for miss in result.misses:
        print(f"missed: {miss}")
    if result.error:
        print(f"error: {result.error}")
    for tb in result.escaped:
        print(tb, file=sys.stderr)
    print(f"verdict: {result.verdict}")
    if args.backend == "virtual":
        print(f"digest: {result.digest}")
    else:  # real time: a fresh run of the same scenario, not the same history
        print(f"(a fresh {args.backend} run: real time is not replayable event for event)")
    return 0 if result.passed else 1
