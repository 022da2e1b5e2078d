"""The cluster model, sans-IO: faults, quorum queues and elections on a manual clock."""

from __future__ import annotations

import pytest
from pamqp import commands as C

from broker_sim.cluster import FaultError
from tests.broker_sim.sansio import Peer, make_cluster


def connect(cluster, node: str) -> Peer:
    peer = Peer(cluster.node(node))
    peer.handshake()
    peer.open_channel()
    return peer


def declare_quorum(peer: Peer, name: str = "qq") -> None:
    peer.send(1, C.Queue.Declare(queue=name, durable=True, arguments={"x-queue-type": "quorum"}))
    assert isinstance(peer.methods()[-1], C.Queue.DeclareOk)


def acks(peer: Peer) -> list[tuple[int, bool]]:
    return [(m.delivery_tag, m.multiple) for m in peer.methods() if isinstance(m, C.Basic.Ack)]


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "args", "message"),
    [
        ("kill", ("node9",), "unknown node 'node9' (nodes: rabbit@node1, rabbit@node2"),
        ("resume", ("node1",), "cannot resume node 'rabbit@node1': it is not paused"),
        ("start", ("node1",), "cannot start node 'rabbit@node1': it is running"),
        ("partition", ([["node1"], ["node1", "node2"]],), "appears in partition groups 0 and 1"),
        ("partition", ([["node1", "node2", "node3"]],), "at least two non-empty groups"),
        ("partition", (["node1", "node2"],), "must be a list of nodes"),
        ("heal", (), "not partitioned"),
    ],
)
def test_bad_faults_are_refused_with_a_clear_error(fault, args, message):
    cluster, _ = make_cluster(3)
    with pytest.raises(FaultError, match=message.replace("(", r"\(").replace(")", r"\)")):
        getattr(cluster, fault)(*args)
    assert {n.state for n in cluster.nodes.values()} == {"running"}
    assert cluster.groups is None


def test_a_refused_fault_leaves_other_nodes_untouched():
    cluster, _ = make_cluster(3)
    peer = connect(cluster, "node2")
    peer.send(1, C.Queue.Declare(queue="keep", durable=True))
    peer.publish(1, "", "keep", b"x", delivery_mode=2)
    with pytest.raises(FaultError):
        cluster.partition([["node2"], ["node2"]])
    assert cluster.vhosts["/"].queues["keep"].message_count == 1
    assert not peer.closed


# -- node faults --------------------------------------------------------------------------


def test_kill_resets_sockets_and_stop_sends_320():
    cluster, _ = make_cluster(2)
    a, b = connect(cluster, "node1"), connect(cluster, "node2")
    cluster.kill("node1")
    a.pump()
    assert a.reset and a.take() == []
    cluster.stop("node2")
    closes = [m for m in b.methods() if isinstance(m, C.Connection.Close)]
    assert closes[0].reply_code == 320
    assert "shutdown" in closes[0].reply_text
    assert [e.kind for e in cluster.events if e.kind in ("kill", "stop")] == ["kill", "stop"]


def test_durable_classic_queue_keeps_persistent_messages_across_a_crash():
    cluster, _ = make_cluster(3)  # with 2, pause_minority would stop the survivor too
    a = connect(cluster, "node1")
    a.send(1, C.Queue.Declare(queue="d", durable=True), C.Queue.Declare(queue="t"))
    a.publish(1, "", "d", b"persistent", delivery_mode=2)
    a.publish(1, "", "d", b"transient", delivery_mode=1)
    a.publish(1, "", "t", b"gone")
    b = connect(cluster, "node2")
    b.send(1, C.Basic.Consume(queue="d", consumer_tag="ct"))
    b.take()
    cluster.kill("node1")
    cancels = [m for m in b.methods() if isinstance(m, C.Basic.Cancel)]
    assert [c.consumer_tag for c in cancels] == ["ct"], "consumer_cancel_notify on node loss"
    b.send(1, C.Queue.Declare(queue="d", durable=True))
    close = b.methods()[-1]
    assert close.reply_code == 404
    assert close.reply_text == (
        "NOT_FOUND - home node 'rabbit@node1' of durable queue 'd' in vhost '/' is down or "
        "inaccessible"
    )
    assert "t" not in cluster.vhosts["/"].queues, "transient queues die with their node"
    cluster.start("node1")
    queue = cluster.vhosts["/"].queues["d"]
    assert [qm.message.body for qm in queue.store] == [b"persistent"]


def test_pause_freezes_timers_and_holds_traffic():
    cluster, clock = make_cluster(2)
    peer = Peer(cluster.node("node1"))
    peer.handshake(heartbeat=10)
    cluster.pause("node1")
    clock.advance(60, cluster.node("node1"))
    peer.send_bytes(b"\x08\x00\x00\x00\x00\x00\x00\xce")
    assert peer.take() == [] and not peer.closed, "a hung node sends nothing"
    cluster.resume("node1")
    clock.advance(1, cluster.node("node1"))
    assert not peer.closed, "timers were frozen, not fired late"


def test_drop_heartbeats_keeps_serving_but_sends_no_heartbeat():
    cluster, clock = make_cluster(1)
    peer = Peer(cluster.node("node1"))
    peer.handshake(heartbeat=4)
    cluster.drop_heartbeats("node1")
    for _ in range(5):
        clock.advance(2, cluster.node("node1"))
        peer.send_bytes(b"\x08\x00\x00\x00\x00\x00\x00\xce")
    assert peer.take() == []
    peer.send(1, C.Channel.Open())
    assert isinstance(peer.methods()[-1], C.Channel.OpenOk)


# -- quorum queues ------------------------------------------------------------------------


def test_quorum_queue_members_and_leader():
    cluster, _ = make_cluster(5)
    peer = connect(cluster, "node2")
    declare_quorum(peer)
    queue = cluster.vhosts["/"].queues["qq"]
    assert queue.leader == "rabbit@node2"
    assert queue.members == ["rabbit@node2", "rabbit@node3", "rabbit@node4"]


def test_quorum_queue_refuses_non_durable_declare():
    cluster, _ = make_cluster(3)
    peer = connect(cluster, "node1")
    peer.send(1, C.Queue.Declare(queue="bad", arguments={"x-queue-type": "quorum"}))
    close = peer.methods()[-1]
    assert (close.reply_code, close.reply_text) == (
        406,
        "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'bad' in vhost '/'",
    )


def test_leader_loss_elects_a_new_leader_after_the_election_timeout():
    cluster, clock = make_cluster(3, seed=3)
    peer = connect(cluster, "node2")
    declare_quorum(peer)
    cluster.stop("node2")
    queue = cluster.vhosts["/"].queues["qq"]
    assert queue.leader is None
    clock.advance(cluster.election_timeout + 0.01, cluster.node("node1"))
    assert queue.leader in ("rabbit@node1", "rabbit@node3")
    assert [e.kind for e in cluster.events].count("quorum-leader") == 2


def test_elections_follow_the_seed():
    leaders = set()
    for seed in range(12):
        cluster, clock = make_cluster(3, seed=seed)
        declare_quorum(connect(cluster, "node1"))
        cluster.kill("node1")
        clock.advance(2, cluster.node("node2"))
        leaders.add(cluster.vhosts["/"].queues["qq"].leader)
        again, clock2 = make_cluster(3, seed=seed)
        declare_quorum(connect(again, "node1"))
        again.kill("node1")
        clock2.advance(2, again.node("node2"))
        assert again.vhosts["/"].queues["qq"].leader == cluster.vhosts["/"].queues["qq"].leader
    assert leaders == {"rabbit@node2", "rabbit@node3"}, "different seeds explore both choices"


def test_without_a_majority_publishes_wait_and_are_confirmed_when_it_returns():
    cluster, clock = make_cluster(3)
    peer = connect(cluster, "node1")
    declare_quorum(peer)
    peer.send(1, C.Confirm.Select())
    peer.take()
    peer.publish(1, "", "qq", b"one", delivery_mode=2)
    assert acks(peer) == [(1, False)]
    cluster.stop("node2")  # stop_app: the quorum loses its members, node1 keeps serving
    cluster.stop("node3")  # (killed, node1 would be a minority: see below)
    peer.publish(1, "", "qq", b"two", delivery_mode=2)
    clock.advance(5, cluster.node("node1"))
    assert acks(peer) == [], "no majority: no confirm"
    queue = cluster.vhosts["/"].queues["qq"]
    assert queue.message_count == 1
    cluster.start("node3")
    clock.advance(2, cluster.node("node1"))
    assert acks(peer) == [(2, False)]
    assert [qm.message.body for qm in queue.store] == [b"one", b"two"]


def test_partition_pauses_the_minority():
    cluster, _ = make_cluster(3)
    peer = connect(cluster, "node1")
    cluster.partition([["node1"], ["node2", "node3"]])
    assert cluster.node("node1").state == "minority"
    closes = [m for m in peer.methods() if isinstance(m, C.Connection.Close)]
    assert closes and closes[0].reply_code == 320
    assert cluster.reachable("rabbit@node2", "rabbit@node3")
    assert not cluster.reachable("rabbit@node1", "rabbit@node2")
    cluster.heal()
    assert cluster.node("node1").state == "running"


def test_killing_a_majority_pauses_the_survivor_until_one_node_is_back():
    """pause_minority counts Erlang nodes, whatever took them down (rabbit_node_monitor's
    handle_dead_node: ``majority([Node])`` after a nodedown): with two of three nodes
    killed the third stops serving, and comes back once a majority runs again."""
    cluster, _ = make_cluster(3)
    peer = connect(cluster, "node3")
    cluster.kill("node1")
    assert cluster.node("node3").state == "running"  # two of three: still a majority
    cluster.kill("node2")
    assert cluster.node("node3").state == "minority"
    closes = [m for m in peer.methods() if isinstance(m, C.Connection.Close)]
    assert closes and closes[0].reply_code == 320
    cluster.start("node1")
    assert [cluster.node(n).state for n in ("node1", "node3")] == ["running", "running"]


def test_stopping_two_apps_leaves_the_third_serving():
    """``stop`` is ``rabbitmqctl stop_app``: the Erlang nodes stay up, so the survivor is
    not in a minority (handle_dead_node is about nodes, not the rabbit application)."""
    cluster, _ = make_cluster(3)
    cluster.stop("node1")
    cluster.stop("node2")
    assert cluster.node("node3").state == "running"


def test_a_hang_seen_counts_as_a_node_down_for_the_majority():
    cluster, clock = make_cluster(3)
    cluster.kill("node1")
    cluster.pause("node2")
    assert cluster.node("node3").state == "running"  # the hang is not seen yet
    clock.advance(cluster.net_ticktime + 1, cluster.node("node3"))
    assert cluster.node("node3").state == "minority"


def test_a_hung_quorum_leader_stalls_its_queue_until_its_peers_see_it_down():
    """Measured on RabbitMQ 3.10 (3 nodes, SIGSTOP of the leader's node): with
    net_ticktime 60 no new leader within a 45 s hang, confirms only after the resume; with
    net_ticktime 10 a new leader ~12 s after the stop. Ra does not replace a hung leader by
    itself: the Erlang distribution declaring the node down does."""
    cluster, clock = make_cluster(3, seed=3)
    declare_quorum(connect(cluster, "node3"))
    peer = connect(cluster, "node1")
    peer.send(1, C.Confirm.Select())
    peer.take()
    queue = cluster.vhosts["/"].queues["qq"]
    assert queue.leader == "rabbit@node3"
    cluster.pause("node3")
    peer.publish(1, "", "qq", b"held", delivery_mode=2)
    clock.advance(cluster.net_ticktime - 1, cluster.node("node1"))
    assert queue.leader == "rabbit@node3" and acks(peer) == [], "stalled, not re-elected"
    clock.advance(1 + cluster.election_timeout + 0.1, cluster.node("node1"))
    assert queue.leader in ("rabbit@node1", "rabbit@node2")
    assert acks(peer) == [(1, False)]


def test_a_short_hang_of_the_leader_changes_no_leader():
    cluster, clock = make_cluster(3, seed=3)
    declare_quorum(connect(cluster, "node3"))
    cluster.pause("node3")
    clock.advance(5, cluster.node("node1"))
    cluster.resume("node3")
    assert cluster.vhosts["/"].queues["qq"].leader == "rabbit@node3"
    assert "quorum-leader-lost" not in [e.kind for e in cluster.events]
