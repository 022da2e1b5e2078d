"""Real RabbitMQ backends side by side with the simulated cluster, in one run:

- the time to a ready 3-node cluster (the live simulated cluster vs rabbitmq-server
  processes on loopback, clustered, behind their proxies);
- for each node fault (kill, stop, pause), the time until a kombu connection on that node
  notices (heartbeat 2 s) and, after the repair, until a new connection to it succeeds.

    python bench/real_backends.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kombu  # noqa: E402

from broker_sim import SimCluster  # noqa: E402
from scenarios.backends.live import SimTarget  # noqa: E402
from scenarios.backends.local_run import LocalTarget  # noqa: E402
from scenarios.model import Fault  # noqa: E402

FAULTS = (("kill", "start"), ("stop", "start"), ("pause", "resume"))
LIMIT = 90.0  # seconds any one wait may take


def detect(target, fault: str, node: str, index: int) -> float:
    """Seconds from the fault until a consumer connection on the node raises. The
    connection is dropped, not closed: a polite close waits for close-ok from a hung node
    for as long as it hangs (kombu's POLITE_CLOSE, on real nodes as on the simulator)."""
    conn = kombu.Connection(target.url(index), heartbeat=2)
    conn.connect()
    try:
        started = time.monotonic()
        target.apply(Fault(fault, (node,), {}, at=0.0))
        while time.monotonic() - started < LIMIT:
            try:
                _drain_or_check(conn)
            except Exception:
                return time.monotonic() - started
        return float("nan")
    finally:
        conn.collect()


def _drain_or_check(conn) -> None:
    try:
        conn.drain_events(timeout=0.2)
    except TimeoutError:
        conn.heartbeat_check()


def recover(target, repair: str, node: str, index: int) -> float:
    """Seconds from the repair until a new connection to the node opens a channel."""
    started = time.monotonic()
    target.apply(Fault(repair, (node,), {}, at=0.0))
    while time.monotonic() - started < LIMIT:
        try:
            with kombu.Connection(target.url(index), connect_timeout=1) as conn:
                conn.connect()
                conn.channel().close()
                return time.monotonic() - started
        except Exception:
            time.sleep(0.05)
    return float("nan")


def measure(name: str, target) -> dict:
    figures = {}
    for fault, repair in FAULTS:
        figures[fault] = (detect(target, fault, "node2", 1), recover(target, repair, "node2", 1))
        print(f"  {name:6} {fault:6} detected {figures[fault][0]:6.2f} s, "
              f"back {figures[fault][1]:6.2f} s", flush=True)  # fmt: skip
    return figures


def main() -> int:
    started = time.monotonic()
    sim = SimCluster(nodes=3, net_ticktime=10.0).start()
    sim_ready = time.monotonic() - started
    try:
        sim_figures = measure("sim", SimTarget(sim))
    finally:
        sim.stop()
    started = time.monotonic()
    local = LocalTarget(3, net_ticktime=10).start()
    local_ready = time.monotonic() - started
    try:
        local_figures = measure("local", local)
    finally:
        local.close()
    print(f"ready 3-node cluster: sim {sim_ready:.2f} s, local {local_ready:.1f} s")
    print("fault   detected sim / local     back sim / local")
    for fault, _ in FAULTS:
        (sd, sb), (ld, lb) = sim_figures[fault], local_figures[fault]
        print(f"{fault:6}  {sd:6.2f} s / {ld:6.2f} s    {sb:6.2f} s / {lb:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
