"""The seeds' recipes with ``from client import ...``: they keep working across node
failures on the simulated cluster, where the same code with kombu stops consuming."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from broker_sim import SimCluster
from client import Connection, Consumer, Exchange, OperationalError, Producer, Queue
from client.errors import ConfigurationError


@pytest.fixture
def cluster():
    with SimCluster(nodes=3, seed=2, election_timeout=0.3) as c:
        yield c


def quorum(name: str) -> Queue:
    return Queue(name, routing_key=name, queue_arguments={"x-queue-type": "quorum"})


def test_connect_fails_over_to_the_healthy_broker(cluster):
    cluster.kill("node1")
    with Connection(f"{cluster.urls[0]};{cluster.urls[1]}") as conn:
        conn.connect()
        assert conn.connected and conn.current.port == cluster.nodes[1].port
        assert "amqp://guest:**@127.0.0.1" in repr(conn)


def test_publish_with_retry_survives_a_killed_node(cluster):
    urls = f"{cluster.urls[0]};{cluster.urls[1]}"
    with Connection(urls, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn)
        queue = quorum("retry-q")
        producer.publish({"n": 0}, routing_key="retry-q", declare=[queue], retry=True)
        cluster.kill("node1")
        producer.publish(
            {"n": 1},
            routing_key="retry-q",
            retry=True,
            retry_policy={
                "max_retries": 5,
                "interval_start": 0.1,
                "interval_step": 0.1,
                "interval_max": 0.5,
            },
        )
        assert conn.current.port == cluster.nodes[1].port
        got = [queue(conn.default_channel).get(no_ack=True).payload for _ in range(2)]
        assert got == [{"n": 0}, {"n": 1}]


def test_the_seed_failover_consumer_keeps_consuming_after_a_kill(cluster):
    """Seed 001's full consumer example: ensure(conn, consume) around drain_events."""
    queue = quorum("seed-q")
    received: list[int] = []
    stop = threading.Event()

    def callback(body, message):
        received.append(body["n"])
        message.ack()
        if len(received) == 3:
            cluster.kill("node1")

    with Connection(cluster.urls[2]) as prod:
        producer = Producer(prod)
        for i in range(10):
            producer.publish({"n": i}, routing_key="seed-q", declare=[queue])

    with Connection(f"{cluster.urls[0]};{cluster.urls[1]}", stop=stop) as conn:
        deadline = time.monotonic() + 15

        def consume():
            while len(set(received)) < 10 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass

        with conn.channel() as channel:
            consumer = Consumer(channel, queue)
            consumer.register_callback(callback)
            with consumer:
                consume = conn.ensure(
                    conn,
                    consume,
                    max_retries=5,
                    interval_start=0.1,
                    interval_step=0.1,
                    interval_max=0.5,
                )
                consume()
    assert set(received) == set(range(10))


def test_ensure_does_not_take_an_idle_timeout_for_a_failure(cluster):
    with Connection(cluster.urls[0]) as conn:
        conn.connect()
        calls = []

        def idle():
            calls.append(1)
            conn.drain_events(timeout=0.1)

        with pytest.raises(socket.timeout):
            conn.ensure(conn, idle, max_retries=3, interval_start=0.01)()
        assert calls == [1], "an idle timeout is not retried (kombu flaps between nodes)"


def test_ensure_gives_up_within_its_budget(cluster):
    conn = Connection(cluster.urls[0])
    conn.connect()
    for name in ("node1", "node2", "node3"):
        cluster.kill(name)
    started = time.monotonic()

    def declare():
        Exchange("x", "direct").declare(conn.default_channel)

    with pytest.raises(OperationalError):
        conn.ensure(
            conn,
            declare,
            max_retries=2,
            interval_start=0.05,
            interval_step=0.05,
            interval_max=0.1,
            timeout=3,
        )()
    assert time.monotonic() - started < 5
    conn.collect()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hostname": "amqp://h:1;redis://h"}, "transport 'redis' is not supported"),
        ({"hostname": "amqp://h:1", "failover_strategy": "random"}, "unknown failover_strategy"),
        ({"hostname": "amqp://h:1", "heartbeat": -1}, "heartbeat must be >= 0"),
        ({"hostname": "amqp://h:1", "transport": "redis"}, "transport 'redis' is not supported"),
    ],
)
def test_bad_configuration_is_refused_at_construction(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        Connection(**kwargs)


def test_ensure_refuses_a_busy_loop(cluster):
    conn = Connection(cluster.urls[0])
    with pytest.raises(ConfigurationError, match="busy loop"):
        conn.ensure(conn, lambda: None, interval_start=0, interval_step=0, interval_max=0)


def test_confirmed_publish_path_against_both_brokers(broker, uid):
    with Connection(broker.url, transport_options={"confirm_publish": True}) as conn:
        queue = Queue(f"c-{uid}", routing_key=f"c-{uid}", auto_delete=True, durable=False)
        producer = Producer(conn)
        for i in range(5):
            producer.publish({"i": i}, routing_key=f"c-{uid}", declare=[queue])
        got = []
        consumer = Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())])
        with consumer:
            deadline = time.monotonic() + 5
            while len(got) < 5 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
        assert got == [{"i": i} for i in range(5)]


def test_autoretry_passes_a_fresh_channel_after_a_failure(cluster):
    with Connection(f"{cluster.urls[0]};{cluster.urls[1]}") as conn:
        conn.connect()
        queue = Queue("auto-q", routing_key="auto-q", durable=False, auto_delete=True)
        cluster.kill("node1")
        declare = conn.autoretry(
            lambda channel: queue.declare(channel), max_retries=5, interval_start=0.1
        )
        assert declare() == "auto-q"
        assert conn.current.port == cluster.nodes[1].port


def test_wrong_credentials_on_one_host_are_named_and_the_next_host_is_used(cluster):
    urls = f"amqp://guest:wrong@127.0.0.1:{cluster.nodes[0].port}//;{cluster.urls[1]}"
    with Connection(urls) as conn:
        conn.connect()
        assert conn.current.port == cluster.nodes[1].port
    with Connection(f"amqp://guest:wrong@127.0.0.1:{cluster.nodes[0].port}//") as bad:
        with pytest.raises(ConnectionRefusedError) as info:
            bad.connect()
        assert "LoginRefused" in str(info.value) and "guest:**@" in str(info.value)
        assert "wrong" not in str(info.value)


def test_redeclaring_a_queue_with_other_arguments_is_406_at_declare_time(cluster):
    from client.errors import PreconditionFailed

    with Connection(cluster.urls[0]) as conn:
        Queue("args-q", queue_arguments={"x-message-ttl": 1000}).declare(conn.default_channel)
        with pytest.raises(PreconditionFailed) as info:
            Queue("args-q", queue_arguments={"x-message-ttl": 2000}).declare(conn.default_channel)
        assert info.value.reply_text == (
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'args-q' in "
            "vhost '/': received '2000' but current is '1000'"
        )
