"""Policies and vhost limits through the cluster's faults, with real clients on the live
driver: both are cluster metadata (RabbitMQ keeps them in its metadata store), so they hold
on every node and survive a node's crash; a vhost's connection limit counts every node's
connections and frees a slot when a node dies."""

from __future__ import annotations

import time

import amqp
import pytest

from broker_sim import SimCluster


def connect(node) -> amqp.Connection:
    conn = amqp.Connection(f"{node.host}:{node.port}")
    conn.connect()
    return conn


def test_a_policy_holds_on_the_quorum_queues_new_leader_after_a_crash():
    with SimCluster(nodes=3, election_timeout=0.2) as sim:
        sim.nodes[0].set_policy("/", "cap", "^capped$", {"max-length": 2}, 0, "queues")
        setup = connect(sim.nodes[0])  # declared through node1: node1 leads the queue
        setup.channel().queue_declare("capped", durable=True, auto_delete=False,
                                      arguments={"x-queue-type": "quorum"})  # fmt: skip
        conn = connect(sim.nodes[1])
        ch = conn.channel()
        sim.kill("node1")
        time.sleep(0.5)  # node2 or node3 takes over
        leaders = [e.node for e in sim.events if e.kind == "quorum-leader"]
        assert leaders[0] == "rabbit@node1" and leaders[-1] != "rabbit@node1"
        for n in range(5):
            ch.basic_publish(amqp.Message(b"%d" % n), routing_key="capped")
        time.sleep(0.2)
        _, depth, _ = ch.queue_declare("capped", passive=True)
        assert depth == 2
        sim.start_node("node1")
        conn.close()


def test_a_vhost_connection_limit_counts_every_node_and_frees_when_one_dies():
    with SimCluster(nodes=3) as sim:  # of 2, pause_minority stops the survivor too
        sim.nodes[0].set_vhost_limits("/", max_connections=1)
        holder = connect(sim.nodes[1])
        with pytest.raises(amqp.exceptions.ConnectionError) as refused:
            connect(sim.nodes[0])
        assert "connection limit (1) is reached" in str(refused.value)
        sim.kill("node2")
        again = connect(sim.nodes[0])  # node2's connection died with it
        again.close()
        del holder
