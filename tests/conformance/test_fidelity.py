"""Eight behaviours where the simulator once differed from RabbitMQ (issue 12), each checked
against the simulated node and a real rabbitmq-server with the same body. Each one breaks a
real client's normal path when it differs: a cleanup's unbind, a requeue-order assumption,
an RPC helper's close."""

from __future__ import annotations

import time

import pika
import pytest
from pamqp import commands as C
from pamqp import header as H
from pamqp.body import ContentBody

from tests.conformance.helpers import channel_error, connect, drain
from tests.conformance.wire import RawClient

ABCDE = (b"a", b"b", b"c", b"d", b"e")


def raw(broker, heartbeat: int = 0, frame_max: int = 131072) -> RawClient:
    client = RawClient(broker.host, broker.port)
    client.handshake(heartbeat=heartbeat, frame_max=frame_max)
    client.open_channel()
    return client


# 1 -------------------------------------------------------------------------------------


def test_unbinding_what_does_not_exist_answers_unbind_ok(broker, uid):
    """rabbit_binding:remove: a missing source, destination or binding is not an error."""
    conn, ch = connect(broker)
    ch.queue_declare(f"ub-{uid}")
    ch.queue_unbind(f"no-such-queue-{uid}", "amq.direct", "k")
    ch.queue_unbind(f"ub-{uid}", f"no-such-exchange-{uid}", "k")
    ch.queue_unbind(f"ub-{uid}", "amq.direct", "never-bound")
    ch.exchange_unbind(f"no-such-exchange-{uid}", "amq.direct", "k")
    ch.exchange_unbind("amq.fanout", f"no-such-exchange-{uid}", "k")
    assert ch.is_open
    assert channel_error(ch.queue_unbind, f"ub-{uid}", "", "k") == (
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    )
    ch = conn.channel()
    ch.queue_delete(f"ub-{uid}")
    conn.close()


# 2 -------------------------------------------------------------------------------------


def _reject_one_by_one(broker, queue: str, arguments: dict, order, priorities=None) -> list:
    conn, ch = connect(broker)
    ch.confirm_delivery()
    ch.queue_declare(queue, durable=True, arguments=arguments)
    for i, body in enumerate(ABCDE):
        props = pika.BasicProperties(priority=priorities[i]) if priorities else None
        ch.basic_publish("", queue, body, properties=props)
    got = []
    for _ in ABCDE:
        method, _, body = ch.basic_get(queue)
        got.append((method.delivery_tag, body))
    for tag, _ in got if order == "forward" else reversed(got):
        ch.basic_reject(tag, requeue=True)
    again = drain(ch, queue)
    ch.queue_delete(queue)
    conn.close()
    return again


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_messages_rejected_one_by_one_return_to_their_original_places(broker, uid, order):
    """rabbit_variable_queue requeues by sequence id: abcde rejected one at a time, in any
    order, is redelivered abcde."""
    assert _reject_one_by_one(broker, f"rq-{order}-{uid}", {}, order) == list(ABCDE)


def test_a_priority_queue_requeues_in_place_within_each_level(broker, uid):
    args = {"x-max-priority": 5}
    again = _reject_one_by_one(broker, f"rqp-{uid}", args, "reverse", priorities=[1, 5, 1, 5, 1])
    assert again == [b"b", b"d", b"a", b"c", b"e"]


def test_a_quorum_queue_returns_rejected_messages_in_the_order_they_came_back(broker, uid):
    """rabbit_fifo keeps returns in a queue of their own, served first, in return order
    (RabbitMQ 3.10 .. 3.13; 4.x adds a delivery limit but keeps the order)."""
    args = {"x-queue-type": "quorum"}
    forward = _reject_one_by_one(broker, f"rqq-f-{uid}", args, "forward")
    assert forward == list(ABCDE)
    reverse = _reject_one_by_one(broker, f"rqq-r-{uid}", args, "reverse")
    assert reverse == list(reversed(ABCDE))


# 3 -------------------------------------------------------------------------------------


def test_delete_ok_comes_before_the_cancel_of_a_consumer_on_the_deleting_channel(broker, uid):
    client = raw(broker)
    client.send_frames(1, C.Queue.Declare(queue=f"dq-{uid}"))
    assert isinstance(client.next_method(), C.Queue.DeclareOk)
    client.send_frames(1, C.Basic.Consume(queue=f"dq-{uid}", consumer_tag="ctag"))
    assert isinstance(client.next_method(), C.Basic.ConsumeOk)
    client.send_frames(1, C.Queue.Delete(queue=f"dq-{uid}"))
    first, second = client.next_method(), client.next_method()
    assert isinstance(first, C.Queue.DeleteOk), first
    assert isinstance(second, C.Basic.Cancel) and second.consumer_tag == "ctag", second
    client.close()


# 4 -------------------------------------------------------------------------------------


def test_redeclaring_with_another_exclusive_flag_is_resource_locked(broker, uid):
    """rabbit_amqqueue:assert_equivalence checks exclusive ownership first (strict)."""
    conn, ch = connect(broker)
    locked = (
        405,
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{}' in vhost "
        "'/'. It could be originally declared on another connection or the exclusive "
        "property value does not match that of the original declaration.",
    )
    ch.queue_declare(f"ex-{uid}", exclusive=True)
    assert channel_error(ch.queue_declare, f"ex-{uid}", exclusive=False) == (
        locked[0],
        locked[1].format(f"ex-{uid}"),
    )
    ch = conn.channel()
    ch.queue_declare(f"shared-{uid}")
    assert channel_error(ch.queue_declare, f"shared-{uid}", exclusive=True) == (
        locked[0],
        locked[1].format(f"shared-{uid}"),
    )
    ch = conn.channel()
    ch.queue_delete(f"shared-{uid}")
    conn.close()


# 5 -------------------------------------------------------------------------------------


def test_a_passive_declare_of_the_default_exchange_is_access_refused(broker):
    client = raw(broker)
    client.send_frames(1, C.Exchange.Declare(exchange="", passive=True))
    close = client.next_method()
    assert isinstance(close, C.Channel.Close), close
    assert (close.reply_code, close.reply_text) == (
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    )
    assert (close.class_id, close.method_id) == (40, 10)
    client.close()


# 6 -------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning")
def test_recover_async_requeues_without_a_reply(broker, uid):
    client = raw(broker)
    queue = f"ra-{uid}"
    client.send_frames(1, C.Queue.Declare(queue=queue))
    assert isinstance(client.next_method(), C.Queue.DeclareOk)
    client.send_frames(
        1,
        C.Basic.Publish(routing_key=queue),
        H.ContentHeader(0, 2, C.Basic.Properties()),
        ContentBody(b"hi"),
    )
    first = get(client, queue)
    assert isinstance(first, C.Basic.GetOk) and not first.redelivered
    client.send_frames(1, C.Basic.RecoverAsync(requeue=True))
    again = get(client, queue)  # no reply to recover-async comes first
    assert isinstance(again, C.Basic.GetOk) and again.redelivered, again
    client.send_frames(1, C.Basic.RecoverAsync(requeue=False))
    close = next(m for m in iter(client.next_method, None) if isinstance(m, C.Connection.Close))
    assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
        540,
        "NOT_IMPLEMENTED - requeue=false",
        60,
        100,
    )
    client.close()


def get(client: RawClient, queue: str):
    """basic.get: the reply method, its content frames read past."""
    client.send_frames(1, C.Basic.Get(queue=queue))
    reply = client.next_method()
    if isinstance(reply, C.Basic.GetOk):
        assert isinstance(client.next_method(), H.ContentHeader)
        assert isinstance(client.next_method(), ContentBody)
    return reply


# 7 -------------------------------------------------------------------------------------


def _publish_with_body_frame(client: RawClient, queue: str, payload: int) -> None:
    client.send_frames(
        1,
        C.Basic.Publish(routing_key=queue),
        H.ContentHeader(0, payload, C.Basic.Properties()),
        ContentBody(b"x" * payload),
    )


def test_a_body_frame_of_exactly_frame_max_octets_is_accepted(broker, uid):
    """rabbit_reader allows ?FRAME_SIZE_FUDGE: payload <= frame_max, though the limit it
    names in the error is frame_max - 8."""
    client = raw(broker, frame_max=4096)
    queue = f"fm-{uid}"
    client.send_frames(1, C.Queue.Declare(queue=queue))
    assert isinstance(client.next_method(), C.Queue.DeclareOk)
    _publish_with_body_frame(client, queue, 4096)
    client.send_frames(1, C.Queue.Declare(queue=queue, passive=True))
    ok = client.next_method()
    assert isinstance(ok, C.Queue.DeclareOk) and ok.message_count == 1, ok
    _publish_with_body_frame(client, queue, 4097)
    close = next(m for m in iter(client.next_method, None) if isinstance(m, C.Connection.Close))
    assert (close.reply_code, close.reply_text) == (
        501,
        "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}",
    )
    client.close()
    conn, ch = connect(broker)
    ch.queue_delete(queue)
    conn.close()


# 8 -------------------------------------------------------------------------------------


def test_after_close_ok_the_broker_waits_for_the_client_to_close_the_socket(broker):
    """rabbit_reader:close_connection sends close-ok and leaves the socket to the client,
    ending it itself only after the heartbeat interval (at most 30 s)."""
    client = raw(broker, heartbeat=2)
    client.send_frames(
        0, C.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)
    )
    assert isinstance(client.next_method(), C.Connection.CloseOk)
    started = time.monotonic()
    client.read_raw(timeout=1.0)
    assert not client.eof, "the socket stays open for the client to close"
    client.read_raw(timeout=6.0)
    assert client.eof, "the broker ends it after the heartbeat interval"
    assert 1.5 < time.monotonic() - started < 6.5
    client.close()
