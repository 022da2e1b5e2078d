"""Consumer features failover code leans on, on the simulated cluster with real clients:
per-queue consumer timeouts (RabbitMQ 3.12+ ``x-consumer-timeout``), and how they behave
through faults."""

from __future__ import annotations

import time

import amqp
import pytest

from broker_sim import SimCluster


@pytest.fixture
def sim():
    with SimCluster(nodes=3) as cluster:
        yield cluster


def connect(node) -> amqp.Connection:
    conn = amqp.Connection(f"{node.host}:{node.port}")
    conn.connect()
    return conn


def drain_until(conn, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=0.1)
        except TimeoutError:
            pass


def test_a_queues_x_consumer_timeout_overrides_the_nodes(sim):
    conn = connect(sim.nodes[0])
    ch = conn.channel()
    ch.queue_declare("quick", durable=True, auto_delete=False,
                     arguments={"x-consumer-timeout": 300})  # fmt: skip
    ch.queue_declare("patient", durable=True, auto_delete=False)
    for queue in ("quick", "patient"):
        ch.basic_publish(amqp.Message(queue.encode()), routing_key=queue)
    patient = conn.channel()
    patient.basic_consume("patient", callback=lambda m: None)
    ch.basic_get("quick")  # basic.get deliveries are watched too
    started = time.monotonic()
    with pytest.raises(amqp.exceptions.PreconditionFailed) as closed:
        drain_until(conn, 3)
    assert 0.25 < time.monotonic() - started < 1.5
    assert "on channel 1 timed out. Timeout value used: 300 ms." in closed.value.reply_text
    drain_until(conn, 0.5)
    assert patient.is_open, "the node's 30 min timeout still holds for the other queue"
    conn.close()


def test_a_timed_out_delivery_returns_to_a_quorum_queue_and_reaches_another_node(sim):
    setup = connect(sim.nodes[0])
    ch = setup.channel()
    ch.queue_declare("work", durable=True, auto_delete=False,
                     arguments={"x-queue-type": "quorum", "x-consumer-timeout": 300})  # fmt: skip
    ch.basic_publish(amqp.Message(b"job"), routing_key="work")
    slow = connect(sim.nodes[1])
    slow_ch = slow.channel()
    slow_ch.basic_consume("work", callback=lambda m: None)
    with pytest.raises(amqp.exceptions.PreconditionFailed):
        drain_until(slow, 3)
    other = connect(sim.nodes[2])
    message = other.channel().basic_get("work", no_ack=True)
    assert message is not None and message.body == b"job"
    assert message.delivery_info["redelivered"]
    for conn in (setup, slow, other):
        conn.close()
