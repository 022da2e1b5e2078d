"""The delivery acknowledgement timeout (``consumer_timeout``) on the simulated node and a
real RabbitMQ started with ``consumer_timeout = 2000`` (and, as RabbitMQ's own test suite
does, a short ``channel_tick_interval`` so the real node looks often): a delivery left
unacked past it closes the channel with 406 and RabbitMQ's text, and the message goes back
to the queue for another consumer; acking in time keeps the channel."""

from __future__ import annotations

import time

import amqp
import pika
import pytest

from broker_sim import NodeConfig, SimCluster
from tests.conftest import running_real_node

TIMEOUT_MS = 2000
TEXT = (
    "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value "
    "used: 2000 ms. This timeout value can be configured, see consumers doc guide to learn more"
)


@pytest.fixture(scope="module", params=["sim", "real"])
def timeout_broker(request, tmp_path_factory):
    if request.param == "sim":
        with SimCluster(nodes=1, config=NodeConfig(consumer_timeout=TIMEOUT_MS)) as cluster:
            yield cluster.nodes[0]
        return
    yield from running_real_node(
        tmp_path_factory,
        "rabbitmq-timeout",
        conf=f"consumer_timeout = {TIMEOUT_MS}",
        rabbit_env={"channel_tick_interval": 200},
    )


def consume_one(broker, queue: str):
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    got = []
    ch.basic_consume(queue, lambda c, m, p, b: got.append((m, b)))
    return conn, ch, got


def test_an_unacked_delivery_past_the_timeout_closes_its_channel(timeout_broker, uid):
    """py-amqp here: it raises the channel's close from drain_events."""
    queue = f"ct-{uid}"
    conn = amqp.Connection(f"{timeout_broker.host}:{timeout_broker.port}")
    conn.connect()
    ch = conn.channel()
    ch.queue_declare(queue, durable=True, auto_delete=False)
    got = []
    ch.basic_consume(queue, callback=got.append)
    ch.basic_publish(amqp.Message(b"slow job"), routing_key=queue)
    conn.drain_events(timeout=5)
    assert got, "delivered"
    started = time.monotonic()
    with pytest.raises(amqp.exceptions.PreconditionFailed) as closed:
        while time.monotonic() - started < 10:
            try:
                conn.drain_events(timeout=0.5)
            except TimeoutError:
                pass
    waited = time.monotonic() - started
    assert (closed.value.code, closed.value.reply_text) == (406, TEXT)
    assert 1.5 < waited < 5, waited
    assert conn.connected, "only the channel closes"
    again = conn.channel()
    message = again.basic_get(queue, no_ack=True)
    assert message.body == b"slow job" and message.delivery_info["redelivered"]
    again.queue_delete(queue)
    conn.close()


def test_acking_in_time_keeps_the_channel(timeout_broker, uid):
    queue = f"ct-ok-{uid}"
    conn, ch, got = consume_one(timeout_broker, queue)
    for n in range(3):
        ch.basic_publish("", queue, b"job %d" % n)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.2)
        while got:
            method, _ = got.pop()
            ch.basic_ack(method.delivery_tag)
    assert ch.is_open
    ch.queue_delete(queue)
    conn.close()
