"""A hung node (SIGSTOP) as the rest of a RabbitMQ 3.10 cluster sees it before
``net_ticktime``: schema changes wait for it, and queues go on delivering to its consumers.
Both measured on real nodes (scenarios consume.simple-hung-node and
heartbeat.idle-consumer-hung-node on ``--backend local``)."""

from __future__ import annotations

from pamqp import commands as C

from tests.broker_sim.sansio import Peer, make_cluster
from tests.broker_sim.test_cluster import connect, declare_quorum


def _bind(peer: Peer, queue: str = "qq", exchange: str = "amq.direct") -> None:
    peer.send(1, C.Queue.Bind(queue=queue, exchange=exchange, routing_key=queue))


def test_queue_bind_waits_while_a_peer_hangs_unseen_and_goes_on_when_it_is_seen():
    """rabbit_binding:add takes a global Mnesia lock on every node of rabbit_route's
    where_to_write: a hung member holds it until the others see it down."""
    cluster, clock = make_cluster(3)
    peer = connect(cluster, "node1")
    declare_quorum(peer)
    cluster.pause("node3")
    _bind(peer)
    peer.send(1, C.Basic.Qos(prefetch_count=1))  # queued behind the bind, as in a channel
    clock.advance(cluster.net_ticktime - 1, cluster.node("node1"))
    assert peer.methods() == [], "no bind-ok while node3 hangs unseen"
    clock.advance(2, cluster.node("node1"))
    assert [type(m) for m in peer.methods()] == [C.Queue.BindOk, C.Basic.QosOk]


def test_a_waiting_bind_goes_on_when_the_hung_node_resumes():
    cluster, clock = make_cluster(3)
    peer = connect(cluster, "node1")
    declare_quorum(peer)
    cluster.pause("node3")
    _bind(peer)
    clock.advance(5, cluster.node("node1"))
    assert peer.methods() == []
    cluster.resume("node3")
    peer.pump()
    assert [type(m) for m in peer.methods()] == [C.Queue.BindOk]


def test_other_channels_and_existing_entities_do_not_wait():
    """Re-declaring an existing queue or exchange is a dirty read (rabbit_channel looks it
    up first): no lock, no wait; and only the waiting channel waits."""
    cluster, clock = make_cluster(3)
    peer = connect(cluster, "node1")
    declare_quorum(peer)
    peer.open_channel(2)
    peer.take()
    cluster.pause("node3")
    _bind(peer)
    peer.send(2, C.Queue.Declare(queue="qq", durable=True, arguments={"x-queue-type": "quorum"}))
    peer.send(2, C.Exchange.Declare(exchange="amq.direct", exchange_type="direct", durable=True))
    assert [type(m) for m in peer.methods()] == [C.Queue.DeclareOk, C.Exchange.DeclareOk]
    peer.send(2, C.Queue.Declare(queue="new", durable=True))
    assert peer.methods() == [], "a new queue is a schema write: it waits"


def test_a_queue_keeps_delivering_to_a_consumer_on_a_hung_node_until_it_is_seen_down():
    """The queue process sends to the consumer's channel on the hung node: it cannot tell.
    Round-robin goes on; what the hung consumer got comes back once the hang is seen."""
    cluster, clock = make_cluster(3)
    publisher = connect(cluster, "node1")
    declare_quorum(publisher)
    hung = connect(cluster, "node3")
    hung.send(1, C.Basic.Consume(queue="qq", consumer_tag="hung"))
    live = connect(cluster, "node2")
    live.send(1, C.Basic.Consume(queue="qq", consumer_tag="live"))
    hung.take(), live.take()
    cluster.pause("node3")
    for n in range(4):
        publisher.publish(1, "", "qq", str(n).encode())
    clock.advance(1, cluster.node("node1"))
    delivered = [m for m in live.methods() if isinstance(m, C.Basic.Deliver)]
    assert len(delivered) == 2, "half went to the hung consumer"
    hung.conn.node.connection_lost(hung.conn)  # the client gave up on node3 meanwhile
    clock.advance(cluster.net_ticktime, cluster.node("node1"))
    redelivered = [m for m in live.methods() if isinstance(m, C.Basic.Deliver)]
    assert [m.redelivered for m in redelivered] == [True, True]


def test_a_socket_closed_while_its_node_hangs_is_noticed_at_resume():
    """The hung node reads nothing, its close included: the consumer's deliveries come
    back when the node runs again, not when the client left."""
    cluster, clock = make_cluster(3)
    publisher = connect(cluster, "node1")
    declare_quorum(publisher)
    hung = connect(cluster, "node3")
    hung.send(1, C.Basic.Consume(queue="qq", consumer_tag="hung"))
    hung.take()
    cluster.pause("node3")
    publisher.publish(1, "", "qq", b"m")
    hung.conn.node.connection_lost(hung.conn)
    queue = cluster.vhosts["/"].queues["qq"]
    assert queue.message_count == 0, "still out with the hung consumer"
    cluster.resume("node3")
    assert queue.message_count == 1
