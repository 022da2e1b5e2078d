"""A Celery worker on the simulated node and on a real RabbitMQ node, side by side in one run:

- worker start-to-ready: from the process start to Celery's ``worker_ready`` signal;
- tasks per second: TASKS tasks sent with confirms (``app.send_task``), from the first send
  until the worker's ``task_success`` for the last one (solo pool, prefetch 4, early ack);
- the ratio sim / real (goal >= 1.0).

The worker is Warren's Celery adapter's (``scenarios.adapters.celery_worker``), its
history file read for the times.

    python bench/celery_worker.py [TASKS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from celery import Celery  # noqa: E402

from broker_sim import SimCluster  # noqa: E402
from scenarios.adapters.celery_worker import work_queue  # noqa: E402
from scenarios.backends.local import RealRabbitNode  # noqa: E402

TASKS = 2000  # or argv[1] (read in main: the worker imports this module for its app)
LIMIT = 300.0  # seconds any one wait may take
APP = "bench.celery_worker:app"
QUEUE = "bench-celery"

app = Celery("bench")
app.conf.update(worker_prefetch_multiplier=4, broker_heartbeat=10)


def lines(history: Path) -> list[dict]:
    return [json.loads(line) for line in history.read_text().splitlines() if line.endswith("}")]


def wait_for(history: Path, kind: str, count: int) -> float:
    """The wall time of the ``count``-th ``kind`` line (bounded by LIMIT)."""
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        seen = [line["t"] for line in lines(history) if line["kind"] == kind]
        if len(seen) >= count:
            return seen[count - 1]
        time.sleep(0.05)
    raise TimeoutError(f"{count} {kind} lines not seen in {LIMIT:g} s")


def measure(url: str) -> tuple[float, float]:
    """(start-to-ready s, tasks/s) of one worker against ``url``."""
    workdir = Path(tempfile.mkdtemp(prefix="warren-bench-celery-"))
    history = workdir / "history.jsonl"
    history.touch()
    command = [sys.executable, "-m", "scenarios.adapters.celery_worker", "--app", APP,
               "--broker", url, "--queue", QUEUE, "--history", str(history),
               "--hostname", "bench@localhost"]  # fmt: skip
    log = open(workdir / "worker.log", "wb")  # noqa: SIM115 (closed below)
    started = time.time()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_for(history, "worker_ready", 1) - started
        queue = work_queue(QUEUE, {})
        conn = app.connection_for_write(url=url, transport_options={"confirm_publish": True})
        with conn:
            producer = app.amqp.Producer(conn)
            first = time.time()
            for n in range(TASKS):
                app.send_task("warren.work", args=(n,), producer=producer, queue=queue)
        last = wait_for(history, "succeeded", TASKS)
        return ready, TASKS / (last - first)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def main() -> None:
    global TASKS
    TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else TASKS
    with SimCluster(nodes=1) as sim:
        sim_ready, sim_rate = measure(sim.nodes[0].url)
    workdir = Path(tempfile.mkdtemp(prefix="warren-bench-real-"))
    with RealRabbitNode(workdir=workdir) as real:
        real_ready, real_rate = measure(real.url)
    print(f"celery {TASKS} tasks, solo pool, confirms (Celery 5.7, kombu 5.7)")
    print(f"{'':24}{'sim':>10}{'real':>10}{'sim/real':>10}")
    print(f"{'worker start-to-ready s':24}{sim_ready:10.2f}{real_ready:10.2f}"
          f"{sim_ready / real_ready:10.2f}")  # fmt: skip
    print(f"{'tasks per second':24}{sim_rate:10.0f}{real_rate:10.0f}{sim_rate / real_rate:10.2f}")


if __name__ == "__main__":
    main()
