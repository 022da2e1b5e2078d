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


def test_the_waiting_consumer_takes_over_when_the_active_ones_node_dies(sim):
    setup = connect(sim.nodes[0])
    ch = setup.channel()
    args = {"x-queue-type": "quorum", "x-single-active-consumer": True}
    ch.queue_declare("sac", durable=True, auto_delete=False, arguments=args)
    got = {"active": [], "waiting": []}
    active, waiting = connect(sim.nodes[1]), connect(sim.nodes[2])
    for conn, name in ((active, "active"), (waiting, "waiting")):
        conn.channel().basic_consume("sac", callback=lambda m, name=name: got[name].append(m))
    ch.basic_publish(amqp.Message(b"one"), routing_key="sac")
    drain_until(active, 0.3)
    drain_until(waiting, 0.3)
    assert [m.body for m in got["active"]] == [b"one"] and got["waiting"] == []
    sim.kill("node2")
    drain_until(waiting, 0.5)
    ch.basic_publish(amqp.Message(b"two"), routing_key="sac")
    drain_until(waiting, 0.5)
    bodies = [(m.body, m.delivery_info["redelivered"]) for m in got["waiting"]]
    assert bodies == [(b"one", True), (b"two", False)], bodies
    kinds = [e.kind for e in sim.events]
    assert "single-active-consumer" in kinds
    setup.close()
    waiting.close()


def test_a_redelivery_caused_by_failover_counts_toward_the_delivery_limit(sim):
    setup = connect(sim.nodes[0])
    ch = setup.channel()
    ch.queue_declare("dead", durable=True, auto_delete=False)
    args = {"x-queue-type": "quorum", "x-delivery-limit": 0,
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}  # fmt: skip
    ch.queue_declare("once", durable=True, auto_delete=False, arguments=args)
    ch.basic_publish(amqp.Message(b"job"), routing_key="once")
    holder = connect(sim.nodes[1])
    holder.channel().basic_consume("once", callback=lambda m: None)
    drain_until(holder, 0.3)
    sim.kill("node2")  # the unacked delivery comes back: its first return, past limit 0
    time.sleep(0.3)
    message = ch.basic_get("dead", no_ack=True)
    assert message is not None and message.body == b"job"
    assert message.headers["x-death"][0]["reason"] == "delivery_limit"
    assert ch.basic_get("once", no_ack=True) is None
    setup.close()


def test_at_least_once_dead_letters_wait_for_a_target_that_can_take_them(sim):
    """rabbit_fifo_dlx keeps a dead letter until a target confirms it: the target here is
    a classic queue whose home node is down, so the letter waits until the node is back."""
    home = connect(sim.nodes[1])
    home.channel().queue_declare("target", durable=True, auto_delete=False)
    home.close()
    setup = connect(sim.nodes[0])
    ch = setup.channel()
    args = {"x-queue-type": "quorum", "x-delivery-limit": 0, "x-overflow": "reject-publish",
            "x-dead-letter-strategy": "at-least-once",
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "target"}  # fmt: skip
    ch.queue_declare("source", durable=True, auto_delete=False, arguments=args)
    ch.basic_publish(amqp.Message(b"keep me", delivery_mode=2), routing_key="source")
    sim.kill("node2")
    message = ch.basic_get("source")
    ch.basic_reject(message.delivery_tag, requeue=True)  # past the limit: dead-lettered
    time.sleep(0.2)
    sim.start_node("node2")
    time.sleep(0.3)
    got = ch.basic_get("target", no_ack=True)
    assert got is not None and got.body == b"keep me"
    setup.close()


def test_a_4x_node_limits_quorum_deliveries_to_20_by_default():
    from broker_sim import NodeConfig

    with SimCluster(nodes=1, config=NodeConfig(product_version="4.1.0")) as cluster:
        conn = connect(cluster.nodes[0])
        ch = conn.channel()
        ch.queue_declare("q4", durable=True, auto_delete=False,
                         arguments={"x-queue-type": "quorum"})  # fmt: skip
        ch.basic_publish(amqp.Message(b"poison"), routing_key="q4")
        deliveries = 0
        for _ in range(30):
            message = ch.basic_get("q4")
            if message is None:
                break
            deliveries += 1
            ch.basic_reject(message.delivery_tag, requeue=True)
        assert deliveries == 21  # the first delivery and 20 redeliveries, then dropped
        conn.close()
