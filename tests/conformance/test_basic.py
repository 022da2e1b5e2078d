"""basic.* methods, QoS, publisher confirms and transactions, against sim and real."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import kombu
import pika
import pika.exceptions
import pytest

from tests.conformance.helpers import channel_error, connect, connection_error, drain


def pump(conn, seconds: float) -> None:
    """Process events for ``seconds`` (process_data_events may return early)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)


def collect(conn, ch, queue: str, count: int, no_ack: bool = False, seconds: float = 5):
    got = []

    def on_message(channel, method, props, body):
        got.append((method, body))

    tag = ch.basic_consume(queue, on_message, auto_ack=no_ack)
    conn.process_data_events(time_limit=0.2)
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    conn.process_data_events(time_limit=0.2)
    return tag, got


def test_prefetch_limits_unacked_deliveries(broker, uid):
    conn, ch = connect(broker)
    q = f"qos-{uid}"
    ch.queue_declare(q, auto_delete=True)
    for i in range(5):
        ch.basic_publish("", q, f"{i}".encode())
    ch.basic_qos(prefetch_count=2)
    tag, got = collect(conn, ch, q, 2)
    assert [body for _, body in got] == [b"0", b"1"]
    ch.basic_ack(got[-1][0].delivery_tag, multiple=True)
    pump(conn, 0.7)
    assert len(got) == 4
    conn.close()


def test_delivery_tags_per_channel_and_redelivery_on_close(broker, uid):
    conn, ch = connect(broker)
    q = f"tags-{uid}"
    ch.queue_declare(q)
    for i in range(3):
        ch.basic_publish("", q, f"{i}".encode())
    other = conn.channel()
    assert ch.basic_get(q)[0].delivery_tag == 1
    assert other.basic_get(q)[0].delivery_tag == 1
    assert ch.basic_get(q)[0].delivery_tag == 2
    ch.close()  # unacked deliveries go back, marked redelivered, in order
    got = [other.basic_get(q, auto_ack=True) for _ in range(2)]
    assert [(m.redelivered, body) for m, _, body in got] == [(True, b"0"), (True, b"2")]
    other.queue_delete(q)
    conn.close()


def test_double_ack_is_unknown_delivery_tag(broker, uid):
    conn, ch = connect(broker)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    method = ch.basic_get(q)[0]
    ch.basic_ack(method.delivery_tag)
    ch.basic_ack(method.delivery_tag)
    assert channel_error(ch.queue_declare, "", exclusive=True) == (
        406,
        f"PRECONDITION_FAILED - unknown delivery tag {method.delivery_tag}",
    )
    conn.close()


def test_reject_requeue_and_recover(broker, uid):
    conn, ch = connect(broker)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"a")
    ch.basic_publish("", q, b"b")
    first = ch.basic_get(q)[0]
    ch.basic_reject(first.delivery_tag, requeue=True)
    again, _, body = ch.basic_get(q)
    assert (again.redelivered, body) == (True, b"a")
    ch.basic_recover(requeue=True)
    assert [
        (m.redelivered, b) for m, _, b in (ch.basic_get(q, auto_ack=True) for _ in range(2))
    ] == [(True, b"a"), (False, b"b")]
    conn.close()


def test_round_robin_between_consumers(broker, uid):
    conn, ch = connect(broker)
    q = ch.queue_declare("", exclusive=True).method.queue
    got: dict[str, list[bytes]] = {"one": [], "two": []}
    for name in got:
        ch.basic_consume(q, lambda c, m, p, b, n=name: got[n].append(b), auto_ack=True)
    for i in range(4):
        ch.basic_publish("", q, f"{i}".encode())
    for _ in range(50):
        if sum(len(v) for v in got.values()) == 4:
            break
        conn.process_data_events(time_limit=0.1)
    assert got == {"one": [b"0", b"2"], "two": [b"1", b"3"]}
    conn.close()


def test_server_generated_and_duplicate_consumer_tags(broker, uid):
    """pika refuses duplicate tags itself, so this one speaks raw frames."""
    from pamqp import commands as C

    from tests.conformance.wire import RawClient

    client = RawClient(broker.host, broker.port)
    try:
        client.handshake()
        client.open_channel()
        client.send_frames(1, C.Queue.Declare(queue="", exclusive=True))
        queue = client.next_method().queue
        client.send_frames(1, C.Basic.Consume(queue=queue))
        tag = client.next_method().consumer_tag
        assert tag.startswith("amq.ctag-") and len(tag) == len("amq.ctag-") + 22
        client.send_frames(1, C.Basic.Consume(queue=queue, consumer_tag=tag))
        close = client.next_method()
        assert (close.reply_code, close.reply_text) == (
            530,
            f"NOT_ALLOWED - attempt to reuse consumer tag '{tag}'",
        )
    finally:
        client.close()


def test_exclusive_consumer_is_403(broker, uid):
    conn, ch = connect(broker)
    q = f"exc-{uid}"
    ch.queue_declare(q, auto_delete=True)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    other, ch2 = connect(broker)
    assert channel_error(ch2.basic_consume, q, lambda *a: None) == (
        403,
        f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use",
    )
    other.close()
    conn.close()


def test_server_cancel_when_the_queue_is_deleted(broker, uid):
    conn, ch = connect(broker)
    q = f"cancel-{uid}"
    ch.queue_declare(q)
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume(q, lambda *a: None)
    other, ch2 = connect(broker)
    ch2.queue_delete(q)
    conn.process_data_events(time_limit=1)
    assert cancelled == [tag]
    other.close()
    conn.close()


def test_immediate_flag_is_not_implemented(broker, uid):
    from pamqp import commands as C

    from tests.conformance.wire import RawClient

    client = RawClient(broker.host, broker.port)
    client.handshake()
    client.open_channel()
    client.send_frames(1, C.Basic.Publish(routing_key="x", immediate=True))
    from pamqp import header as H

    client.send_frames(1, H.ContentHeader(0, 0, C.Basic.Properties()))
    close = client.next_method()
    assert (close.reply_code, close.reply_text) == (540, "NOT_IMPLEMENTED - immediate=true")
    client.close()


def test_prefetch_size_and_flow_are_refused(broker):
    conn, ch = connect(broker)
    code, text = connection_error(conn, ch.basic_qos, prefetch_size=10)
    assert (code, text) == (540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)")


def test_user_id_must_match_the_login(broker, uid):
    conn, ch = connect(broker)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="mallory"))
    assert channel_error(ch.queue_declare, "", exclusive=True) == (
        406,
        "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user "
        "was 'guest'",
    )
    conn.close()


# -- confirms and transactions ------------------------------------------------------------


def test_confirms_cover_every_publish(broker, uid):
    async def main():
        conn = await aio_pika.connect(broker.url, timeout=10)
        async with conn:
            ch = await conn.channel(publisher_confirms=True)
            q = await ch.declare_queue(f"conf-{uid}", auto_delete=False)
            confirms = await asyncio.gather(
                *(ch.default_exchange.publish(aio_pika.Message(b"x"), q.name) for _ in range(50))
            )
            assert all(c is not None for c in confirms)
            await q.delete(if_unused=False, if_empty=False)
            return len(confirms)

    assert asyncio.run(main()) == 50


def test_kombu_confirm_publish(broker, uid):
    with kombu.Connection(broker.url, transport_options={"confirm_publish": True}) as conn:
        queue = kombu.Queue(f"kconf-{uid}", auto_delete=False)
        producer = conn.Producer()
        for i in range(10):
            producer.publish({"i": i}, routing_key=queue.name, declare=[queue])
        bound = queue(conn.default_channel)
        assert bound.queue_declare(passive=True).message_count == 10
        bound.delete()


def test_mode_switches_are_refused(broker, uid):
    conn, ch = connect(broker)
    ch.tx_select()
    assert channel_error(ch.confirm_delivery) == (
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
    )
    ch = conn.channel()
    ch.confirm_delivery()
    assert channel_error(ch.tx_select) == (
        406,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
    )
    ch = conn.channel()
    assert channel_error(ch.tx_commit) == (
        406,
        "PRECONDITION_FAILED - channel is not transactional",
    )
    conn.close()


def test_transactions_commit_and_rollback(broker, uid):
    conn, ch = connect(broker)
    q = f"tx-{uid}"
    ch.queue_declare(q)
    watcher = conn.channel()
    ch.tx_select()
    ch.basic_publish("", q, b"rolled-back")
    assert watcher.queue_declare(q, passive=True).method.message_count == 0
    ch.tx_rollback()
    ch.basic_publish("", q, b"committed")
    ch.tx_commit()
    assert watcher.queue_declare(q, passive=True).method.message_count == 1
    method = ch.basic_get(q)[0]
    ch.basic_ack(method.delivery_tag)
    ch.tx_rollback()  # the ack is undone: the delivery is unacked again
    ch.basic_ack(method.delivery_tag)
    ch.tx_commit()
    assert drain(watcher, q) == []
    watcher.queue_delete(q)
    conn.close()


@pytest.mark.parametrize("global_qos", [False, True])
def test_qos_global_flag(broker, uid, global_qos):
    """global=true shares the limit between the channel's consumers (RabbitMQ semantics)."""
    conn, ch = connect(broker)
    qa, qb = f"ga-{uid}", f"gb-{uid}"
    for q in (qa, qb):
        ch.queue_declare(q, auto_delete=True)
        for _ in range(5):
            ch.basic_publish("", q, b"x")
    ch.basic_qos(prefetch_count=2, global_qos=global_qos)
    got = []
    for q in (qa, qb):
        ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
    pump(conn, 0.7)
    assert len(got) == (2 if global_qos else 4)
    conn.close()
