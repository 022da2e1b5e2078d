"""Recovery where kombu has none: listeners, consumers re-registered after a server
cancel, stale delivery tags fenced, failover while consuming for every kind of node fault,
and publishes whose outcome is unknown reported (and retried with the same message_id)."""

from __future__ import annotations

import time
import urllib.parse

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer

from broker_sim import SimCluster
from client import Connection, Consumer, Producer, Queue
from tests.drain import drain_until


@pytest.fixture
def cluster():
    # A hung node's peers see it down after net_ticktime (60 s in RabbitMQ); until then its
    # consumers keep their unacked messages. 2 s keeps the hung-node case quick.
    with SimCluster(nodes=3, seed=8, election_timeout=0.3, net_ticktime=2.0) as c:
        yield c


def quorum(name: str) -> Queue:
    return Queue(name, routing_key=name, queue_arguments={"x-queue-type": "quorum"})


def test_recovery_listeners_fire_on_a_kill(cluster):
    events = []
    conn = Connection(f"{cluster.urls[0]};{cluster.urls[1]}")
    for name in ("recovery_started", "recovery_succeeded"):
        conn.on(name, lambda *details, name=name: events.append(name))
    channel = conn.default_channel
    cluster.kill("node1")
    conn.ensure(
        conn, lambda: channel.declare_queue(quorum("l"), False), max_retries=3, interval_start=0.05
    )()
    assert events == ["recovery_started", "recovery_succeeded"]
    with pytest.raises(Exception, match="unknown event 'nope'"):
        conn.on("nope", print)
    conn.collect()


def test_a_consumer_cancelled_by_the_broker_comes_back_with_its_queue(cluster):
    events = []
    conn = Connection(cluster.urls[0])
    conn.on("consumer_cancelled", lambda tag, queue: events.append(("cancelled", queue)))
    conn.on("consumer_recovered", lambda tag, queue: events.append(("recovered", queue)))
    got = []
    queue = Queue("phoenix", routing_key="phoenix")
    consumer = Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())])
    consumer.consume()
    with Connection(cluster.urls[1]) as admin:
        queue(admin.default_channel).delete()
        drain_until(conn, lambda: events, 3)
        queue(admin.default_channel).declare()
        Producer(admin).publish("again", routing_key="phoenix")
    drain_until(conn, lambda: got, 5)
    assert events == [("cancelled", "phoenix"), ("recovered", "phoenix")]
    assert got == ["again"]
    conn.collect()


def test_acking_a_message_from_before_a_reconnect_is_fenced(cluster):
    conn = Connection(f"{cluster.urls[0]};{cluster.urls[1]}")
    queue = quorum("fence")
    Producer(conn).publish("x", routing_key="fence", declare=[queue])
    Producer(conn).publish("y", routing_key="fence")
    old = queue(conn.default_channel).get()
    cluster.kill("node1")
    conn.ensure(
        conn,
        lambda: queue(conn.default_channel).queue_declare(passive=True),
        max_retries=5,
        interval_start=0.1,
    )()
    assert old.stale
    old.ack()  # kombu would send tag 1 to the new channel: 406 unknown delivery tag
    deadline = time.monotonic() + 5
    while (fresh := queue(conn.default_channel).get()) is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the quorum queue elects a new leader first
    fresh.ack()
    assert conn.default_channel.low.error is None
    conn.collect()


def _pause_node1(cluster):
    cluster.pause("node1")


def _cut_link_to_node1(cluster):
    parts = urllib.parse.urlparse(cluster.api_url)
    APIConsumer.host, APIConsumer.port = parts.hostname, parts.port
    toxiproxy.Toxiproxy().get_proxy("node1").add_toxic(type="timeout", attributes={"timeout": 0})


@pytest.mark.parametrize(
    "fault",
    [
        lambda c: c.kill("node1"),
        lambda c: c.stop_node("node1"),
        _pause_node1,
        _cut_link_to_node1,
    ],
    ids=["kill", "graceful-stop", "hung-node", "dead-link"],
)
def test_consumer_fails_over_for_every_node_fault(cluster, fault):
    queue = quorum("work")
    with Connection(cluster.urls[2]) as prod:
        producer = Producer(prod)
        for i in range(10):
            producer.publish({"n": i}, routing_key="work", declare=[queue])
    got = []

    def on_message(body, message):
        got.append(body["n"])
        message.ack()
        if len(got) == 3:
            fault(cluster)

    conn = Connection(f"{cluster.urls[0]};{cluster.urls[1]}", heartbeat=1)
    consumer = Consumer(conn, [queue], callbacks=[on_message], prefetch_count=1)
    consumer.consume()

    def consume():
        drain_until(conn, lambda: len(set(got)) == 10, 12)

    conn.ensure(
        conn, consume, max_retries=10, interval_start=0.1, interval_step=0.1, interval_max=0.5
    )()
    assert set(got) == set(range(10))
    assert conn.current.port == cluster.nodes[1].port
    conn.collect()


def test_unconfirmed_publish_at_a_failure_is_reported_and_retried_with_its_id(cluster):
    unknown = []
    conn = Connection(
        f"{cluster.urls[0]};{cluster.urls[1]}",
        transport_options={"confirm_publish": True, "confirm_timeout": 2},
    )
    conn.on("publish_unknown", unknown.append)
    queue = quorum("maybe")
    producer = Producer(conn)
    producer.publish("first", routing_key="maybe", declare=[queue])
    cluster.pause("node1")  # the publish goes out, the confirm never comes
    producer.publish(
        "second",
        routing_key="maybe",
        retry=True,
        message_id="m-2",
        retry_policy={"max_retries": 3, "interval_start": 0.1},
    )
    assert unknown == ["m-2"]
    bodies = []
    while (message := queue(conn.default_channel).get(no_ack=True)) is not None:
        bodies.append((message.payload, message.properties.get("message_id")))
    assert ("second", "m-2") in bodies
    conn.collect()
    cluster.resume("node1")


def test_collect_abandons_the_channels_as_kombu_does_so_a_rebuilt_simple_queue_gets_everything(
    cluster,
):
    """The robust-consumer article's revive: on an error, ``collect()`` and build the queue
    again. kombu's collect leaves the old channels dead; replaying them here would put a
    second, unread consumer on the queue that strands every other message."""
    conn = Connection(cluster.urls[0])
    old = conn.SimpleQueue("rebuilt")
    conn.collect()
    conn.ensure_connection(max_retries=3)
    new = conn.SimpleQueue("rebuilt")
    with Connection(cluster.urls[0]) as prod:
        for n in range(10):
            Producer(prod).publish({"n": n}, routing_key="rebuilt")
    got = []
    for _ in range(10):
        message = new.get(timeout=2)
        got.append(message.payload["n"])
        message.ack()
    assert got == list(range(10))
    assert not old.buffer, "the abandoned queue's consumer came back"
    conn.close()


def test_a_rebuilt_simple_queue_does_not_wait_for_a_hung_cluster_peer():
    """RabbitMQ holds every queue.bind while a cluster peer hangs unseen (a global Mnesia
    lock until net_ticktime; broker_sim.schema_lock). A revive re-binds what it bound
    before, so it sends that bind without waiting, on a side channel, and consumes at once
    (measured on real nodes: scenario consume.simple-hung-node)."""
    with SimCluster(nodes=3, seed=8, net_ticktime=600.0) as cluster:  # > any client timeout
        conn = Connection(cluster.urls[0])
        conn.SimpleQueue("revived")
        cluster.pause("node3")
        conn.collect()
        conn.ensure_connection(max_retries=3)
        queue = conn.SimpleQueue("revived")
        with Connection(cluster.urls[1]) as prod:
            Producer(prod).publish({"n": 1}, routing_key="revived")
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        conn.collect()
        cluster.resume("node3")
