"""Memory under connection churn: the simulated node's RSS after a warm-up and after 10,000
churned connections (each: connect, declare, publish, consume, ack, close), measured on a
``warren sim`` process of its own so the clients' memory does not count. Goal: no growth
after warm-up beyond 1 MB.

    python bench/soak.py [--warmup 3000] [--cycles 10000]

What grew before (tracemalloc, issue 12): the cluster's event log, one entry per connection
event; it is now bounded (``broker_sim.cluster.EVENT_LIMIT``), and the encoder's short-string
cache is bounded at 4,096 names. The warm-up fills both.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import amqp
import psutil

MB = 1024 * 1024


def start_sim() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "sim", "--nodes", "1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()  # the first line is the node's amqp:// URL
    if not line.startswith("amqp://"):
        proc.kill()
        raise SystemExit(f"warren sim did not print a URL: {line!r}")
    return proc, line.split("@", 1)[1].split("/", 1)[0]


def churn(host: str, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        conn = amqp.Connection(host)
        conn.connect()
        ch = conn.channel()
        queue = f"soak-{i % 50}"
        ch.queue_declare(queue)
        ch.basic_publish(amqp.Message(b"x" * 100), routing_key=queue)
        ch.basic_consume(queue, callback=lambda m: m.channel.basic_ack(m.delivery_tag))
        conn.drain_events(timeout=2)
        conn.close()


def rss(proc: psutil.Process) -> float:
    time.sleep(0.5)  # let the node finish closing the last connections
    return proc.memory_info().rss / MB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=3000)
    parser.add_argument("--cycles", type=int, default=10000)
    args = parser.parse_args()
    proc, host = start_sim()
    try:
        node = psutil.Process(proc.pid)
        started = rss(node)
        churn(host, args.warmup)
        warm = rss(node)
        t0 = time.perf_counter()
        churn(host, args.cycles, args.warmup)
        seconds = time.perf_counter() - t0
        after = rss(node)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    growth = after - warm
    print(f"simulated node RSS: {started:.1f} MB at start, {warm:.1f} MB after {args.warmup:,} "
          f"connections (warm-up), {after:.1f} MB after {args.cycles:,} more "
          f"({args.cycles / seconds:,.0f} connections/s)")  # fmt: skip
    verdict = "met" if growth <= 1.0 else "NOT met"
    print(f"growth after warm-up: {growth * 1024:+,.0f} KB (goal <= 1 MB: {verdict})")
    return 0 if growth <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
