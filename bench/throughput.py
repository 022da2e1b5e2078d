"""Throughput of kombu (py-amqp) through the simulated node and a real rabbitmq-server,
measured side by side in one run.

    python bench/throughput.py [--messages 20000] [--size 100] [--repeat 3] [--only sim|real]

The simulated node runs as a separate ``warren sim`` process, so client and broker do not
share a GIL (as with a real broker). Each line is the median of ``--repeat`` runs; the ratio
is sim/real (goal: >= 1.0, the simulator must not be the bottleneck).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import kombu

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simproc import SimProcess  # noqa: E402

from scenarios.backends.local import RabbitMQUnavailable, RealRabbitNode  # noqa: E402

DEADLINE_S = 120  # no single measurement may run longer than this


def publish(url: str, n: int, body: bytes, queue: str, confirm: bool, args=None) -> float:
    options = {"confirm_publish": True} if confirm else {}
    with kombu.Connection(url, transport_options=options) as conn:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, auto_delete=False, arguments=args)
        ch.queue_purge(queue)
        producer = kombu.Producer(ch)
        started = time.perf_counter()
        for i in range(n):
            producer.publish(
                body,
                routing_key=queue,
                delivery_mode=2,
                serializer=None,
                content_type="application/octet-stream",
            )
            if i % 1000 == 0 and time.perf_counter() - started > DEADLINE_S:
                raise RuntimeError("publish exceeded the deadline")
        if not confirm:  # make sure the broker has them all before the clock stops
            while ch.queue_declare(queue, passive=True).message_count < n:
                if time.perf_counter() - started > DEADLINE_S:
                    raise RuntimeError("broker did not receive every message in time")
                time.sleep(0.001)
        elapsed = time.perf_counter() - started
    return n / elapsed


def consume(url: str, n: int, queue: str, prefetch: int, args=None) -> float:
    with kombu.Connection(url) as conn:
        ch = conn.channel()
        ch.basic_qos(0, prefetch, False)
        count = [0]

        def on_message(message):
            count[0] += 1
            message.ack()

        declared = kombu.Queue(queue, durable=True, auto_delete=False, queue_arguments=args)
        consumer = kombu.Consumer(ch, [declared], on_message=on_message, no_ack=False)
        started = time.perf_counter()
        with consumer:
            while count[0] < n:
                if time.perf_counter() - started > DEADLINE_S:
                    raise RuntimeError(f"consumed only {count[0]}/{n} before the deadline")
                conn.drain_events(timeout=5)
        elapsed = time.perf_counter() - started
        ch.queue_delete(queue)
    return n / elapsed


def scenarios(n: int, size: int) -> list[tuple[str, Callable[[str], float]]]:
    body = b"x" * size
    return [
        ("publish", lambda url: publish(url, n, body, "bench-plain", confirm=False)),
        ("publish, confirms (sync)", lambda url: publish(url, n, body, "bench-c", True)),
        ("consume + ack (prefetch 100)", lambda url: consume_after_fill(url, n, body, 100)),
    ]


def consume_after_fill(url: str, n: int, body: bytes, prefetch: int) -> float:
    publish(url, n, body, "bench-consume", confirm=False)
    return consume(url, n, "bench-consume", prefetch)


def measure(url: str, fn: Callable[[str], float], repeat: int) -> float:
    return statistics.median(fn(url) for _ in range(repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("sim", "real"))
    parser.add_argument("--require-real", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.messages < 1 or args.size < 0 or args.repeat < 1:
        parser.error("--messages >= 1, --size >= 0, --repeat >= 1")
    results: dict[str, dict[str, float]] = {}
    plan = scenarios(args.messages, args.size)
    if args.only != "real":
        with SimProcess(nodes=1) as sim:
            results["sim"] = {name: measure(sim.urls[0], fn, args.repeat) for name, fn in plan}
    if args.only != "sim":
        try:
            with tempfile.TemporaryDirectory() as tmp, RealRabbitNode(tmp) as real:
                results["real"] = {name: measure(real.url, fn, args.repeat) for name, fn in plan}
        except RabbitMQUnavailable as exc:
            print(f"real rabbitmq-server unavailable, sim figures only: {exc}")
            if args.require_real:
                return 1
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def report(results: dict[str, dict[str, float]], args) -> None:
    print(
        f"kombu {kombu.__version__} (py-amqp), {args.messages:,} x {args.size}-byte persistent "
        f"messages, median of {args.repeat}; sim = `warren sim` in its own process"
    )
    names = list(next(iter(results.values())))
    print(f"{'scenario':<32}{'sim msg/s':>12}{'real msg/s':>12}{'sim/real':>10}")
    for name in names:
        sim = results.get("sim", {}).get(name)
        real = results.get("real", {}).get(name)
        ratio = f"{sim / real:.2f}" if sim and real else "-"
        print(f"{name:<32}{_fmt(sim):>12}{_fmt(real):>12}{ratio:>10}")


def _fmt(value: float | None) -> str:
    return f"{value:,.0f}" if value else "-"


if __name__ == "__main__":
    sys.exit(main())
