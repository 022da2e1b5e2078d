"""Queues and their arguments, against the simulated node and a real RabbitMQ."""

from __future__ import annotations

import time

import pika
import pika.exceptions

from tests.conformance.helpers import channel_error, connect, drain, wait_until


def test_server_named_queue_and_declare_ok_counts(broker, uid):
    conn, ch = connect(broker)
    ch.confirm_delivery()  # publishes are in the queue once confirmed
    ok = ch.queue_declare("", exclusive=True).method
    assert ok.queue.startswith("amq.gen-") and len(ok.queue) == len("amq.gen-") + 22
    ch.basic_publish("", ok.queue, b"1")
    ch.basic_publish("", ok.queue, b"2")
    again = ch.queue_declare(ok.queue, passive=True).method
    assert (again.message_count, again.consumer_count) == (2, 0)
    assert channel_error(ch.queue_declare, "amq.mine") == (
        403,
        "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'",
    )
    conn.close()


def test_inequivalent_redeclare(broker, uid):
    conn, ch = connect(broker)
    ch.queue_declare(f"eq-{uid}", durable=True, arguments={"x-message-ttl": 1000})
    assert channel_error(ch.queue_declare, f"eq-{uid}", durable=False) == (
        406,
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'eq-{uid}' in vhost "
        "'/': received 'false' but current is 'true'",
    )
    ch = conn.channel()
    code, text = channel_error(
        ch.queue_declare, f"eq-{uid}", durable=True, arguments={"x-message-ttl": 2000}
    )
    assert code == 406
    assert text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'eq-{uid}' in vhost "
        "'/': received '2000' but current is '1000'"
    )
    ch = conn.channel()
    ch.queue_delete(f"eq-{uid}")
    conn.close()


def test_exclusive_queue_is_locked_to_its_connection_and_dies_with_it(broker, uid):
    owner, ch = connect(broker)
    ch.queue_declare(f"excl-{uid}", exclusive=True)
    other, ch2 = connect(broker)
    code, text = channel_error(ch2.basic_consume, f"excl-{uid}", lambda *a: None)
    assert code == 405
    assert text == (
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'excl-{uid}' in "
        "vhost '/'. It could be originally declared on another connection or the exclusive "
        "property value does not match that of the original declaration."
    )
    owner.close()
    ch3 = other.channel()

    def gone() -> bool:
        nonlocal ch3
        try:
            ch3.queue_declare(f"excl-{uid}", passive=True)
            return False
        except pika.exceptions.ChannelClosedByBroker:
            ch3 = other.channel()
            return True

    assert wait_until(gone, 5)
    other.close()


def test_auto_delete_queue_goes_with_its_last_consumer(broker, uid):
    conn, ch = connect(broker)
    q = f"ad-{uid}"
    ch.queue_declare(q, auto_delete=True)
    time.sleep(0.2)
    assert ch.queue_declare(q, passive=True).method.queue == q, "not deleted before a consumer"
    tag = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(tag)
    ch2 = conn.channel()
    assert wait_until(lambda: _missing(conn, q), 5)
    del ch2
    conn.close()


def _missing(conn, queue: str) -> bool:
    ch = conn.channel()
    try:
        ch.queue_declare(queue, passive=True)
        ch.close()
        return False
    except pika.exceptions.ChannelClosedByBroker:
        return True


def test_purge_and_delete_conditions(broker, uid):
    conn, ch = connect(broker)
    q = f"pd-{uid}"
    ch.queue_declare(q)
    for _ in range(3):
        ch.basic_publish("", q, b"x")
    assert channel_error(ch.queue_delete, q, if_empty=True) == (
        406,
        f"PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty",
    )
    ch = conn.channel()
    assert ch.queue_purge(q).method.message_count == 3
    tag = ch.basic_consume(q, lambda *a: None)
    assert channel_error(ch.queue_delete, q, if_unused=True) == (
        406,
        f"PRECONDITION_FAILED - queue '{q}' in vhost '/' in use",
    )
    ch = conn.channel()
    assert ch.queue_delete(q).method.message_count == 0
    assert ch.queue_delete(f"never-{uid}").method.message_count == 0
    del tag
    conn.close()


def test_bind_to_missing_things_is_404(broker, uid):
    conn, ch = connect(broker)
    assert channel_error(ch.queue_bind, f"noq-{uid}", "amq.direct", "k") == (
        404,
        f"NOT_FOUND - no queue 'noq-{uid}' in vhost '/'",
    )
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    assert channel_error(ch.queue_bind, q, f"noex-{uid}", "k") == (
        404,
        f"NOT_FOUND - no exchange 'noex-{uid}' in vhost '/'",
    )
    conn.close()


def test_message_ttl_and_per_message_expiration(broker, uid):
    conn, ch = connect(broker)
    q = f"ttl-{uid}"
    ch.queue_declare(q, arguments={"x-message-ttl": 150})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"short")
    ch.basic_publish("", q, b"shorter", pika.BasicProperties(expiration="50"))
    assert ch.queue_declare(q, passive=True).method.message_count == 2
    time.sleep(0.5)
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    assert drain(ch, q) == []
    ch.queue_delete(q)
    conn.close()


def test_queue_expires_when_unused(broker, uid):
    conn, ch = connect(broker)
    q = f"exp-{uid}"
    ch.queue_declare(q, arguments={"x-expires": 300})
    time.sleep(0.1)
    assert not _missing(conn, q)  # a passive declare is a use: the countdown restarts
    time.sleep(1.2)
    assert _missing(conn, q)
    conn.close()


def test_max_length_drop_head_dead_letters_the_oldest(broker, uid):
    conn, ch = connect(broker)
    ch.exchange_declare(f"dlx-{uid}", "fanout", auto_delete=True)
    dead = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(dead, f"dlx-{uid}")
    q = f"ml-{uid}"
    ch.queue_declare(q, arguments={"x-max-length": 2, "x-dead-letter-exchange": f"dlx-{uid}"})
    for body in (b"1", b"2", b"3"):
        ch.basic_publish("", q, body)
    assert drain(ch, q) == [b"2", b"3"]
    method, props, body = ch.basic_get(dead, auto_ack=True)
    assert body == b"1"
    death = props.headers["x-death"][0]
    assert (death["reason"], death["queue"], death["count"]) == ("maxlen", q, 1)
    assert death["routing-keys"] == [q] and death["exchange"] == ""
    assert props.headers["x-first-death-reason"] == "maxlen"
    ch.queue_delete(q)
    conn.close()


def test_reject_publish_overflow_nacks(broker, uid):
    conn, ch = connect(broker)
    q = f"rp-{uid}"
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"fits")
    try:
        ch.basic_publish("", q, b"refused")
        refused = False
    except pika.exceptions.NackError:
        refused = True
    assert refused
    assert drain(ch, q) == [b"fits"]
    ch.queue_delete(q)
    conn.close()


def test_dead_letter_on_reject_with_routing_key(broker, uid):
    conn, ch = connect(broker)
    dead = f"dead-{uid}"
    ch.queue_declare(dead)
    q = f"src-{uid}"
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})
    ch.basic_publish("", q, b"bad", pika.BasicProperties(headers={"keep": "me"}))
    method, _, _ = ch.basic_get(q)
    ch.basic_reject(method.delivery_tag, requeue=False)
    assert wait_until(lambda: ch.queue_declare(dead, passive=True).method.message_count == 1)
    method, props, body = ch.basic_get(dead, auto_ack=True)
    assert body == b"bad" and props.headers["keep"] == "me"
    assert method.routing_key == dead
    death = props.headers["x-death"][0]
    assert (death["reason"], death["queue"], death["count"]) == ("rejected", q, 1)
    ch.queue_delete(q)
    ch.queue_delete(dead)
    conn.close()


def test_expired_messages_dead_letter_with_original_expiration(broker, uid):
    conn, ch = connect(broker)
    dead = f"dx-{uid}"
    ch.queue_declare(dead)
    q = f"ex-{uid}"
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})
    ch.basic_publish("", q, b"old", pika.BasicProperties(expiration="100"))
    assert wait_until(lambda: ch.queue_declare(dead, passive=True).method.message_count == 1, 5)
    _, props, _ = ch.basic_get(dead, auto_ack=True)
    death = props.headers["x-death"][0]
    assert death["reason"] == "expired" and death["original-expiration"] == "100"
    assert props.expiration is None
    ch.queue_delete(q)
    ch.queue_delete(dead)
    conn.close()


def test_priority_queue_orders_by_priority(broker, uid):
    conn, ch = connect(broker)
    q = f"prio-{uid}"
    ch.queue_declare(q, arguments={"x-max-priority": 5})
    for body, prio in ((b"low", 1), (b"high", 5), (b"mid", 3), (b"over", 9), (b"none", None)):
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))
    assert drain(ch, q) == [b"high", b"over", b"mid", b"low", b"none"]
    ch.queue_delete(q)
    conn.close()


def test_invalid_queue_arguments(broker, uid):
    conn, ch = connect(broker)
    code, text = channel_error(ch.queue_declare, f"bad-{uid}", arguments={"x-message-ttl": -1})
    assert code == 406
    assert text.startswith(
        f"PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'bad-{uid}'"
    )
    ch = conn.channel()
    code, text = channel_error(ch.queue_declare, f"bad-{uid}", arguments={"x-max-priority": "high"})
    assert code == 406
    assert text.startswith(
        f"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'bad-{uid}'"
    )
    conn.close()
