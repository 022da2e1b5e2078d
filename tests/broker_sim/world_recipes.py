"""The seeds' kombu recipes and pika's own recovery recipe, as written, as world actors.

The code inside each recipe is the documents' (seeds 001 and 003; pika's README
"connection recovery" loop). Each takes the failover URLs (in the world the documents' own
``amqp://broker1:5672;amqp://broker2:5672``: ``broker1`` / ``broker2`` are names of the
world, ``world.hosts``; on the live cluster its URLs), a list to keep what was received
(in place of the documents' ``print``) and the heartbeat. The documents' ``while True``
loops run until the world's time is up (or, on the live cluster, the test's deadline).

``python -m tests.broker_sim.world_recipes kombu 0 19`` prints one digest per seed: the
cross-process determinism test runs it twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import threading
import time

import aio_pika
import aio_pika.exceptions
import pika
import pika.exceptions
from aiormq.exceptions import ChannelInvalidStateError
from kombu import Connection, Consumer, Producer, Queue
from kombu.mixins import ConsumerMixin

from broker_sim.drivers.virtual import World
from scenarios.instrument import recording

logger = logging.getLogger("recipes")
logger.addHandler(logging.NullHandler())
logger.propagate = False
URLS = ["amqp://broker1:5672", "amqp://broker2:5672"]  # the documents' URLs
QUORUM = {"x-queue-type": "quorum"}  # a quorum queue survives the kill of one node
MESSAGES = 20
INTERVAL = 0.5  # seconds between two publishes


def world_for(seed: int) -> World:
    world = World(seed)
    world.hosts.update(broker1="node1", broker2="node2", broker3="node3")
    return world


# -- kombu: seed 001 ---------------------------------------------------------------------------


def kombu_ensure_publisher(urls, received, heartbeat) -> None:
    """Seed 001, "ensure": conn.ensure(producer, producer.publish, errback, max_retries=3)."""
    conn = Connection(";".join(urls), transport_options={"confirm_publish": True})
    producer = Producer(conn)

    def errback(exc, interval):
        logger.error("Error: %r", exc, exc_info=1)
        logger.info("Retry in %s seconds.", interval)

    publish = conn.ensure(producer, producer.publish, errback=errback, max_retries=3)
    queue = Queue("queue", routing_key="queue", queue_arguments=QUORUM)
    for n in range(MESSAGES):
        publish({"hello": "world", "n": n}, routing_key="queue", declare=[queue])
        time.sleep(INTERVAL)


def kombu_full_consumer(urls, received, heartbeat) -> None:
    """Seed 001, "the full example implementing consumer with failover"."""

    def callback(body, message):
        received.append(body["n"])
        message.ack()

    queue = Queue("queue", routing_key="queue", queue_arguments=QUORUM)
    with Connection(";".join(urls), heartbeat=heartbeat) as conn:

        def consume():
            while True:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:  # noqa: UP041 (the seed's own text)
                    conn.heartbeat_check()  # seed 003: heartbeats need a check in the loop

        with conn.channel() as channel:
            consumer = Consumer(channel, queue)
            consumer.register_callback(callback)
            with consumer:
                while True:
                    consume = conn.ensure(conn, consume)
                    consume()


class C(ConsumerMixin):
    """Seed 001, "consumer as ConsumerMixin", consume wrapped with ensure()."""

    def __init__(self, connection, received):
        self.connection, self.received = connection, received

    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        return [
            Consumer(
                [Queue("queue", routing_key="queue", queue_arguments=QUORUM)],
                callbacks=[self.on_message],
                accept=["json"],
            ),
        ]

    def on_message(self, body, message):
        self.received.append(body["n"])
        message.ack()

    def consume(self, *args, **kwargs):
        consume = self.connection.ensure(self.connection, super().consume)
        return consume(*args, **kwargs)


def kombu_mixin_consumer(urls, received, heartbeat) -> None:
    with Connection(";".join(urls), heartbeat=heartbeat) as conn:
        C(conn, received).run()


# -- pika: its README's recovery loop --------------------------------------------------------------


def pika_parameters(urls, heartbeat) -> list:
    """pika's failover: a list of parameters, tried in turn by BlockingConnection."""
    hosts = [url.split("//", 1)[1].split("@")[-1].split("/")[0] for url in urls]
    return [
        pika.URLParameters(f"amqp://guest:guest@{host}/%2F?heartbeat={heartbeat}") for host in hosts
    ]


def pika_publisher(urls, received, heartbeat) -> None:
    PIKA_PARAMETERS = pika_parameters(urls, heartbeat)  # noqa: N806 (the recipe's name)
    n = 0
    while n < MESSAGES:
        try:
            connection = pika.BlockingConnection(PIKA_PARAMETERS)
            channel = connection.channel()
            channel.confirm_delivery()
            channel.queue_declare("queue", durable=True, arguments=QUORUM)
            while n < MESSAGES:
                channel.basic_publish("", "queue", str(n).encode())
                n += 1
                connection.sleep(INTERVAL)
            connection.close()
        except pika.exceptions.AMQPConnectionError:
            time.sleep(1)


def pika_consumer(urls, received, heartbeat) -> None:
    PIKA_PARAMETERS = pika_parameters(urls, heartbeat)  # noqa: N806 (the recipe's name)

    def on_message(channel, method, properties, body):
        received.append(int(body))
        channel.basic_ack(method.delivery_tag)

    while True:
        try:
            connection = pika.BlockingConnection(PIKA_PARAMETERS)
            channel = connection.channel()
            channel.queue_declare("queue", durable=True, arguments=QUORUM)
            channel.basic_consume("queue", on_message)
            try:
                channel.start_consuming()
            except KeyboardInterrupt:
                channel.stop_consuming()
                connection.close()
                break
        except pika.exceptions.ConnectionClosedByBroker:
            continue
        except pika.exceptions.AMQPChannelError:
            break
        except pika.exceptions.AMQPConnectionError:
            continue


# -- aio-pika: connect_robust, as its documentation's "robust" examples ----------------------


def aio_url(urls, heartbeat) -> str:
    """aio-pika's robust connection takes one URL: it reconnects to the same broker."""
    host = urls[0].split("//", 1)[1].split("@")[-1].split("/")[0]
    return f"amqp://guest:guest@{host}/?heartbeat={heartbeat}"


def aio_pika_publisher(urls, received, heartbeat) -> None:
    async def main() -> None:
        connection = await aio_pika.connect_robust(aio_url(urls, heartbeat))
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue("queue", durable=True, arguments=QUORUM)
            n = 0
            while n < MESSAGES:
                message = aio_pika.Message(str(n).encode(), delivery_mode=2)
                try:  # robust connections do not replay a failed publish: the caller does
                    await channel.default_exchange.publish(message, routing_key="queue")
                    n += 1
                except (aio_pika.exceptions.AMQPError, ChannelInvalidStateError):
                    await channel.ready()  # wait for the robust channel to be back
                await asyncio.sleep(INTERVAL)

    asyncio.run(main())


def aio_pika_consumer(urls, received, heartbeat) -> None:
    async def main() -> None:
        connection = await aio_pika.connect_robust(aio_url(urls, heartbeat))
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("queue", durable=True, arguments=QUORUM)
            async with queue.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        received.append(int(message.body))

    asyncio.run(main())


RECIPES = {
    "kombu": (kombu_ensure_publisher, kombu_full_consumer),
    "kombu-mixin": (kombu_ensure_publisher, kombu_mixin_consumer),
    "pika": (pika_publisher, pika_consumer),
    "aio_pika": (aio_pika_publisher, aio_pika_consumer),
}


def run(name: str, seed: int, faults=(("kill", "node1", 4.0),), until=60.0, heartbeat=10):
    """One recipe in a fresh world with ``faults`` (name, target, virtual time); the world
    and what was received."""
    world = world_for(seed)
    received: list[int] = []
    publisher, consumer = RECIPES[name]
    world.spawn("publisher", publisher, URLS, received, heartbeat)
    world.spawn("consumer", consumer, URLS, received, heartbeat)
    for fault, target, at in faults:
        world.at(at, fault, target)
    with recording(world, (name.split("-")[0],)):
        world.run(until=until)
    return world, received


def live(recipe: str, kill_at: float = 4.0, deadline: float = 30.0) -> dict:
    """The recipe on the live simulated cluster: node1 killed at ``kill_at`` real seconds;
    returns once everything was received or at ``deadline``. The roles' threads are daemons:
    the process that calls this ends them (see the module docstring)."""
    from broker_sim import SimCluster
    from scenarios.backends.realtime import LiveHistory

    publisher, consumer = RECIPES[recipe]
    received: list[int] = []
    history = LiveHistory(time.monotonic())
    with SimCluster(nodes=3, seed=1, election_timeout=0.3) as cluster:
        urls = cluster.urls[:2]
        with recording(history, (recipe.split("-")[0],)):
            for name, role in (("publisher", publisher), ("consumer", consumer)):
                args = (urls, received, 10)
                threading.Thread(target=role, args=args, name=name, daemon=True).start()
            time.sleep(kill_at)
            cluster.kill("node1")
            end = time.monotonic() + deadline
            while len(set(received)) < MESSAGES and time.monotonic() < end:
                time.sleep(0.05)
            events = list(history.events)
    return {"events": events, "received": received}


if __name__ == "__main__":
    if sys.argv[1] == "--live":
        print(json.dumps(live(sys.argv[2]), default=str), flush=True)
        os._exit(0)  # the recipes' endless loops run in daemon threads: end them with us
    recipe, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for seed in range(first, last + 1):
        print(seed, run(recipe, seed)[0].digest())
