"""Exchanges and routing, against the simulated node and a real RabbitMQ (pika, kombu)."""

from __future__ import annotations

import kombu
import pytest

from tests.conformance.helpers import channel_error, connect, connection_error, drain


@pytest.fixture
def ch(broker):
    conn, channel = connect(broker)
    yield channel
    if conn.is_open:
        conn.close()


def bound_queue(ch, exchange: str, key: str = "", arguments=None) -> str:
    name = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(name, exchange, key, arguments=arguments)
    return name


def test_direct_fanout_and_default_exchange(ch, uid):
    ch.exchange_declare(f"d-{uid}", "direct", auto_delete=True)
    ch.exchange_declare(f"f-{uid}", "fanout", auto_delete=True)
    red = bound_queue(ch, f"d-{uid}", "red")
    fan1, fan2 = bound_queue(ch, f"f-{uid}"), bound_queue(ch, f"f-{uid}")
    ch.basic_publish(f"d-{uid}", "red", b"r")
    ch.basic_publish(f"d-{uid}", "blue", b"b")
    ch.basic_publish(f"f-{uid}", "ignored", b"f")
    ch.basic_publish("", red, b"by-name")
    assert drain(ch, red) == [b"r", b"by-name"]
    assert drain(ch, fan1) == drain(ch, fan2) == [b"f"]


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("a.*.c", ["a.b.c"]),
        ("a.#", ["a", "a.b", "a.b.c", "a.c"]),
        ("#", ["a", "a.b", "a.b.c", "x.y", "", "c", "a.c"]),
        ("*", ["a", "c"]),
        ("#.c", ["a.b.c", "c", "a.c"]),
        ("a.#.c", ["a.b.c", "a.c"]),
    ],
)
def test_topic_matching(ch, uid, pattern, matches):
    ex = f"t-{uid}"
    ch.exchange_declare(ex, "topic", auto_delete=True)
    q = bound_queue(ch, ex, pattern)
    keys = ["a", "a.b", "a.b.c", "x.y", "", "c", "a.c"]
    for key in keys:
        ch.basic_publish(ex, key, key.encode())
    assert sorted(drain(ch, q)) == sorted(k.encode() for k in matches)


def test_headers_exchange_all_and_any(ch, uid):
    ex = f"h-{uid}"
    ch.exchange_declare(ex, "headers", auto_delete=True)
    q_all = bound_queue(ch, ex, arguments={"x-match": "all", "a": 1, "b": "x"})
    q_any = bound_queue(ch, ex, arguments={"x-match": "any", "a": 1, "b": "x"})
    import pika

    for name, headers in (("both", {"a": 1, "b": "x"}), ("one", {"a": 1}), ("none", {"c": 1})):
        ch.basic_publish(ex, "", name.encode(), pika.BasicProperties(headers=headers))
    assert drain(ch, q_all) == [b"both"]
    assert drain(ch, q_any) == [b"both", b"one"]


def test_exchange_to_exchange_bindings(ch, uid):
    ch.exchange_declare(f"src-{uid}", "fanout")
    ch.exchange_declare(f"dst-{uid}", "topic", auto_delete=True)
    ch.exchange_bind(f"dst-{uid}", f"src-{uid}")
    q = bound_queue(ch, f"dst-{uid}", "a.*")
    ch.basic_publish(f"src-{uid}", "a.b", b"through")
    ch.basic_publish(f"src-{uid}", "z", b"filtered")
    assert drain(ch, q) == [b"through"]
    ch.exchange_unbind(f"dst-{uid}", f"src-{uid}")
    ch.basic_publish(f"src-{uid}", "a.b", b"unbound")
    assert drain(ch, q) == []
    ch.exchange_delete(f"src-{uid}")


def test_reserved_names_and_the_default_exchange(broker, uid):
    conn, ch = connect(broker)
    assert channel_error(ch.exchange_declare, "amq.foo", "direct") == (
        403,
        "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'",
    )
    ch = conn.channel()
    assert channel_error(ch.queue_bind, "whatever", "", "k")[0] in (403, 404)
    ch = conn.channel()
    ch.exchange_declare("amq.direct", "direct", durable=True)  # existing: only compared
    assert channel_error(ch.exchange_declare, "amq.direct", "fanout", durable=True)[0] == 406
    conn.close()


def test_passive_declare_and_inequivalent_type(broker, uid):
    conn, ch = connect(broker)
    assert channel_error(ch.exchange_declare, f"none-{uid}", passive=True) == (
        404,
        f"NOT_FOUND - no exchange 'none-{uid}' in vhost '/'",
    )
    ch = conn.channel()
    ch.exchange_declare(f"typed-{uid}", "direct", auto_delete=True)
    code, text = channel_error(ch.exchange_declare, f"typed-{uid}", "fanout", auto_delete=True)
    assert code == 406
    assert text == (
        f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'typed-{uid}' in vhost "
        "'/': received 'fanout' but current is 'direct'"
    )
    ch = conn.channel()
    assert connection_error(conn, ch.exchange_declare, f"bad-{uid}", "nonsense") == (
        503,
        "COMMAND_INVALID - unknown exchange type 'nonsense'",
    )


def test_publish_to_a_missing_exchange_closes_the_channel(broker, uid):
    conn, ch = connect(broker)
    ch.basic_publish(f"ghost-{uid}", "k", b"x")
    assert channel_error(ch.queue_declare, "", exclusive=True) == (
        404,
        f"NOT_FOUND - no exchange 'ghost-{uid}' in vhost '/'",
    )
    conn.close()


def test_internal_exchange_refuses_publishes_but_routes_from_exchanges(broker, uid):
    conn, ch = connect(broker)
    ch.exchange_declare(f"inner-{uid}", "fanout", internal=True, auto_delete=True)
    ch.exchange_declare(f"outer-{uid}", "fanout", auto_delete=True)
    ch.exchange_bind(f"inner-{uid}", f"outer-{uid}")
    q = bound_queue(ch, f"inner-{uid}")
    ch.basic_publish(f"outer-{uid}", "", b"via-outer")
    assert drain(ch, q) == [b"via-outer"]
    ch.basic_publish(f"inner-{uid}", "", b"direct")
    assert channel_error(ch.queue_declare, "", exclusive=True) == (
        403,
        f"ACCESS_REFUSED - cannot publish to internal exchange 'inner-{uid}' in vhost '/'",
    )
    conn.close()


def test_delete_if_unused_and_auto_delete(broker, uid):
    conn, ch = connect(broker)
    ch.exchange_declare(f"used-{uid}", "fanout")
    q = bound_queue(ch, f"used-{uid}")
    assert channel_error(ch.exchange_delete, f"used-{uid}", if_unused=True) == (
        406,
        f"PRECONDITION_FAILED - exchange 'used-{uid}' in vhost '/' in use",
    )
    ch = conn.channel()
    ch.exchange_declare(f"auto-{uid}", "fanout", auto_delete=True)
    ch.queue_bind(q, f"auto-{uid}")
    ch.queue_unbind(q, f"auto-{uid}")
    assert channel_error(ch.exchange_declare, f"auto-{uid}", passive=True)[0] == 404
    ch = conn.channel()
    ch.exchange_delete(f"used-{uid}")
    ch.exchange_delete(f"never-existed-{uid}")  # deleting a missing exchange succeeds
    conn.close()


def test_kombu_fanout_broadcast(broker, uid):
    with kombu.Connection(broker.url) as conn:
        ex = kombu.Exchange(f"bcast-{uid}", "fanout", auto_delete=True)
        queues = [kombu.Queue(f"bc{i}-{uid}", ex, auto_delete=True) for i in range(3)]
        conn.Producer().publish("hello", exchange=ex, declare=queues)
        for queue in queues:
            bound = queue(conn.default_channel)
            message = bound.get(no_ack=True)
            assert message.payload == "hello"
            bound.delete()
