"""The node's sans-IO core driven directly: no sockets, a manual clock."""

from __future__ import annotations

from pamqp import commands as C

from tests.broker_sim.sansio import Peer, is_heartbeat, make_node


def test_handshake_sequence():
    node, _ = make_node()
    peer = Peer(node)
    methods = peer.handshake()
    kinds = [type(m) for m in methods]
    assert kinds == [C.Connection.Start, C.Connection.Tune, C.Connection.OpenOk]
    start = methods[0]
    assert start.server_properties["capabilities"]["publisher_confirms"] is True
    assert set(start.mechanisms.split()) == {"PLAIN", "AMQPLAIN"}


def test_wrong_protocol_header_gets_server_header_and_close():
    node, _ = make_node()
    peer = Peer(node)
    peer.send_bytes(b"AMQP\x01\x01\x08\x00")  # AMQP 0-8
    assert peer.take() == [("header", b"AMQP\x00\x00\x09\x01")]
    assert peer.closed


def test_server_sends_heartbeats_and_drops_a_silent_client():
    node, clock = make_node()
    peer = Peer(node)
    peer.handshake(heartbeat=10)
    # rabbit_heartbeat checks every H/2 and sends when nothing went out since the last
    # check; the first check only records the handshake's bytes, so the first beat is at H.
    clock.advance(10.1, node)
    peer.pump()
    assert sum(is_heartbeat(f) for _, f in peer.take()) == 1
    clock.advance(5, node)
    assert sum(is_heartbeat(f) for _, f in peer.take()) == 1
    assert not peer.closed
    # The receive side checks every H; the check at 10 s still sees the handshake's bytes,
    # 20 s is the first silent check, 30 s the second, which drops the socket (no close).
    clock.advance(14.8, node)
    peer.pump()
    assert not peer.closed
    clock.advance(0.3, node)
    peer.pump()
    assert peer.closed
    assert any(e.kind == "missed-heartbeats" for e in node.events)


def test_client_heartbeats_keep_the_connection():
    node, clock = make_node()
    peer = Peer(node)
    peer.handshake(heartbeat=10)
    for _ in range(10):
        clock.advance(4, node)
        peer.send_bytes(b"\x08\x00\x00\x00\x00\x00\x00\xce")
    assert not peer.closed


def test_handshake_timeout_drops_a_stalled_client():
    node, clock = make_node()
    peer = Peer(node)
    peer.send_bytes(b"AMQP\x00\x00\x09\x01")
    clock.advance(11, node)
    peer.pump()
    assert peer.closed


def test_message_ttl_expires_into_dead_letter_queue():
    node, clock = make_node()
    peer = Peer(node)
    peer.handshake()
    peer.open_channel()
    peer.send(1, C.Exchange.Declare(exchange="dlx", exchange_type="fanout"))
    peer.send(1, C.Queue.Declare(queue="dead"))
    peer.send(1, C.Queue.Bind(queue="dead", exchange="dlx"))
    peer.send(
        1,
        C.Queue.Declare(
            queue="ttl", arguments={"x-message-ttl": 1000, "x-dead-letter-exchange": "dlx"}
        ),
    )
    peer.publish(1, "", "ttl", b"bye")
    vhost = node.vhosts["/"]
    assert vhost.queues["ttl"].message_count == 1
    clock.advance(0.9, node)
    assert vhost.queues["ttl"].message_count == 1
    clock.advance(0.2, node)
    assert vhost.queues["ttl"].message_count == 0
    dead = vhost.queues["dead"].get()
    death = dead.message.properties.headers["x-death"][0]
    assert death["reason"] == "expired" and death["queue"] == "ttl" and death["count"] == 1


def test_queue_expires_after_idle_period():
    node, clock = make_node()
    peer = Peer(node)
    peer.handshake()
    peer.open_channel()
    peer.send(1, C.Queue.Declare(queue="idle", arguments={"x-expires": 2000}))
    clock.advance(1.9, node)
    assert "idle" in node.vhosts["/"].queues
    clock.advance(0.2, node)
    assert "idle" not in node.vhosts["/"].queues


def test_confirms_in_one_batch_coalesce_into_multiple_ack():
    node, _ = make_node()
    peer = Peer(node)
    peer.handshake()
    peer.open_channel()
    peer.send(1, C.Confirm.Select(), C.Queue.Declare(queue="c"))
    peer.take()
    batch = []
    from pamqp import frame as pframe
    from pamqp import header as pheader

    for _ in range(3):
        batch += [
            C.Basic.Publish(routing_key="c"),
            pheader.ContentHeader(0, 1, C.Basic.Properties()),
            pframe.body.ContentBody(b"x"),
        ]
    peer.send(1, *batch)
    acks = [m for m in peer.methods() if isinstance(m, C.Basic.Ack)]
    assert [(a.delivery_tag, a.multiple) for a in acks] == [(3, True)]


def test_generated_names_follow_the_seed():
    a, _ = make_node(seed=7)
    b, _ = make_node(seed=7)
    assert a.generate_name("amq.gen-") == b.generate_name("amq.gen-")
    assert len(a.generate_name("amq.ctag-")) == len("amq.ctag-") + 22
