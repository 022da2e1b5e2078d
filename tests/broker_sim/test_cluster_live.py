"""Cluster faults as real clients see them, over TCP (live driver).

Differences from a real 3-node RabbitMQ 3.10 cluster (compared by hand, see
../shared/notes/real-rabbitmq.md): a real node needs 7-10 s to restart and ~10 s
(net_ticktime) to notice a hung peer; the simulation does both at once, and elects a new
quorum leader after ``election_timeout`` (1 s by default, 5.6-9 s on real nodes when the
leader hangs, 0.2-0.5 s when it is killed).
"""

from __future__ import annotations

import socket
import time

import kombu
import pika
import pika.exceptions
import pytest

from broker_sim import SimCluster
from tests.heartbeats import kombu_heartbeat_failure


@pytest.fixture
def cluster():
    with SimCluster(nodes=3, seed=11, election_timeout=0.3) as c:
        yield c


def pika_conn(url: str, heartbeat: int | None = None) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 5
    if heartbeat is not None:
        params.heartbeat = heartbeat
    return pika.BlockingConnection(params)


def wait_for_error(conn: pika.BlockingConnection, seconds: float) -> Exception | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn.process_data_events(time_limit=0.1)
        except Exception as exc:  # what the client raises is what we assert on
            return exc
    return None


def test_kill_resets_the_client_socket(cluster):
    conn = pika_conn(cluster.urls[0])
    cluster.kill("node1")
    err = wait_for_error(conn, 3)
    assert isinstance(err, pika.exceptions.StreamLostError)
    assert "reset" in str(err).lower()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", cluster.nodes[0].port), timeout=2)


def test_graceful_stop_sends_320_and_restart_accepts_again(cluster):
    conn = pika_conn(cluster.urls[1])
    cluster.stop_node("node2")
    err = wait_for_error(conn, 3)
    assert isinstance(err, pika.exceptions.ConnectionClosedByBroker)
    assert err.reply_code == 320
    assert (
        err.reply_text
        == "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
    )
    cluster.start_node("node2")
    again = pika_conn(cluster.urls[1])
    assert again.is_open
    again.close()


def test_hung_node_is_detected_by_the_client_heartbeat(cluster):
    err, elapsed = kombu_heartbeat_failure(cluster.urls[2], lambda: cluster.pause("node3"))
    assert "Too many heartbeats missed" in str(err)
    assert 2.0 <= elapsed <= 8.0  # real RabbitMQ 3.10 measured 3.5-5.4 s (notes)
    cluster.resume("node3")


def test_dropped_heartbeats_are_detected_by_kombu(cluster):
    err, _ = kombu_heartbeat_failure(cluster.urls[0], lambda: cluster.drop_heartbeats("node1"))
    assert "Too many heartbeats missed" in str(err)


def test_quorum_queue_loses_no_confirmed_message_when_its_leader_is_killed(cluster):
    setup = pika_conn(cluster.urls[0])
    setup.channel().queue_declare("orders", durable=True, arguments={"x-queue-type": "quorum"})
    assert cluster.quorum_leader("orders") == "rabbit@node1"
    publisher = pika_conn(cluster.urls[1])
    ch = publisher.channel()
    ch.confirm_delivery()
    confirmed = []
    for i in range(400):
        if i == 200:
            cluster.kill("node1")
        body = f"m{i}".encode()
        try:
            ch.basic_publish("", "orders", body, pika.BasicProperties(delivery_mode=2))
            confirmed.append(body)
        except pika.exceptions.AMQPError:
            break
    assert len(confirmed) == 400, "node2 keeps its publisher; publishes wait for a new leader"
    assert cluster.quorum_leader("orders") in ("rabbit@node2", "rabbit@node3")
    consumer = pika_conn(cluster.urls[2]).channel()
    received = []
    for _ in range(1000):
        method, _props, body = consumer.basic_get("orders", auto_ack=True)
        if method is None:
            break
        received.append(body)
    assert received == confirmed


def test_unacked_deliveries_come_back_redelivered_when_the_consumer_node_dies(cluster):
    ch = pika_conn(cluster.urls[0]).channel()
    ch.queue_declare("work", durable=True, arguments={"x-queue-type": "quorum"})
    for i in range(3):
        ch.basic_publish("", "work", f"{i}".encode())
    doomed = pika_conn(cluster.urls[2]).channel()
    doomed.basic_qos(prefetch_count=10)
    method, _, _ = doomed.basic_get("work")
    assert method is not None and not method.redelivered
    cluster.kill("node3")
    survivor = pika_conn(cluster.urls[1]).channel()
    first, _, body = survivor.basic_get("work", auto_ack=True)
    assert (first.redelivered, body) == (True, b"0")


def test_kombu_consumer_fails_over_to_another_node(cluster):
    url = f"{cluster.urls[0]};{cluster.urls[1]}"
    with kombu.Connection(cluster.urls[2]) as prod:
        queue = kombu.Queue(
            "jobs", durable=True, queue_arguments={"x-queue-type": "quorum"}, auto_delete=False
        )
        producer = prod.Producer()
        for i in range(10):
            producer.publish({"n": i}, routing_key="jobs", declare=[queue])
    got: list[int] = []
    with kombu.Connection(url, failover_strategy="round-robin", heartbeat=0) as conn:

        def on_message(body, message):
            got.append(body["n"])
            message.ack()
            if len(got) == 3:
                cluster.kill("node1")

        consumer = kombu.Consumer(conn, [queue], callbacks=[on_message], prefetch_count=1)
        consume = conn.ensure(consumer, consumer.consume, max_retries=3, interval_start=0.1)
        consume()
        deadline = time.monotonic() + 10
        while len(set(got)) < 10 and time.monotonic() < deadline:
            try:
                conn.ensure(
                    conn,
                    lambda: conn.drain_events(timeout=0.5),
                    max_retries=3,
                    interval_start=0.1,
                    on_revive=consumer.revive,
                )()
            except TimeoutError:
                pass
            except conn.connection_errors:
                conn.ensure_connection(max_retries=3, interval_start=0.1)
                consumer.revive(conn.default_channel)
                consumer.consume()
    assert set(got) == set(range(10))


def test_minority_node_refuses_service_during_a_partition(cluster):
    conn = pika_conn(cluster.urls[0])
    cluster.partition([["node1"], ["node2", "node3"]])
    err = wait_for_error(conn, 3)
    assert isinstance(err, pika.exceptions.ConnectionClosedByBroker) and err.reply_code == 320
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika_conn(cluster.urls[0])
    assert pika_conn(cluster.urls[1]).is_open
    cluster.heal()
    assert pika_conn(cluster.urls[0]).is_open
    kinds = [e.kind for e in cluster.events]
    assert kinds.index("partition") < kinds.index("pause-minority") < kinds.index("heal")
    assert all(e.time > 0 for e in cluster.events)


def test_inspection(cluster):
    a = pika_conn(cluster.urls[0])
    ch = a.channel()
    ch.queue_declare("inspect")
    ch.basic_publish("", "inspect", b"x")
    ch.basic_consume("inspect", lambda *args: None)
    assert cluster.connections()["rabbit@node1"] == 1
    assert cluster.consumer_count("inspect") == 1
    assert cluster.node_states() == dict.fromkeys(
        ("rabbit@node1", "rabbit@node2", "rabbit@node3"), "running"
    )


def test_an_alarm_stops_reading_a_publisher_socket_until_it_clears(cluster):
    """The live driver stops reading a blocked publisher's socket (TCP back-pressure, as
    RabbitMQ does): the client's sends stall once the kernel buffers fill, the node holds
    little, and every publish is routed, in order, once the alarm clears."""
    from pamqp import body as pbody
    from pamqp import commands as C
    from pamqp import frame as pframe
    from pamqp import header as pheader

    from tests.conformance.wire import RawClient

    node = cluster.nodes[0]
    client = RawClient(node.host, node.port)
    client.handshake()
    client.open_channel()
    client.send_frames(1, C.Queue.Declare(queue="bp"))
    assert isinstance(client.next_method(), C.Queue.DeclareOk)
    body = b"x" * 65536
    publish = b"".join(
        pframe.marshal(f, 1)
        for f in (
            C.Basic.Publish(routing_key="bp"),
            pheader.ContentHeader(body_size=len(body)),
            pbody.ContentBody(body),
        )
    )
    node.set_memory_alarm(True)
    client.sock.settimeout(0.5)
    sent = 0
    try:
        for _ in range(1024):  # at most 64 MiB
            client.sock.sendall(publish)
            sent += 1
    except TimeoutError:
        pass
    assert sent < 1024, "the node kept reading a blocked publisher"
    conn = next(iter(cluster.cluster.nodes["rabbit@node1"].connections.values()))
    held = cluster.call(lambda: len(conn.reader._buf))
    assert held < 2 * 1024 * 1024, f"the node buffered {held} bytes of a blocked publisher"
    assert cluster.queue_depth("bp") == 0
    node.set_memory_alarm(False)
    client.sock.settimeout(5)
    deadline = time.monotonic() + 20
    while cluster.queue_depth("bp") < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cluster.queue_depth("bp") >= sent, "nothing published during the alarm is lost"
    client.close()
