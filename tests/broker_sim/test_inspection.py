"""Inspection: every connection attempt per node in ``cluster.events`` (accepted, refused,
handshake failed, closed: by whom, code and text) and per-connection frame counters, seen
through the bundled client in the virtual world and real clients (pika) on the live
driver."""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from broker_sim import SimCluster
from broker_sim.drivers.virtual import World
from client import Connection

LIFECYCLE = ("connection-accepted", "connection-refused", "connection-open",
             "handshake-failed", "connection-closed")  # fmt: skip


def lifecycle(events) -> list[tuple]:
    return [(e.kind, e.node) for e in events if e.kind in LIFECYCLE]


def test_a_clients_attempts_are_counted_per_node_in_host_order():
    world = World(seed=3, nodes=3)
    world.stop("node1")

    def client():
        conn = Connection(f"{world.url(0)};{world.url(1)}", runtime=world.runtime)
        conn.ensure_connection(max_retries=3)
        conn.release()

    world.spawn("client", client)
    world.run(until=60)
    seen = lifecycle(world.cluster.events)
    assert seen[0] == ("connection-refused", "rabbit@node1")
    assert seen[1:] == [
        ("connection-accepted", "rabbit@node2"),
        ("connection-open", "rabbit@node2"),
        ("connection-closed", "rabbit@node2"),
    ]
    refused = next(e for e in world.cluster.events if e.kind == "connection-refused")
    assert refused.details["reason"] == "node not running" and refused.details["peer"] == "client"
    closed = next(e for e in world.cluster.events if e.kind == "connection-closed")
    assert closed.details["by"] == "client" and closed.details["code"] == 200


@pytest.fixture(scope="module")
def sim():
    with SimCluster(nodes=2) as cluster:
        yield cluster


def ends(sim, kind: str) -> list[dict]:
    return [e.details for e in sim.events if e.kind == kind]


def test_handshake_failures_and_closes_say_who_and_why(sim):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.URLParameters(sim.nodes[0].amqp_url("guest", "wrong")))
    (failed,) = ends(sim, "handshake-failed")
    assert failed["by"] == "broker" and failed["code"] == 403
    assert failed["text"].startswith("ACCESS_REFUSED - Login was refused")
    conn = pika.BlockingConnection(pika.URLParameters(sim.nodes[1].url))
    conn.close()
    closed = [d for d in ends(sim, "connection-closed") if d["by"] == "client"]
    assert closed and closed[-1]["code"] == 200
    conn = pika.BlockingConnection(pika.URLParameters(sim.nodes[1].url))
    sim.kill("node2")
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        conn.process_data_events(time_limit=2)
    crashed = [d for d in ends(sim, "connection-closed") if d.get("reason", "").startswith("node")]
    assert crashed and crashed[-1]["by"] == "broker"
    sim.start_node("node2")


def test_frame_counters_show_the_heartbeat_rate_a_client_keeps(sim):
    params = pika.URLParameters(sim.nodes[0].url + "?heartbeat=2")
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.queue_declare("counted")
    for _ in range(3):
        ch.basic_publish("", "counted", b"x" * 10)
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.5)
    counts = sim.call(lambda: _counts_of_newest(sim.cluster.node("rabbit@node1")))
    conn.close()
    # pika sends a heartbeat every interval/2 when idle; the node every interval/2 too
    assert counts["heartbeats_in"] >= 3 and counts["heartbeats_out"] >= 3, counts
    assert counts["methods_in"] >= 3 + 3 and counts["headers_in"] == 3 and counts["bodies_in"] == 3


def _counts_of_newest(node) -> dict:
    conn = node.connections[max(node.connections)]
    return conn.counts.as_dict()


def test_a_nodes_reply_latency_delays_its_replies_and_no_other_nodes():
    with SimCluster(nodes=2) as cluster:
        cluster.nodes[1].node.config.reply_latency = 0.05

        def round_trip(node) -> float:
            conn = pika.BlockingConnection(pika.URLParameters(node.url))
            ch = conn.channel()
            started = time.monotonic()
            for _ in range(5):
                ch.queue_declare("", exclusive=True)
            elapsed = (time.monotonic() - started) / 5
            conn.close()
            return elapsed

        assert round_trip(cluster.nodes[0]) < 0.02
        assert 0.05 <= round_trip(cluster.nodes[1]) < 0.15
