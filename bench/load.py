"""Load: 1,000 heartbeating connections on a 3-node simulated cluster while a publisher and a
consumer keep going. Prints throughput without and with the load, dropped connections, and
the simulator's RSS before, under and after the load.

    python bench/load.py [--connections 1000] [--seconds 10] [--heartbeat 5]

Every loop is bounded in count and time; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pika
import psutil
from pamqp import commands as C
from pamqp import frame as pframe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simproc import SimProcess  # noqa: E402

HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"


async def idle_connection(host: str, port: int, heartbeat: int, stop: asyncio.Event, stats):
    """A minimal AMQP client: handshake, then answer with heartbeats until ``stop``."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"AMQP\x00\x00\x09\x01")
    await _read_frame(reader)  # connection.start
    writer.write(
        pframe.marshal(
            C.Connection.StartOk(
                client_properties={"product": "warren-load"},
                mechanism="PLAIN",
                response="\0guest\0guest",
            ),
            0,
        )
    )
    await _read_frame(reader)  # connection.tune
    writer.write(
        pframe.marshal(C.Connection.TuneOk(2047, 131072, heartbeat), 0)
        + pframe.marshal(C.Connection.Open(virtual_host="/"), 0)
    )
    await _read_frame(reader)  # connection.open-ok
    stats["open"] += 1
    try:
        while not stop.is_set():
            try:
                frame_type = await asyncio.wait_for(_read_frame(reader), heartbeat / 2)
                if frame_type == 8:
                    stats["heartbeats_in"] += 1
            except TimeoutError:
                pass
            writer.write(HEARTBEAT)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        stats["dropped"] += 1
    finally:
        writer.close()


async def _read_frame(reader: asyncio.StreamReader) -> int:
    head = await reader.readexactly(7)
    frame_type, _channel, size = struct.unpack(">BHI", head)
    await reader.readexactly(size + 1)
    return frame_type


def run_idle_connections(urls, count, heartbeat, ready: threading.Event, stop_flag, stats):
    async def main():
        stop = asyncio.Event()
        tasks = []
        for i in range(count):
            parts = urllib.parse.urlparse(urls[i % len(urls)])
            tasks.append(
                asyncio.create_task(
                    idle_connection(parts.hostname, parts.port, heartbeat, stop, stats)
                )
            )
            if i % 50 == 49:
                await asyncio.sleep(0.01)
        deadline = time.monotonic() + 60
        while stats["open"] < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ready.set()
        while not stop_flag.is_set():
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait(tasks, timeout=heartbeat + 5)

    asyncio.run(main())


def traffic(urls, seconds: float) -> tuple[float, float]:
    """Confirmed publishes on node1, consume+ack on node2 for ``seconds``; return rates."""
    pub = pika.BlockingConnection(pika.URLParameters(urls[0]))
    ch = pub.channel()
    ch.queue_declare("load", durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_purge("load")
    ch.confirm_delivery()
    con = pika.BlockingConnection(pika.URLParameters(urls[1 % len(urls)]))
    cch = con.channel()
    cch.basic_qos(prefetch_count=100)
    consumed = [0]

    def on_message(channel, method, props, body):
        consumed[0] += 1
        channel.basic_ack(method.delivery_tag)

    cch.basic_consume("load", on_message)
    published = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for _ in range(50):
            ch.basic_publish("", "load", b"x" * 100, pika.BasicProperties(delivery_mode=2))
            published += 1
        con.process_data_events(time_limit=0)
    drain_deadline = time.monotonic() + 10
    while consumed[0] < published and time.monotonic() < drain_deadline:
        con.process_data_events(time_limit=0.05)
    elapsed = time.monotonic() - started
    pub.close()
    con.close()
    return published / elapsed, consumed[0] / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--heartbeat", type=int, default=5)
    args = parser.parse_args()
    if args.connections < 0 or args.seconds <= 0 or args.heartbeat < 1:
        parser.error("--connections >= 0, --seconds > 0 and --heartbeat >= 1 are required")
    with SimProcess(nodes=3) as sim:
        proc = psutil.Process(sim.pid)
        rss_start = proc.memory_info().rss
        base_pub, base_con = traffic(sim.urls, args.seconds)
        stats = {"open": 0, "dropped": 0, "heartbeats_in": 0}
        ready, stop_flag = threading.Event(), threading.Event()
        loader = threading.Thread(
            target=run_idle_connections,
            args=(sim.urls, args.connections, args.heartbeat, ready, stop_flag, stats),
            daemon=True,
        )
        loader.start()
        ready.wait(timeout=90)
        rss_loaded = proc.memory_info().rss
        load_pub, load_con = traffic(sim.urls, args.seconds)
        rss_after_traffic = proc.memory_info().rss
        stop_flag.set()
        loader.join(timeout=args.heartbeat + 15)
        time.sleep(1)
        rss_end = proc.memory_info().rss
        cpu = proc.cpu_times()
    mib = 1024 * 1024
    print(
        f"3-node simulated cluster, quorum queue, pika confirmed publish + consume/ack, "
        f"{args.seconds:.0f} s per phase"
    )
    print(f"{'phase':<34}{'publish/s':>12}{'consume/s':>12}")
    print(f"{'no extra connections':<34}{base_pub:>12,.0f}{base_con:>12,.0f}")
    print(
        f"{str(stats['open']) + ' heartbeating connections':<34}"
        f"{load_pub:>12,.0f}{load_con:>12,.0f}"
    )
    print(
        f"throughput ratio under load / without: publish {load_pub / base_pub:.2f}, "
        f"consume {load_con / base_con:.2f}"
    )
    print(
        f"idle connections opened {stats['open']}/{args.connections}, dropped "
        f"{stats['dropped']}, server heartbeats received {stats['heartbeats_in']}"
    )
    print(
        f"sim RSS MiB: start {rss_start / mib:.1f}, with connections {rss_loaded / mib:.1f}, "
        f"after traffic {rss_after_traffic / mib:.1f}, after closing them {rss_end / mib:.1f}"
    )
    print(f"sim CPU seconds: user {cpu.user:.1f}, system {cpu.system:.1f}")
    return 0 if stats["dropped"] == 0 and stats["open"] == args.connections else 1


if __name__ == "__main__":
    sys.exit(main())
