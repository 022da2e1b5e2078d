"""Wall time of the scenario catalog on the virtual backend, with the bundled client: the
whole catalog once in one process and with ``--jobs 2`` (goal <= 10 s on a 2-core machine),
and a seed sweep's scenarios per second. Report writing (timelines) is timed apart.

    python bench/catalog.py [--sweep 20]

The live backend (real TCP, real time) arrives with a later issue; its line says so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scenarios import catalog  # noqa: E402
from scenarios.report import write_all  # noqa: E402
from scenarios.runner import BACKENDS, run_many  # noqa: E402


def timed(scenarios, seeds, jobs: int) -> tuple[float, list]:
    started = time.perf_counter()
    results = list(run_many(scenarios, seeds, jobs=jobs))
    return time.perf_counter() - started, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=int, default=20, help="seeds per scenario in the sweep")
    args = parser.parse_args()
    scenarios = catalog.builtin()
    one, results = timed(scenarios, [1], 1)
    two, _ = timed(scenarios, [1], 2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        write_all(results, Path(folder))
    report = time.perf_counter() - started
    sweep, swept = timed(scenarios, list(range(args.sweep)), 2)
    failed = sum(1 for r in swept if not r.passed)
    print(f"catalog: {len(scenarios)} scenarios, bundled client, virtual backend")
    print(
        f"  one process          {one:6.2f} s  (goal <= 10 s)  {'met' if one <= 10 else 'NOT met'}"
    )
    print(f"  --jobs 2             {two:6.2f} s  ({one / two:.2f}x)")
    print(f"  report (timelines)   {report:6.2f} s")
    print(
        f"  sweep {args.sweep} seeds, --jobs 2: {len(swept)} runs in {sweep:.2f} s = "
        f"{len(swept) / sweep:,.0f} scenario runs/s, {failed} failed"
    )
    if "live" not in BACKENDS:
        print("  live backend: not available yet (a later issue); no live/virtual ratio")
    return 0 if failed == 0 and not any(not r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
