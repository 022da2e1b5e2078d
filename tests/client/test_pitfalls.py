"""kombu pitfalls (../shared/notes/real-rabbitmq.md and the issue), each as a test that
kombu fails and the bundled client passes."""

from __future__ import annotations

import random
import socket
import time

import pytest

from broker_sim import SimCluster
from client import Connection, Consumer, Producer, Queue
from client.retry import ExponentialBackoff
from tests.drain import drain_until


@pytest.fixture
def cluster():
    with SimCluster(nodes=3, seed=12, election_timeout=0.3) as c:
        yield c


def test_drain_events_returns_within_its_timeout_while_heartbeats_arrive(cluster):
    """py-amqp restarts the timeout at every server heartbeat: with T >= H/2 it never
    returns and the client stops heartbeating; here it returns and stays connected."""
    with Connection(cluster.urls[0], heartbeat=1) as conn:
        conn.connect()
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=0.8)
        assert time.monotonic() - started < 5
        assert conn.connected


def test_a_long_callback_keeps_the_connection_with_background_heartbeats(cluster):
    """kombu sends heartbeats only while draining: a 4 s callback with heartbeat=1 gets the
    connection dropped by the broker. The background heartbeat keeps it."""
    queue = Queue("slow", routing_key="slow")
    done = []
    with Connection(
        cluster.urls[0], heartbeat=1, transport_options={"background_heartbeat": True}
    ) as conn:
        Producer(conn).publish("work", routing_key="slow", declare=[queue])

        def slow(body, message):
            time.sleep(4)
            message.ack()
            done.append(body)

        with Consumer(conn, [queue], callbacks=[slow]):
            drain_until(conn, lambda: done, seconds=10, step=0.5)
            assert done == ["work"]
            assert cluster.connections()["rabbit@node1"] >= 1
            assert conn.connected


def test_server_named_queues_are_renamed_on_recovery(cluster):
    conn = Connection(f"{cluster.urls[0]};{cluster.urls[1]}")
    queue = Queue("", exclusive=True, durable=False, auto_delete=True)
    got = []
    consumer = Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())])
    consumer.consume()
    old_name = queue.name or next(iter(consumer.tags))
    cluster.kill("node1")
    probe = Queue("probe", durable=False, auto_delete=True)
    conn.ensure(
        conn, lambda: probe.declare(conn.default_channel), max_retries=5, interval_start=0.1
    )()
    record = next(iter(conn.default_channel.consumers.values()))
    assert record.queue != old_name and record.queue.startswith("amq.gen-")
    Producer(conn).publish("hello", routing_key=record.queue)
    drain_until(conn, lambda: got, seconds=5)
    assert got == ["hello"]
    conn.collect()


def test_exponential_backoff_plugs_into_ensure_connection(cluster):
    for name in ("node1", "node2", "node3"):
        cluster.kill(name)
    delays = []
    conn = Connection(cluster.urls[0])
    started = time.monotonic()
    with pytest.raises(Exception, match="could not connect after 4 attempt"):
        conn.ensure_connection(
            max_retries=3,
            errback=lambda exc, delay: delays.append(delay),
            backoff=ExponentialBackoff(0.05, 2, 0.4, rng=random.Random(1)),
        )
    assert len(delays) == 3 and all(0 <= d <= 0.4 for d in delays)
    assert time.monotonic() - started < 5
