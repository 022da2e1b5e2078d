"""The private real-node launcher: starts, serves real clients, stops only what it started."""

from __future__ import annotations

import kombu
import pika
import pika.exceptions
import psutil
import pytest

from scenarios.backends.local import RabbitMQUnavailable, RealRabbitNode, find_sbin


def test_real_node_serves_kombu_and_pika(real_node, uid):
    with kombu.Connection(real_node.url) as conn:
        queue = conn.SimpleQueue(f"launcher-{uid}")
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()
        conn.default_channel.queue_delete(f"launcher-{uid}")
    params = pika.URLParameters(real_node.url)
    assert pika.BlockingConnection(params).is_open


def test_users_and_permissions(real_node, uid):
    real_node.add_user(f"u{uid}", "secret")
    real_node.set_permissions(f"u{uid}", "/")
    try:
        ok = pika.BlockingConnection(pika.URLParameters(real_node.amqp_url(f"u{uid}", "secret")))
        assert ok.is_open
        ok.close()
        bad = pika.URLParameters(real_node.amqp_url(f"u{uid}", "wrong"))
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(bad)
    finally:
        real_node.delete_user(f"u{uid}")


def test_ctl_failure_names_the_command(real_node):
    with pytest.raises(RuntimeError, match="delete_user no-such-user failed"):
        real_node.delete_user("no-such-user")


def test_stop_leaves_no_process_behind(tmp_path):
    try:
        find_sbin()
    except RabbitMQUnavailable as exc:
        pytest.skip(str(exc))
    node = RealRabbitNode(tmp_path).start()
    beam = node.pid
    epmd = [
        p.pid
        for p in psutil.process_iter(["name", "environ"])
        if p.info["name"] == "epmd"
        and (p.info["environ"] or {}).get("ERL_EPMD_PORT") == str(node.epmd_port)
    ]
    assert psutil.pid_exists(beam) and len(epmd) == 1
    node.stop()
    assert not psutil.pid_exists(beam)
    assert not psutil.pid_exists(epmd[0])
    node.stop()  # idempotent


def test_a_partition_recorded_by_one_running_node_restarts_that_node():
    """After a hang with a short net tick, every node ran again but node1 still listed the
    others in ``partitions`` (seen in a fidelity run): the reset must restart node1, whose
    record clears with its app, not the two nodes that recorded nothing."""
    from types import SimpleNamespace

    from scenarios.backends.local_run import partitioned

    nodes = [SimpleNamespace(name=f"warren-n{i}@10.0.0.{i}") for i in (1, 2, 3)]
    seen_by_node1 = {nodes[0].name: [nodes[1].name, nodes[2].name]}
    assert partitioned(nodes, seen_by_node1) == [nodes[0]]
    assert partitioned(nodes, {}) == []
    every_node = {n.name: [m.name for m in nodes if m is not n] for n in nodes}
    assert partitioned(nodes, every_node) == nodes[1:]
