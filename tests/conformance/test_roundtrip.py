"""Core differential checks: the same body against the simulated node and a real RabbitMQ,
driven by kombu, pika and aio-pika."""

from __future__ import annotations

import asyncio
import datetime
import decimal

import aio_pika
import kombu
import pika
import pika.exceptions
import pytest


def pika_channel(broker):
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    return conn, conn.channel()


def test_pika_properties_survive_the_round_trip(broker, uid):
    conn, ch = pika_channel(broker)
    q = f"props-{uid}"
    ch.queue_declare(q, auto_delete=True)
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        priority=3,
        correlation_id="c1",
        reply_to="r",
        expiration="60000",
        message_id="m1",
        timestamp=1700000000,
        type="t",
        user_id="guest",
        app_id="warren",
        headers={
            "i": 1,
            "s": "x",
            "b": True,
            "l": [1, "a"],
            "t": {"n": -5},
            "d": decimal.Decimal("1.25"),
            "ts": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        },
    )
    ch.basic_publish("", q, b"\x00\xffbody", props)
    method, got, body = ch.basic_get(q, auto_ack=True)
    assert body == b"\x00\xffbody"
    for name in (
        "content_type",
        "content_encoding",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
    ):
        assert getattr(got, name) == getattr(props, name), name
    assert got.headers == props.headers
    conn.close()


def test_large_and_empty_bodies(broker, uid):
    conn, ch = pika_channel(broker)
    q = f"sizes-{uid}"
    ch.queue_declare(q, auto_delete=True)
    big = bytes(range(256)) * 4096  # 1 MiB, several frames
    ch.basic_publish("", q, big)
    ch.basic_publish("", q, b"")
    assert ch.basic_get(q, auto_ack=True)[2] == big
    assert ch.basic_get(q, auto_ack=True)[2] == b""
    conn.close()


def test_passive_declare_of_missing_queue_is_404(broker, uid):
    conn, ch = pika_channel(broker)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(f"missing-{uid}", passive=True)
    assert info.value.reply_code == 404
    assert info.value.reply_text == f"NOT_FOUND - no queue 'missing-{uid}' in vhost '/'"
    conn.close()


def test_unknown_delivery_tag_is_406(broker, uid):
    conn, ch = pika_channel(broker)
    ch.basic_ack(delivery_tag=42)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(f"after-{uid}", auto_delete=True)
    assert (info.value.reply_code, info.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - unknown delivery tag 42",
    )
    conn.close()


def test_mandatory_unroutable_is_returned_with_312(broker, uid):
    conn, ch = pika_channel(broker)
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError) as info:
        ch.basic_publish("", f"nowhere-{uid}", b"x", mandatory=True)
    returned = info.value.messages[0]
    assert returned.method.reply_code == 312 and returned.method.reply_text == "NO_ROUTE"
    conn.close()


def test_nack_requeue_redelivers_in_order(broker, uid):
    conn, ch = pika_channel(broker)
    q = f"requeue-{uid}"
    ch.queue_declare(q, auto_delete=True)
    for i in range(3):
        ch.basic_publish("", q, f"{i}".encode())
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    assert tags == [1, 2, 3]
    ch.basic_nack(delivery_tag=0, multiple=True, requeue=True)
    again = [ch.basic_get(q, auto_ack=True) for _ in range(3)]
    assert [(m.redelivered, body) for m, _, body in again] == [
        (True, b"0"),
        (True, b"1"),
        (True, b"2"),
    ]
    conn.close()


def test_kombu_exchange_routing(broker, uid):
    with kombu.Connection(broker.url) as conn:
        topic = kombu.Exchange(f"topic-{uid}", "topic", auto_delete=True)
        queues = {
            "all": kombu.Queue(f"all-{uid}", topic, routing_key="#", auto_delete=True),
            "eu": kombu.Queue(f"eu-{uid}", topic, routing_key="*.eu.*", auto_delete=True),
        }
        producer = conn.Producer()
        for key in ("a.eu.b", "a.us.b", "x"):
            producer.publish(
                {"k": key}, exchange=topic, routing_key=key, declare=list(queues.values())
            )
        got = {}
        for name, queue in queues.items():
            bound = queue(conn.default_channel)
            keys = []
            for _ in range(5):
                message = bound.get(no_ack=True)
                if message is None:
                    break
                keys.append(message.payload["k"])
            got[name] = keys
            bound.delete()
        assert got == {"all": ["a.eu.b", "a.us.b", "x"], "eu": ["a.eu.b"]}


def test_aio_pika_confirmed_publish_and_consume(broker, uid):
    async def main():
        conn = await aio_pika.connect(broker.url, timeout=10)
        async with conn:
            ch = await conn.channel(publisher_confirms=True)
            await ch.set_qos(prefetch_count=5)
            queue = await ch.declare_queue(f"aio-{uid}", auto_delete=True)
            for i in range(20):
                await ch.default_exchange.publish(aio_pika.Message(f"{i}".encode()), queue.name)
            seen = []
            async with queue.iterator(timeout=5) as it:
                async for message in it:
                    async with message.process():
                        seen.append(int(message.body))
                    if len(seen) == 20:
                        break
            return seen

    assert asyncio.run(main()) == list(range(20))


def test_bad_password_is_403_and_other_connections_live_on(broker, uid):
    keep, ch = pika_channel(broker)
    q = f"keep-{uid}"
    ch.queue_declare(q, auto_delete=False)
    ch.basic_publish("", q, b"stored")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as info:
        pika.BlockingConnection(pika.URLParameters(broker.amqp_url("guest", "wrong")))
    assert "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(
        info.value
    )
    assert ch.basic_get(q, auto_ack=True)[2] == b"stored"
    ch.queue_delete(q)
    keep.close()
