"""Simulated seconds per wall second in the deterministic world (goals: idle >= 1,000x,
traffic with a failover >= 10x):

(a) an idle 3-node cluster with 10 heartbeating connections (heartbeat 10 s) for one
    simulated hour;
(b) a publisher at 1,000 msg/s and a consumer (bundled client) for 10 simulated seconds,
    node1 killed at 3 s.

    python bench/virtual.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from broker_sim.drivers.virtual import START, World  # noqa: E402
from client import Connection, Consumer, Producer, Queue  # noqa: E402


def idle_hour(seed: int = 1) -> tuple[float, float]:
    world = World(seed)
    hour = 3600.0

    def idler(i: int) -> None:
        conn = Connection(world.url(i % 3), heartbeat=10, runtime=world.runtime)
        conn.connect()
        while world.clock() - START < hour:
            try:
                conn.drain_events(timeout=5)
            except TimeoutError:
                conn.heartbeat_check()
        conn.collect()

    for i in range(10):
        world.spawn(f"idle-{i}", idler, i)
    started = time.perf_counter()
    world.run(until=hour + 10)
    return world.clock() - START, time.perf_counter() - started


def traffic_with_failover(seed: int = 1, seconds: float = 10.0) -> tuple:
    world = World(seed)
    urls = ";".join(world.url(i) for i in range(3))
    queue = Queue("bench", routing_key="bench", queue_arguments={"x-queue-type": "quorum"})
    state = {"sent": 0, "got": 0, "done": False}

    def publisher() -> None:
        conn = Connection(urls, runtime=world.runtime)
        producer = Producer(conn)
        queue.declare(conn.default_channel)
        while world.clock() - START < seconds:
            for _ in range(10):  # 10 messages every 10 ms: 1,000 msg/s
                producer.publish(
                    b"x" * 100,
                    routing_key="bench",
                    retry=True,
                    retry_policy={"max_retries": 20, "interval_start": 0.05},
                    content_type="application/octet-stream",
                )
                state["sent"] += 1
            world.runtime.sleep(0.01)
        state["done"] = True
        conn.collect()

    def consumer() -> None:
        conn = Connection(";".join(reversed(urls.split(";"))), runtime=world.runtime)

        def on_message(message) -> None:
            state["got"] += 1
            message.ack()

        Consumer(conn, [queue], on_message=on_message, prefetch_count=200).consume()

        def drain() -> None:
            while not state["done"] or state["got"] < state["sent"] * 0.99:
                if world.clock() - START > seconds + 30:
                    return
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    pass

        conn.ensure(conn, drain, max_retries=20, interval_start=0.05)()
        conn.collect()

    world.spawn("publisher", publisher)
    world.spawn("consumer", consumer)
    world.at(3.0, "kill", "node1")
    started = time.perf_counter()
    world.run(until=seconds + 60)
    return world.clock() - START, time.perf_counter() - started, state["got"], state["sent"]


def main() -> int:
    runs = 5
    idle = sorted(idle_hour(seed) for seed in range(1, runs + 1))
    ratios = sorted(sim / wall for sim, wall in idle)
    simulated, wall = idle[runs // 2]
    print(
        f"(a) idle 3-node cluster, 10 heartbeating connections, 1 simulated hour: median "
        f"{ratios[runs // 2]:,.0f}x real time, best {ratios[-1]:,.0f}x, worst {ratios[0]:,.0f}x "
        f"over {runs} seeds (goal >= 1,000x)"
    )
    traffic = [traffic_with_failover(seed) for seed in range(1, runs + 1)]
    ratios = sorted(sim / wall for sim, wall, _, _ in traffic)
    simulated, wall, got, sent = sorted(traffic, key=lambda r: r[0] / r[1])[runs // 2]
    print(
        f"(b) 1,000 msg/s publisher + consumer through a node kill: {sent:,} published, "
        f"{got:,} consumed in {simulated:,.1f} simulated s; median {ratios[runs // 2]:.1f}x "
        f"real time, best {ratios[-1]:.1f}x, worst {ratios[0]:.1f}x over {runs} seeds "
        f"(goal >= 10x); {wall / max(got, 1) * 1e6:,.0f} us of wall time per message (median)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
