"""Property-based testing with Warren, measured:

- Hypothesis examples per second for the state machine (WarrenMachine, bundled client,
  3 nodes, 20 steps) on the virtual backend (goal >= 50/s);
- the time to find and shrink each deliberately weakened client's failure
  (tests/scenarios/weakened.py), with the shrunk schedule's length;
- a 1,000-seed catalog sweep as pytest items (``pytest --warren-catalog``), one process vs
  pytest-xdist ``-n 2``, and the speed-up.

    python bench/properties.py [--examples 100] [--seeds 1000] [--no-xdist]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from scenarios.strategies import (  # noqa: E402
    PHASES,
    PropertyFailure,
    WarrenMachine,
    check,
    fault_schedules,
)
from tests.scenarios.test_strategies import CASES  # noqa: E402

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)


class Machine(WarrenMachine):
    client = "bundled"


def machine_rate(examples: int) -> float:
    started = time.perf_counter()
    run_state_machine_as_test(
        Machine, settings=settings(SETTINGS, max_examples=examples, stateful_step_count=20)
    )
    return examples / (time.perf_counter() - started)


def shrink(case: str) -> tuple[float, int]:
    client, kinds, queue_type, workload, _miss = CASES[case]
    found = []

    @settings(SETTINGS, max_examples=200)
    @given(fault_schedules(nodes=3, max_faults=3, kinds=kinds))
    def holds(schedule):
        try:
            check(client(), schedule, workload, queue_type=queue_type)
        except PropertyFailure:
            found.append(schedule)
            raise

    started = time.perf_counter()
    try:
        holds()
    except PropertyFailure:
        pass
    return time.perf_counter() - started, len(found[-1]) if found else -1


def sweep(seeds: int, workers: int | None) -> float:
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--warren-catalog",
        "-K", "consume.mixin-kill", "--warren-seeds", str(seeds),
    ]  # fmt: skip
    if workers:
        command += ["-n", str(workers)]
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--no-xdist", action="store_true")
    args = parser.parse_args()
    rate = machine_rate(args.examples)
    bad = rate < 50
    print(f"state machine (bundled, 3 nodes, 20 steps), {args.examples} examples:")
    print(f"  {rate:6.1f} examples/s  (goal >= 50/s)  {'met' if rate >= 50 else 'NOT met'}")
    print("weakened clients, found and shrunk (fault_schedules, max 3 episodes):")
    for case in sorted(CASES):
        seconds, length = shrink(case)
        bad = bad or length < 0
        print(f"  {case:14} {seconds:6.1f} s, shrunk to {length} faults (one episode)")
    if not args.no_xdist:
        one = sweep(args.seeds, None)
        two = sweep(args.seeds, 2)
        print(f"pytest --warren-catalog, {args.seeds} seeds of consume.mixin-kill:")
        print(f"  one process {one:6.1f} s, -n 2 {two:6.1f} s: {one / two:.2f}x")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
