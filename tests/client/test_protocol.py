"""The client's sans-IO protocol against the broker's sans-IO node, in memory: no sockets,
a manual clock, the same encoded frames as over TCP."""

from __future__ import annotations

import socket

import pytest
from pamqp import commands as C

from client.errors import LoginRefused, NotFound
from client.protocol import (
    Blocked,
    ChannelClosed,
    ClientProtocol,
    Closed,
    ContentEvent,
    MethodEvent,
    Opened,
)
from tests.broker_sim.sansio import make_cluster


class Wire:
    """Moves bytes between one ClientProtocol and one broker node."""

    def __init__(self, node, proto: ClientProtocol) -> None:
        self.node, self.proto = node, proto
        self.conn = node.connect("memory:1")
        self.closed = False

    def pump(self) -> list:
        events = []
        for _ in range(50):
            out = self.proto.data_to_send()
            if out:
                self.node.receive(self.conn, out)
            back = b""
            for node in self.node.cluster.nodes.values():
                for conn, data, action in node.take_output():
                    if conn is self.conn:
                        back += data
                        self.closed = self.closed or action is not None
            if back:
                events += self.proto.receive(back)
            if not out and not back:
                break
        return events


def open_wire(clock_node=None, **kwargs):
    cluster, clock = make_cluster(1)
    node = cluster.first_node
    proto = ClientProtocol("guest", "guest", clock=clock, **kwargs)
    wire = Wire(node, proto)
    proto.initiate()
    return wire, clock, wire.pump()


def test_handshake_negotiates_and_opens():
    wire, _, events = open_wire(heartbeat=10, frame_max=65536)
    opened = [e for e in events if isinstance(e, Opened)]
    assert len(opened) == 1
    assert (opened[0].frame_max, opened[0].heartbeat, opened[0].channel_max) == (65536, 10, 2047)
    assert opened[0].server_properties["capabilities"]["publisher_confirms"] is True
    assert wire.proto.state == "open"


@pytest.mark.parametrize("login_method", ["PLAIN", "AMQPLAIN"])
def test_login_methods(login_method):
    _, _, events = open_wire(login_method=login_method)
    assert any(isinstance(e, Opened) for e in events)


def test_refused_login_is_a_connection_error_with_rabbitmqs_text():
    cluster, clock = make_cluster(1)
    proto = ClientProtocol("guest", "wrong", clock=clock)
    wire = Wire(cluster.first_node, proto)
    proto.initiate()
    closed = [e for e in wire.pump() if isinstance(e, Closed)]
    assert isinstance(closed[0].error, LoginRefused)
    assert closed[0].error.reply_text.startswith("ACCESS_REFUSED - Login was refused")


def test_publish_get_and_content_assembly_across_frames():
    wire, _, _ = open_wire(frame_max=4096)
    proto = wire.proto
    proto.send_method(1, C.Channel.Open())
    proto.send_method(1, C.Queue.Declare(queue="q"))
    body = bytes(range(256)) * 40  # 10 KiB: three body frames at frame_max 4096
    proto.send_content(
        1,
        C.Basic.Publish(routing_key="q"),
        C.Basic.Properties(message_id="m1", headers={"k": "v"}),
        body,
    )
    proto.send_method(1, C.Basic.Get(queue="q", no_ack=True))
    events = wire.pump()
    content = [e for e in events if isinstance(e, ContentEvent)]
    assert len(content) == 1
    assert isinstance(content[0].method, C.Basic.GetOk)
    assert content[0].body == body and content[0].properties.message_id == "m1"
    assert content[0].properties.headers == {"k": "v"}
    kinds = [type(e.method) for e in events if isinstance(e, MethodEvent)]
    assert kinds == [C.Channel.OpenOk, C.Queue.DeclareOk]


def test_channel_errors_carry_the_reply():
    wire, _, _ = open_wire()
    wire.proto.send_method(1, C.Channel.Open())
    wire.proto.send_method(1, C.Queue.Declare(queue="missing", passive=True))
    closed = [e for e in wire.pump() if isinstance(e, ChannelClosed)]
    assert isinstance(closed[0].error, NotFound)
    assert closed[0].error.method_sig == (50, 10)
    assert wire.proto.data_to_send() == b"", "close-ok was already sent and pumped"


def test_received_bytes_count_as_life_without_draining_and_silence_is_death():
    wire, clock, _ = open_wire(heartbeat=10)
    proto = wire.proto
    clock.advance(5.1, wire.node)
    assert proto.heartbeat_due()
    proto.send_heartbeat()
    wire.pump()
    assert not proto.dead()
    clock.advance(21, wire.node)  # the broker stays silent: nothing pumped
    assert proto.dead()


def test_blocked_notification_on_publish_under_alarm():
    wire, _, _ = open_wire()
    wire.node.set_memory_alarm(True)
    wire.proto.send_method(1, C.Channel.Open())
    wire.proto.send_content(1, C.Basic.Publish(routing_key="x"), C.Basic.Properties(), b"x")
    assert any(isinstance(e, Blocked) and e.reason == "low on memory" for e in wire.pump())


def test_the_protocol_speaks_to_a_real_socket(sim_node):
    """The same protocol object over TCP to the live simulated node."""
    proto = ClientProtocol("guest", "guest")
    proto.initiate()
    with socket.create_connection((sim_node.host, sim_node.port), timeout=5) as sock:
        events = []
        for _ in range(20):
            sock.sendall(proto.data_to_send())
            events += proto.receive(sock.recv(65536))
            if any(isinstance(e, Opened) for e in events):
                break
        assert proto.state == "open"
        proto.close()
        sock.sendall(proto.data_to_send())
        assert any(
            isinstance(e, Closed) and e.error is None for e in proto.receive(sock.recv(4096))
        )


def test_a_routing_key_over_255_bytes_is_refused_naming_the_limit():
    wire, _clock, _events = open_wire()
    with pytest.raises(ValueError, match="300 bytes: an AMQP short string holds at most 255"):
        wire.proto.send_publish(1, "", "k" * 300, False, C.Basic.Properties(), b"x")
