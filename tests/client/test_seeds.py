"""The seeds' other recipes with ``from client import ...`` on the simulated cluster."""

from __future__ import annotations

import threading
import time

import pytest

from broker_sim import SimCluster
from client import Connection, Consumer, Exchange, Producer, Queue, pools
from client.common import eventloop
from client.connection import failover_strategies
from client.errors import ConnectionLimitExceeded
from client.mixins import ConsumerMixin
from client.utils.url import parse_url


@pytest.fixture
def cluster():
    with SimCluster(nodes=3, seed=6, election_timeout=0.3) as c:  # a quorum survives a kill
        yield c


def publish(url: str, queue: Queue, bodies) -> None:
    with Connection(url) as conn:
        producer = Producer(conn)
        for body in bodies:
            producer.publish(
                body, routing_key=queue.routing_key, exchange=queue.exchange, declare=[queue]
            )


def test_blog_post_robust_consumer_revives_on_a_clone(cluster):
    """Seed 003: clone(), ensure_connection(max_retries=3), consumer.revive(channel)."""
    exchange = Exchange("example-exchange", type="direct")
    queue = Queue(
        name="example-queue",
        exchange=exchange,
        routing_key="BOB",
        queue_arguments={"x-queue-type": "quorum"},
    )
    got: list[int] = []

    def process_message(body, message):
        got.append(body["n"])
        message.ack()

    publish(cluster.urls[1], queue, [{"n": i} for i in range(3)])
    conn = Connection(f"{cluster.urls[0]};{cluster.urls[1]}", heartbeat=2)
    consumer = Consumer(conn, queues=queue, callbacks=[process_message], accept=["json"])
    consumer.consume()

    def establish_connection():
        revived = conn.clone()
        revived.ensure_connection(max_retries=3)
        channel = revived.channel()
        consumer.revive(channel)
        consumer.consume()
        return revived

    new_conn = conn
    deadline = time.monotonic() + 10
    killed = False
    while len(got) < 6 and time.monotonic() < deadline:
        try:
            new_conn.drain_events(timeout=0.5)
        except TimeoutError:
            new_conn.heartbeat_check()
        except new_conn.connection_errors:
            new_conn.collect()
            new_conn = establish_connection()
        if len(got) == 3 and not killed:
            killed = True
            cluster.kill("node1")
            publish(cluster.urls[1], queue, [{"n": i} for i in range(3, 6)])
    assert sorted(got) == list(range(6))
    new_conn.collect()
    conn.collect()


def test_consumer_mixin_with_a_wrapped_consume(cluster):
    """Seed 001's ConsumerMixin whose consume is wrapped in conn.ensure."""
    queue = Queue("mixin-q", routing_key="mixin-q", queue_arguments={"x-queue-type": "quorum"})
    publish(cluster.urls[1], queue, [{"n": i} for i in range(6)])
    received: list[int] = []

    with Connection(f"{cluster.urls[0]};{cluster.urls[1]}") as conn:

        class C(ConsumerMixin):
            def __init__(self, connection):
                self.connection = connection

            def get_consumers(self, Consumer, channel):  # noqa: N803
                return [Consumer([queue], callbacks=[self.on_message], accept=["json"])]

            def on_message(self, body, message):
                received.append(body["n"])
                message.ack()
                if len(received) == 2:
                    cluster.kill("node1")
                if len(set(received)) == 6:
                    self.should_stop = True

            def consume(self, *args, **kwargs):
                consume = conn.ensure(
                    conn,
                    super().consume,
                    max_retries=5,
                    interval_start=0.1,
                    interval_step=0.1,
                    interval_max=0.5,
                )
                return consume(*args, **kwargs)

        worker = C(conn)
        runner = threading.Thread(target=worker.run, daemon=True)
        runner.start()
        runner.join(timeout=15)
        worker.should_stop = True
    assert set(received) == set(range(6))


def test_simple_queue_eventloop_pools_and_parse_url(cluster):
    with Connection(cluster.urls[0]) as conn:
        with conn.SimpleQueue("simple") as q:
            q.put({"hello": "world"})
            message = q.get(timeout=2)
            assert message.payload == {"hello": "world"}
            message.ack()
            with pytest.raises(q.Empty):
                q.get(timeout=0.2)
        queue = Queue("loop", routing_key="loop")
        publish(cluster.urls[0], queue, [1, 2, 3])
        seen = []
        consumer = Consumer(conn, [queue], callbacks=[lambda b, m: (seen.append(b), m.ack())])
        with consumer:
            for _ in eventloop(conn, limit=10, timeout=1, ignore_timeouts=True):
                if len(seen) == 3:
                    break
        assert seen == [1, 2, 3]
    pools.set_limit(2)
    try:
        pool = pools.connections[cluster.urls[0]]
        with pool.acquire() as first, pool.acquire() as second:
            assert first is not second
            with pytest.raises(ConnectionLimitExceeded):
                pool.acquire(timeout=0.1)
    finally:
        pools.reset()
        pools.set_limit(10)
    assert parse_url("amqp://u:p@h:1/v")["virtual_host"] == "v"
    assert set(failover_strategies) == {"round-robin", "shuffle"}
