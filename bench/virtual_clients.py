"""Unmodified kombu (and pika, aio-pika) in virtual time, measured side by side with the
same client on the live simulated cluster in the same run:

- throughput: N messages published (with confirms) and consumed by kombu, messages per
  wall second in the world vs on the live cluster (goal: ratio >= 1.0);
- idle time: an idle kombu consumer with 60 s heartbeats (drain_events(timeout=1) +
  heartbeat_check, as seed 003 writes it) over one simulated hour, simulated seconds per
  wall second (goal >= 1,000x); the same for pika's BlockingConnection.

    python bench/virtual_clients.py [--messages 2000] [--hour 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aio_pika  # noqa: E402
import kombu  # noqa: E402
import pika  # noqa: E402

from broker_sim import SimCluster  # noqa: E402
from broker_sim.drivers.virtual import World  # noqa: E402


def kombu_roles(url: str, messages: int, got: list):
    queue = kombu.Queue("bench", routing_key="bench")

    def publisher() -> None:
        with kombu.Connection(url, transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            for n in range(messages):
                producer.publish({"n": n}, routing_key="bench", declare=[queue] if not n else None)

    def consumer() -> None:
        def received(body, message) -> None:
            got.append(1)
            message.ack()

        with kombu.Connection(url) as conn, kombu.Consumer(conn, [queue], callbacks=[received]):
            deadline = time.monotonic() + 600
            while len(got) < messages and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:  # noqa: UP041 (the seeds' spelling)
                    pass

    return publisher, consumer


def world_throughput(messages: int) -> float:
    world = World(1)
    got: list = []
    publisher, consumer = kombu_roles(world.url(0), messages, got)
    world.spawn("consumer", consumer)
    world.spawn("publisher", publisher)
    started = time.perf_counter()
    world.run(until=3600)
    wall = time.perf_counter() - started
    assert len(got) == messages, len(got)
    return messages / wall


def live_throughput(messages: int) -> float:
    got: list = []
    with SimCluster(nodes=3, seed=1) as cluster:
        publisher, consumer = kombu_roles(cluster.urls[0], messages, got)
        threads = [threading.Thread(target=f, daemon=True) for f in (consumer, publisher)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        wall = time.perf_counter() - started
    assert len(got) == messages, len(got)
    return messages / wall


def idle_kombu(world: World, hour: float) -> None:
    def consumer() -> None:
        with kombu.Connection(world.url(0), heartbeat=60) as conn:
            queue = kombu.Queue("idle", routing_key="idle")
            with kombu.Consumer(conn, [queue], callbacks=[lambda b, m: m.ack()]):
                while time.monotonic() - world_start < hour:
                    try:
                        conn.drain_events(timeout=1)
                    except socket.timeout:  # noqa: UP041
                        conn.heartbeat_check()

    world_start = None

    def start() -> None:
        nonlocal world_start
        world_start = time.monotonic()
        consumer()

    world.spawn("idle-consumer", start)


def idle_pika(world: World, hour: float) -> None:
    def consumer() -> None:
        url = world.url(0).rstrip("/") + "/%2F?heartbeat=60"
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.queue_declare("idle")
        channel.basic_consume("idle", lambda ch, method, props, body: None)
        connection.call_later(hour, channel.stop_consuming)
        channel.start_consuming()
        connection.close()

    world.spawn("idle-consumer", consumer)


def idle_aio_pika(world: World, hour: float) -> None:
    async def main() -> None:
        connection = await aio_pika.connect_robust(world.url(0) + "?heartbeat=60")
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("idle")
            await queue.consume(lambda message: message.ack())
            await asyncio.sleep(hour)

    world.spawn("idle-consumer", lambda: asyncio.run(main()))


def idle_speed(role, hour: float) -> tuple[float, float]:
    world = World(2)
    role(world, hour)
    started = time.perf_counter()
    world.run(until=hour + 60)
    wall = time.perf_counter() - started
    simulated = world.clock.t - world.clock.start
    return simulated, simulated / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--hour", type=float, default=3600.0)
    args = parser.parse_args()
    world = world_throughput(args.messages)
    live = live_throughput(args.messages)
    ratio = world / live
    print(f"kombu publish (confirms) + consume, {args.messages} messages, one run:")
    print(f"  in the world (virtual time)   {world:8,.0f} msg/s")
    print(f"  on the live simulated cluster {live:8,.0f} msg/s")
    print(f"  ratio {ratio:.2f}  (goal >= 1.0)  {'met' if ratio >= 1.0 else 'NOT met'}")
    bad = ratio < 1.0
    print(f"idle consumer, heartbeat 60 s, {args.hour:g} simulated seconds:")
    for name, role in (("kombu", idle_kombu), ("pika", idle_pika), ("aio-pika", idle_aio_pika)):
        simulated, speed = idle_speed(role, args.hour)
        met = speed >= 1000
        bad = bad or (name == "kombu" and not met)
        print(
            f"  {name:9} {simulated:7.0f} simulated s at {speed:10,.0f}x wall "
            f"(goal >= 1,000x)  {'met' if met else 'NOT met'}"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
