"""Three-node figures, simulated cluster vs a real RabbitMQ cluster, in one run:

1. kombu confirmed publishes (sync, one per message) to a quorum queue on node1 and
   consume + ack from node2, msgs/s and the ratio sim/real (goal >= 1.0);
2. failover: time from killing the consumer's node to its first delivery on another node,
   for a kombu consumer given two URLs (``node1;node2``), in milliseconds.

    python bench/cluster.py [--messages 5000] [--only sim|real]

The throughput half runs the simulator as a ``warren sim --nodes 3`` process; the failover
half needs the fault API, so it runs the simulator in-process (SimCluster) and SIGKILLs a
real node's beam.smp. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import kombu
import pika

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simproc import SimProcess  # noqa: E402
from throughput import consume, publish  # noqa: E402

from broker_sim import SimCluster  # noqa: E402
from scenarios.backends.local import RabbitMQUnavailable, RealRabbitCluster  # noqa: E402

QUORUM = {"x-queue-type": "quorum"}


def throughput(urls: list[str], n: int, repeat: int = 3) -> dict[str, float]:
    """Medians of ``repeat`` rounds: publish on node1 (the leader), consume on node2."""
    body = b"x" * 100
    pubs, cons = [], []
    for _ in range(repeat):
        pubs.append(publish(urls[0], n, body, "bench-qq", confirm=True, args=QUORUM))
        cons.append(consume(urls[1], n, "bench-qq", 100, args=QUORUM))
    return {
        "quorum publish, confirms (sync)": statistics.median(pubs),
        "quorum consume + ack, other node": statistics.median(cons),
    }


def failover_ms(urls: list[str], kill_node1: Callable[[], None], rounds: int = 1) -> float:
    """Kill node1 under a kombu consumer given node1;node2; ms to its next delivery."""
    queue = kombu.Queue("bench-failover", durable=True, auto_delete=False, queue_arguments=QUORUM)
    with kombu.Connection(urls[1]) as setup:  # leader on node2, so no election is timed
        queue(setup.default_channel).declare()
        queue(setup.default_channel).purge()
    stop = threading.Event()
    publisher = threading.Thread(target=_publish_steadily, args=(urls[2], stop), daemon=True)
    publisher.start()
    killed_at: list[float] = []
    first_after: list[float] = []

    def on_message(body, message):
        message.ack()
        if killed_at and not first_after:
            first_after.append(time.monotonic())

    conn = kombu.Connection(f"{urls[0]};{urls[1]}", heartbeat=0, connect_timeout=2)
    try:
        consumer = kombu.Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10)
        consumer.consume()
        timer = threading.Timer(0.5, lambda: (killed_at.append(time.monotonic()), kill_node1()))
        timer.start()
        deadline = time.monotonic() + 30
        while not first_after and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=0.1)
            except TimeoutError:
                pass
            except (*conn.connection_errors, OSError):
                conn.ensure_connection(
                    max_retries=20, interval_start=0, interval_step=0.05, interval_max=0.2
                )
                consumer.revive(conn.default_channel)
                consumer.consume()
        timer.cancel()
    finally:
        stop.set()
        publisher.join(timeout=5)
        conn.collect()
    if not first_after:
        raise RuntimeError("no delivery within 30 s of the kill")
    return (first_after[0] - killed_at[0]) * 1000


def _publish_steadily(url: str, stop: threading.Event) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        ch.basic_publish("", "bench-failover", b"tick")
        conn.process_data_events(time_limit=0.002)
    conn.close()


def run_sim(n: int) -> dict[str, float]:
    with SimProcess(nodes=3) as sim:
        results = throughput(sim.urls, n)
    with SimCluster(nodes=3, election_timeout=1.0) as cluster:
        results["failover: kill -> next delivery (ms)"] = failover_ms(
            cluster.urls, lambda: cluster.kill("node1")
        )
    return results


def run_real(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, RealRabbitCluster(3, tmp) as cluster:
        results = throughput(cluster.urls, n)
        results["failover: kill -> next delivery (ms)"] = failover_ms(
            cluster.urls, cluster.nodes[0].kill
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--only", choices=("sim", "real"))
    args = parser.parse_args()
    if args.messages < 1:
        parser.error("--messages must be >= 1")
    results: dict[str, dict[str, float]] = {}
    started = time.monotonic()
    if args.only != "real":
        results["sim"] = run_sim(args.messages)
    if args.only != "sim":
        try:
            results["real"] = run_real(args.messages)
        except RabbitMQUnavailable as exc:
            print(f"real 3-node cluster unavailable, sim figures only: {exc}")
    print(
        f"3-node cluster, kombu {kombu.__version__}, {args.messages:,} x 100-byte messages "
        f"(run took {time.monotonic() - started:.0f} s)"
    )
    print(f"{'measure':<40}{'sim':>12}{'real':>12}{'sim/real':>10}")
    for name in next(iter(results.values())):
        sim, real = results.get("sim", {}).get(name), results.get("real", {}).get(name)
        ratio = "-"
        if sim and real:
            ratio = f"{(real / sim if name.endswith('(ms)') else sim / real):.2f}"
        print(f"{name:<40}{_fmt(sim):>12}{_fmt(real):>12}{ratio:>10}")
    print("(for the failover line the ratio is real/sim: how many times faster the sim fails over)")
    return 0


def _fmt(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "-"


if __name__ == "__main__":
    sys.exit(main())
