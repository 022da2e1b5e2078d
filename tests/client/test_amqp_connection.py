"""The blocking connection: bounded waits, heartbeats kept while waiting, a hung broker
detected and torn down without waiting for a close-ok — against the live simulated cluster,
and the basic publish/consume/confirm path against both brokers."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from pamqp import commands as C

from broker_sim import SimCluster
from client.amqp import AMQPConnection
from client.errors import ConnectionForced, LoginRefused, NotFound


def connect(node, **kwargs) -> AMQPConnection:
    parts = urllib.parse.urlparse(node.url)
    return AMQPConnection(parts.hostname, parts.port, **kwargs).connect()


def test_publish_confirm_get_and_consume(broker, uid):
    conn = connect(broker)
    ch = conn.channel()
    ch.rpc(C.Queue.Declare(queue=f"client-{uid}", auto_delete=True), C.Queue.DeclareOk)
    ch.confirm_select()
    for i in range(20):
        ch.basic_publish(
            f"{i}".encode(),
            routing_key=f"client-{uid}",
            properties=C.Basic.Properties(message_id=f"m{i}"),
        )
    assert ch.wait_for_confirms(timeout=5)
    got = ch.basic_get(f"client-{uid}", no_ack=True)
    assert (got.body, got.properties.message_id) == (b"0", "m0")
    seen = []

    def on_message(event):
        seen.append(event.body)
        ch.basic_ack(event.method.delivery_tag)

    ch.basic_consume(f"client-{uid}", on_message)
    deadline = time.monotonic() + 5
    while len(seen) < 19 and time.monotonic() < deadline:
        conn.drain_events(timeout=0.2)
    assert seen == [f"{i}".encode() for i in range(1, 20)]
    conn.close(timeout=2)


def test_errors_name_rabbitmqs_reply(broker, uid):
    with pytest.raises(LoginRefused):
        connect(broker, password="wrong")
    conn = connect(broker)
    ch = conn.channel()
    with pytest.raises(NotFound) as info:
        ch.rpc(C.Queue.Declare(queue=f"nope-{uid}", passive=True), C.Queue.DeclareOk)
    assert info.value.reply_text == f"NOT_FOUND - no queue 'nope-{uid}' in vhost '/'"
    conn.close(timeout=2)


def test_drain_events_returns_within_its_timeout_while_heartbeats_arrive():
    with SimCluster(nodes=1, config=None) as cluster:
        conn = connect(cluster.nodes[0], heartbeat=1)
        started = time.monotonic()
        for _ in range(10):
            conn.drain_events(timeout=0.3)
        elapsed = time.monotonic() - started
        assert 2.9 <= elapsed < 3.6, "each drain returns at its timeout"
        assert conn.connected, "heartbeats were sent while draining"
        conn.close(timeout=2)


def test_hung_broker_is_detected_and_close_does_not_wait_for_it():
    with SimCluster(nodes=1) as cluster:
        conn = connect(cluster.nodes[0], heartbeat=1)
        cluster.pause("node1")
        started = time.monotonic()
        with pytest.raises(ConnectionForced, match="Too many heartbeats missed"):
            while time.monotonic() - started < 6:
                conn.drain_events(timeout=0.2)
        assert time.monotonic() - started < 4
        started = time.monotonic()
        conn.close(timeout=5)
        assert time.monotonic() - started < 0.5, "a dead connection is not closed politely"
        cluster.resume("node1")


def test_rpc_to_a_hung_broker_times_out():
    with SimCluster(nodes=1) as cluster:
        conn = connect(cluster.nodes[0])
        ch = conn.channel()
        cluster.pause("node1")
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no DeclareOk within 0.5 s"):
            ch.rpc(C.Queue.Declare(queue="q"), C.Queue.DeclareOk, timeout=0.5)
        assert time.monotonic() - started < 1.5
        conn.collect()
        cluster.resume("node1")
