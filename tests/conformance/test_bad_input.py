"""Malformed input over raw sockets: each case gets RabbitMQ's reply code, text and class/
method ids (measured on RabbitMQ 3.10), and never disturbs another connection or a stored
message."""

from __future__ import annotations

import struct

import pika
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands as C
from pamqp import header as H

from tests.conformance.wire import PROTOCOL_HEADER, RawClient


def frame(kind: int, channel: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + end


def _open(c: RawClient, frame_max: int = 131072) -> None:
    c.handshake(frame_max=frame_max)
    c.open_channel()


# name -> (action on a fresh raw client, expected (code, text, class_id, method_id))
CASES = {
    "frame over frame_max": (
        lambda c: (_open(c, 4096), c.send(frame(3, 1, b"x" * 5000))),
        (501, "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,5000,4088}", 0, 0),
    ),
    "bad frame-end octet": (
        lambda c: (c.handshake(), c.send(frame(1, 0, b"\x00\x0a\x00\x28\x00\x00", b"\x00"))),
        (
            501,
            "FRAME_ERROR - type 1, all octets = <<0,10,0,40,0,0>>: {invalid_frame_end_marker,0}",
            0,
            0,
        ),
    ),
    "unknown frame type": (
        lambda c: (c.handshake(), c.send(frame(9, 0, b""))),
        (501, "FRAME_ERROR - type 9, all octets = <<>>: unknown_frame", 0, 0),
    ),
    "method on an unopened channel": (
        lambda c: (c.handshake(), c.send_frames(5, C.Queue.Declare(queue="x"))),
        (504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10),
    ),
    "second channel.open": (
        lambda c: (_open(c), c.send_frames(1, C.Channel.Open())),
        (504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10),
    ),
    "content header without a method": (
        lambda c: (_open(c), c.send_frames(1, H.ContentHeader(0, 1, C.Basic.Properties()))),
        (505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0),
    ),
    "content body without a method": (
        lambda c: (_open(c), c.send(frame(3, 1, b"abc"))),
        (505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0),
    ),
    "method where a content header belongs": (
        lambda c: (
            _open(c),
            c.send_frames(1, C.Basic.Publish(routing_key="q"), C.Queue.Declare(queue="y")),
        ),
        (
            505,
            "UNEXPECTED_FRAME - expected content header for class 60, got non content "
            "header frame instead",
            60,
            40,
        ),
    ),
    "heartbeat on a channel": (
        lambda c: (_open(c), c.send(frame(8, 1, b""))),
        (505, "UNEXPECTED_FRAME - type 8, all octets = <<>>", 0, 0),
    ),
    "basic method on channel 0": (
        lambda c: (c.handshake(), c.send_frames(0, C.Basic.Qos())),
        (504, "CHANNEL_ERROR - unexpected method in connection state running", 60, 10),
    ),
    "truncated arguments": (
        lambda c: (_open(c), c.send(frame(1, 1, b"\x00\x32\x00\x0a\x00\x00\x05ab"))),
        (501, "FRAME_ERROR - cannot decode <<0,0,5,97,98>>", 50, 10),
    ),
    "unknown vhost": (
        lambda c: (
            c.send(PROTOCOL_HEADER),
            c.next_method(),
            c.send_frames(
                0,
                C.Connection.StartOk(
                    client_properties={}, mechanism="PLAIN", response="\0guest\0guest"
                ),
            ),
            c.next_method(),
            c.send_frames(
                0, C.Connection.TuneOk(2047, 131072, 0), C.Connection.Open(virtual_host="nope")
            ),
        ),
        (530, "NOT_ALLOWED - vhost nope not found", 10, 40),
    ),
}


@pytest.fixture
def bystander(broker, uid):
    """A connection opened before the bad one, holding a stored message."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    queue = f"bystander-{uid}"
    ch.queue_declare(queue)
    ch.basic_publish("", queue, b"keep me")
    yield conn, ch, queue
    method, _, body = ch.basic_get(queue, auto_ack=True)
    assert body == b"keep me", "the stored message survived"
    assert conn.is_open, "the other connection was not disturbed"
    ch.queue_delete(queue)
    conn.close()


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_gets_rabbitmqs_error(broker, bystander, case):
    action, (code, text, class_id, method_id) = CASES[case]
    client = RawClient(broker.host, broker.port)
    try:
        action(client)
        close = client.next_method(timeout=5)
        assert isinstance(close, C.Connection.Close), close
        assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
            code,
            text,
            class_id,
            method_id,
        )
    finally:
        client.close()


@pytest.mark.parametrize(
    "header",
    [b"AMQP\x00\x00\x09\x02", b"HTTP/1.1 200 OK\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc"],
)
def test_wrong_protocol_header_gets_the_servers_header_and_close(broker, bystander, header):
    client = RawClient(broker.host, broker.port)
    try:
        client.send(header)
        assert client.read_raw(timeout=5) == PROTOCOL_HEADER
        assert client.eof
    finally:
        client.close()


def test_amqp_0_8_is_refused_by_the_simulator(sim_node):
    """Warren speaks 0-9-1 only; RabbitMQ 3.10 would still answer AMQP 0-8 in 0-8."""
    client = RawClient(sim_node.host, sim_node.port)
    try:
        client.send(b"AMQP\x01\x01\x08\x00")
        assert client.read_raw(timeout=5) == PROTOCOL_HEADER
    finally:
        client.close()


def test_amqp_0_9_header_is_accepted_as_0_9_1(broker):
    """rabbit_reader accepts AMQP 0-9 (1,1,0,9) and answers with 0-9-1's connection.start."""
    client = RawClient(broker.host, broker.port)
    try:
        client.send(b"AMQP\x01\x01\x00\x09")
        start = client.next_method()
        assert isinstance(start, C.Connection.Start)
        assert (start.version_major, start.version_minor) == (0, 9)
    finally:
        client.close()


@pytest.mark.parametrize("step", ["before tune-ok", "bad frame_max"])
def test_errors_before_tuning_close_the_socket_without_a_close_frame(broker, bystander, step):
    client = RawClient(broker.host, broker.port)
    try:
        client.send(PROTOCOL_HEADER)
        client.next_method()
        if step == "before tune-ok":
            client.send_frames(1, C.Channel.Open())
        else:
            client.send_frames(
                0,
                C.Connection.StartOk(
                    client_properties={}, mechanism="PLAIN", response="\0guest\0guest"
                ),
            )
            client.next_method()
            client.send_frames(0, C.Connection.TuneOk(2047, 0, 0))
        assert client.next_method(timeout=8) is None
        assert client.eof
    finally:
        client.close()


def test_unknown_method_id(broker, bystander):
    """RabbitMQ 3.10 drops the socket; the simulator says what was wrong (503)."""
    client = RawClient(broker.host, broker.port)
    try:
        _open(client)
        client.send(frame(1, 1, b"\x00\x3c\x09\x99"))
        reply = client.next_method(timeout=5)
        if broker.kind == "real":
            assert reply is None and client.eof
        else:
            assert (reply.reply_code, reply.reply_text) == (
                503,
                "COMMAND_INVALID - unknown method id 60/2457",
            )
    finally:
        client.close()


def _valid_frames() -> list[bytes]:
    from pamqp import frame as pframe

    return [
        pframe.marshal(C.Channel.Open(), 1),
        pframe.marshal(C.Queue.Declare(queue="fuzz"), 1),
        pframe.marshal(C.Basic.Publish(routing_key="fuzz"), 1),
        pframe.marshal(H.ContentHeader(0, 3, C.Basic.Properties()), 1),
        frame(3, 1, b"abc"),
        pframe.marshal(C.Basic.Get(queue="fuzz"), 1),
    ]


@st.composite
def mutated_streams(draw):
    frames = draw(st.lists(st.sampled_from(_valid_frames()), min_size=1, max_size=6))
    data = bytearray(b"".join(frames))
    for _ in range(draw(st.integers(0, 4))):
        if data:
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] = draw(st.integers(0, 255))
    tail = draw(st.binary(max_size=64))
    return bytes(data) + tail


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=mutated_streams(), raw_prefix=st.booleans())
def test_fuzzed_frames_never_take_the_node_down(sim_node, stream, raw_prefix):
    """Simulator only: a real node delays closing bad handshakes, too slow for 60 examples."""
    keeper = pika.BlockingConnection(pika.URLParameters(sim_node.url))
    ch = keeper.channel()
    ch.queue_declare("fuzz-keeper")
    ch.basic_publish("", "fuzz-keeper", b"stored")
    client = RawClient(sim_node.host, sim_node.port, timeout=2)
    try:
        if raw_prefix:
            client.send(stream)
        else:
            client.handshake()
            client.send(stream)
        client.read_raw(timeout=0.2)
    except OSError:
        pass
    finally:
        client.close()
    assert ch.basic_get("fuzz-keeper", auto_ack=True)[2] == b"stored"
    fresh = pika.BlockingConnection(pika.URLParameters(sim_node.url))
    assert fresh.is_open
    fresh.close()
    keeper.close()
