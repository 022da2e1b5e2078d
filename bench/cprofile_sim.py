"""Run ``warren sim`` with every thread under cProfile (``python -m cProfile`` only sees the
main thread, and the simulator's event loop runs in its ``warren-live-driver`` thread).

    python bench/cprofile_sim.py STATS_PATH [warren sim options...]

Stop it with SIGTERM or SIGINT: the sim shuts down, its threads finish, and the merged
statistics of all threads are written to STATS_PATH (read them with ``pstats``).
``bench/throughput.py --sim-profile PATH`` starts the sim this way.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_original_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile()
    with _lock:
        _profiles.append(profile)
    profile.enable()
    try:
        _original_run(self)
    finally:
        profile.disable()


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    threading.Thread.run = _profiled_run  # every thread started from now on
    from scenarios.cli import main as warren_main

    try:
        return warren_main(["sim", *sys.argv[2:]])
    finally:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join(timeout=10)
        with _lock:
            profiles = list(_profiles)
        if profiles:
            stats = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                stats.add(profile)
            stats.dump_stats(out)


if __name__ == "__main__":
    sys.exit(main())
