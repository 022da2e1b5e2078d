"""Wall time of the scenario catalog with the bundled client: on the virtual backend once in
one process and with ``--jobs 2`` (goal <= 10 s on a 2-core machine), a seed sweep's
scenarios per second, and the same catalog on the live backend (real TCP, real time,
``--jobs 2``) with the live/virtual ratio. Report writing (timelines) is timed apart.

    python bench/catalog.py [--sweep 20] [--no-live]
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
from scenarios.runner import run_many  # noqa: E402


def timed(scenarios, seeds, jobs: int, backend: str = "virtual") -> tuple[float, list]:
    started = time.perf_counter()
    results = list(run_many(scenarios, seeds, backend=backend, jobs=jobs))
    return time.perf_counter() - started, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=int, default=20, help="seeds per scenario in the sweep")
    parser.add_argument("--no-live", action="store_true", help="skip the live backend (minutes)")
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
    bad = failed + sum(1 for r in results if not r.passed)
    if not args.no_live:
        live, live_results = timed(scenarios, [1], 2, "live")
        live_failed = sum(1 for r in live_results if not r.passed)
        bad += live_failed
        print(
            f"  live backend, --jobs 2 {live:6.1f} s  ({live / two:,.0f}x the virtual --jobs 2), "
            f"{live_failed} failed"
        )
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
