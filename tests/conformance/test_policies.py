"""Policies (rabbitmqctl set_policy) on the simulated node and a real RabbitMQ: a policy
applies to matching queues, existing and new, without a redeclare; the stricter limit of
argument and policy wins; other keys yield to the queue's own argument; clearing it ends it."""

from __future__ import annotations

import contextlib
import time

from tests.conformance.helpers import connect, drain

REAL_APPLY_WAIT = 0.5  # a real node applies a policy (and its clearing) asynchronously


@contextlib.contextmanager
def policy(broker, name: str, pattern: str, definition: dict, priority=0, apply_to="queues"):
    """``name`` in force on vhost / for the body of a with, cleared after it."""
    broker.set_policy("/", name, pattern, definition, priority, apply_to)
    time.sleep(REAL_APPLY_WAIT if broker.kind == "real" else 0)
    try:
        yield
    finally:
        broker.clear_policy("/", name)
        time.sleep(REAL_APPLY_WAIT if broker.kind == "real" else 0)


def depth(ch, queue: str) -> int:
    return ch.queue_declare(queue, passive=True).method.message_count


def settle(ch, queue: str, want: int, seconds: float = 5.0) -> int:
    """RabbitMQ applies a policy asynchronously: look until it shows (bounded)."""
    deadline = time.monotonic() + seconds
    while (got := depth(ch, queue)) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def test_a_max_length_policy_trims_existing_and_new_queues(broker, uid):
    conn, ch = connect(broker)
    ch.confirm_delivery()
    old, strict = f"pol-old-{uid}", f"pol-strict-{uid}"
    ch.queue_declare(old)
    ch.queue_declare(strict, arguments={"x-max-length": 1})
    for n in range(5):
        ch.basic_publish("", old, b"%d" % n)
    with policy(broker, f"cap-{uid}", f"^pol-.*-{uid}$", {"max-length": 3}, priority=1):
        assert settle(ch, old, 3) == 3  # drop-head: the three newest stay
        assert drain(ch, old) == [b"2", b"3", b"4"]
        for n in range(3):
            ch.basic_publish("", strict, b"%d" % n)
        assert depth(ch, strict) == 1, "the argument is stricter than the policy"
        new = f"pol-new-{uid}"
        ch.queue_declare(new)
        for n in range(5):
            ch.basic_publish("", new, b"%d" % n)
        assert depth(ch, new) == 3
    for _ in range(4):
        ch.basic_publish("", old, b"x")
    assert depth(ch, old) == 4, "no cap once the policy is cleared"
    for queue in (old, strict, f"pol-new-{uid}"):
        ch.queue_delete(queue)
    conn.close()


def test_a_dead_letter_policy_yields_to_the_queues_own_argument(broker, uid):
    conn, ch = connect(broker)
    ch.confirm_delivery()
    by_policy, by_arg = f"dlp-{uid}", f"dla-{uid}"
    ch.queue_declare(f"dead-policy-{uid}")
    ch.queue_declare(f"dead-arg-{uid}")
    definition = {"dead-letter-exchange": "", "dead-letter-routing-key": f"dead-policy-{uid}"}
    with policy(broker, f"dl-{uid}", f"^dl[pa]-{uid}$", definition):
        ch.queue_declare(by_policy)
        ch.queue_declare(
            by_arg,
            arguments={
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": f"dead-arg-{uid}",
            },
        )
        time.sleep(REAL_APPLY_WAIT if broker.kind == "real" else 0)  # to the new queues
        for queue in (by_policy, by_arg):
            ch.basic_publish("", queue, queue.encode())
            method, _, _ = ch.basic_get(queue)
            ch.basic_reject(method.delivery_tag, requeue=False)
        assert settle(ch, f"dead-policy-{uid}", 1) == 1
        assert settle(ch, f"dead-arg-{uid}", 1) == 1
        assert drain(ch, f"dead-policy-{uid}") == [by_policy.encode()]
        assert drain(ch, f"dead-arg-{uid}") == [by_arg.encode()]
    for queue in (by_policy, by_arg, f"dead-policy-{uid}", f"dead-arg-{uid}"):
        ch.queue_delete(queue)
    conn.close()


def test_an_alternate_exchange_policy_catches_what_nothing_routes(broker, uid):
    conn, ch = connect(broker)
    ch.confirm_delivery()
    main, spill = f"ae-main-{uid}", f"ae-spill-{uid}"
    ch.exchange_declare(main, "direct")
    ch.exchange_declare(spill, "fanout")
    ch.queue_declare(f"ae-caught-{uid}")
    ch.queue_bind(f"ae-caught-{uid}", spill)
    with policy(broker, f"ae-{uid}", f"^{main}$", {"alternate-exchange": spill}, 0, "exchanges"):
        ch.basic_publish(main, "nobody-binds-this", b"stray")
        assert settle(ch, f"ae-caught-{uid}", 1) == 1
    for name in (main, spill):
        ch.exchange_delete(name)
    ch.queue_delete(f"ae-caught-{uid}")
    conn.close()
