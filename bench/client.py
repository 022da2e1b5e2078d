"""The bundled client against kombu (py-amqp) on the same broker, in one run: publish
without and with confirms, consume with acks (msgs/s, ratio bundled/kombu, goal >= 1.0),
and the time from a node kill to the first delivery on another node (ms).

    python bench/client.py [--messages 10000] [--broker sim|real]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import kombu

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simproc import SimProcess  # noqa: E402

import client  # noqa: E402
from broker_sim import SimCluster  # noqa: E402
from scenarios.backends.local import RabbitMQUnavailable, RealRabbitNode  # noqa: E402

LIBS = {"kombu": kombu, "bundled": client}


def publish_rate(lib, url: str, n: int, confirm: bool) -> float:
    options = {"confirm_publish": True} if confirm else {}
    queue = lib.Queue("bench-client", routing_key="bench-client", durable=True)
    with lib.Connection(url, transport_options=options) as conn:
        producer = lib.Producer(conn)
        producer.publish(
            b"warm",
            routing_key="bench-client",
            declare=[queue],
            content_type="application/octet-stream",
            content_encoding="binary",
        )
        queue(conn.default_channel).purge()
        started = time.perf_counter()
        for _ in range(n):
            producer.publish(
                b"x" * 100,
                routing_key="bench-client",
                content_type="application/octet-stream",
                content_encoding="binary",
            )
        deadline = time.monotonic() + 60
        while queue(conn.default_channel).queue_declare(passive=True).message_count < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the broker did not get every message")
            time.sleep(0.001)
        return n / (time.perf_counter() - started)


def consume_rate(lib, url: str, n: int) -> float:
    queue = lib.Queue("bench-client", routing_key="bench-client", durable=True)
    count = [0]
    with lib.Connection(url) as conn:

        def on_message(message):
            count[0] += 1
            message.ack()

        consumer = lib.Consumer(conn, [queue], on_message=on_message, prefetch_count=100)
        started = time.perf_counter()
        deadline = time.monotonic() + 60
        with consumer:
            while count[0] < n and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
        elapsed = time.perf_counter() - started
        queue(conn.default_channel).purge()
    return count[0] / elapsed


def failover_ms(lib) -> float:
    with SimCluster(nodes=3, election_timeout=0.5) as cluster:
        queue = lib.Queue(
            "fo", routing_key="fo", durable=True, queue_arguments={"x-queue-type": "quorum"}
        )
        with lib.Connection(cluster.urls[1]) as setup:
            queue(setup.default_channel).declare()
        stop = threading.Event()

        def produce():
            with lib.Connection(cluster.urls[2]) as conn:
                producer = lib.Producer(conn)
                while not stop.is_set():
                    producer.publish(b"t", routing_key="fo")
                    time.sleep(0.002)

        threading.Thread(target=produce, daemon=True).start()
        killed, first = [], []

        def on_message(message):
            message.ack()
            if killed and not first:
                first.append(time.monotonic())

        conn = lib.Connection(f"{cluster.urls[0]};{cluster.urls[1]}")
        consumer = lib.Consumer(conn, [queue], on_message=on_message)
        consumer.consume()
        threading.Timer(
            0.5, lambda: (killed.append(time.monotonic()), cluster.kill("node1"))
        ).start()
        deadline = time.monotonic() + 20
        while not first and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=0.1)
            except TimeoutError:
                pass
            except conn.connection_errors:
                conn.ensure_connection(
                    max_retries=20, interval_start=0, interval_step=0.05, interval_max=0.2
                )
                consumer.revive(conn.default_channel)
                consumer.consume()
        stop.set()
        conn.collect()
        if not first:
            raise RuntimeError(f"{lib.__name__}: no delivery within 20 s of the kill")
        return (first[0] - killed[0]) * 1000


def measure(url: str, n: int, repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, lib in LIBS.items():
        results[name] = {
            "publish": statistics.median(publish_rate(lib, url, n, False) for _ in range(repeat)),
            "publish, confirms (sync)": statistics.median(
                publish_rate(lib, url, n, True) for _ in range(repeat)
            ),
        }
        publish_rate(lib, url, n, False)
        results[name]["consume + ack (prefetch 100)"] = consume_rate(lib, url, n)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--broker", choices=("sim", "real"), default="sim")
    args = parser.parse_args()
    if args.messages < 1 or args.repeat < 1:
        parser.error("--messages and --repeat must be >= 1")
    if args.broker == "sim":
        with SimProcess(nodes=1) as sim:
            results = measure(sim.urls[0], args.messages, args.repeat)
    else:
        try:
            with tempfile.TemporaryDirectory() as tmp, RealRabbitNode(tmp) as node:
                results = measure(node.url, args.messages, args.repeat)
        except RabbitMQUnavailable as exc:
            print(f"real rabbitmq-server unavailable: {exc}")
            return 1
    for name, lib in LIBS.items():
        results[name]["failover: kill -> next delivery (ms)"] = failover_ms(lib)
    print(
        f"bundled client vs kombu {kombu.__version__}, {args.messages:,} x 100 B, broker: "
        f"{args.broker} (median of {args.repeat}); failover on a 3-node simulated cluster"
    )
    print(f"{'measure':<40}{'bundled':>12}{'kombu':>12}{'ratio':>8}")
    for measure_name in results["kombu"]:
        ours, theirs = results["bundled"][measure_name], results["kombu"][measure_name]
        ratio = theirs / ours if measure_name.endswith("(ms)") else ours / theirs
        print(f"{measure_name:<40}{ours:>12,.0f}{theirs:>12,.0f}{ratio:>8.2f}")
    print("(ratio: bundled/kombu for rates, kombu/bundled for the failover time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
