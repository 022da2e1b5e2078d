"""Single active consumer and the quorum delivery limit, on the simulated node and a real
RabbitMQ (one body each)."""

from __future__ import annotations

import time

import pika
import pytest

from tests.conformance.helpers import connect


def pump(conn, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_one_consumer_is_active_and_the_next_takes_over_in_order(broker, uid, queue_type):
    conn, ch = connect(broker)
    queue = f"sac-{queue_type}-{uid}"
    args = {"x-single-active-consumer": True, "x-queue-type": queue_type}
    ch.queue_declare(queue, durable=True, arguments=args)
    seen = []
    first, second = conn.channel(), conn.channel()
    for name, channel in (("first", first), ("second", second)):
        channel.basic_qos(prefetch_count=2)
        channel.basic_consume(
            queue, lambda c, m, p, b, name=name: seen.append((name, b, m.redelivered))
        )
    ch.confirm_delivery()
    for n in range(4):
        ch.basic_publish("", queue, b"m%d" % n)
    pump(conn, 0.5)
    assert seen == [("first", b"m0", False), ("first", b"m1", False)], seen
    first.close()  # its two unacked deliveries go back; second becomes the active one
    pump(conn, 0.5)
    # classic queues requeue first; rabbit_fifo applies the cancel before the channel's
    # down, so the new active consumer of a quorum queue gets the ready ones first
    expected = [b"m0", b"m1"] if queue_type == "classic" else [b"m2", b"m3"]
    assert [(name, body) for name, body, _ in seen[2:]] == [("second", b) for b in expected]
    assert all(redelivered == (queue_type == "classic") for _, _, redelivered in seen[2:4])
    ch.queue_delete(queue)
    conn.close()


def test_a_single_active_consumer_flag_must_be_a_boolean(broker, uid):
    conn, ch = connect(broker)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        ch.queue_declare(f"sac-bad-{uid}", arguments={"x-single-active-consumer": "yes"})
    assert (closed.value.reply_code, closed.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue "
        f"'sac-bad-{uid}' in vhost '/': {{unacceptable_type,longstr}}",
    )
    conn.close()


def test_a_quorum_queue_dead_letters_past_its_delivery_limit(broker, uid):
    conn, ch = connect(broker)
    queue, dead = f"dl-{uid}", f"dl-dead-{uid}"
    ch.queue_declare(dead, durable=True)
    args = {
        "x-queue-type": "quorum",
        "x-delivery-limit": 1,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead,
    }
    ch.queue_declare(queue, durable=True, arguments=args)
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"poison")
    counts = []
    for _ in range(2):
        method, props, body = get(ch, queue)
        counts.append((props.headers or {}).get("x-delivery-count"))
        ch.basic_reject(method.delivery_tag, requeue=True)
    # 3.10 sends x-delivery-count 0 on the first delivery too; later versions (and the
    # simulator, as 3.13) only once the message came back
    assert counts[0] in (None, 0) and counts[1] == 1
    method, props, body = get(ch, dead)
    assert body == b"poison"
    death = props.headers["x-death"][0]
    assert (death["reason"], death["queue"], death["count"]) == ("delivery_limit", queue, 1)
    assert ch.basic_get(queue)[0] is None
    ch.queue_delete(queue)
    ch.queue_delete(dead)
    conn.close()


def get(ch, queue: str, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue)
        if method is not None:
            return method, props, body
        time.sleep(0.05)
    raise AssertionError(f"nothing in {queue} after {seconds} s")
