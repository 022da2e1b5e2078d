"""Alternate exchanges, mandatory publishes on confirm channels and direct reply-to, each
body run against the simulated node and a real rabbitmq-server (3.10 here; the simulator
follows 3.13, which behaves the same in everything checked below).

What failover and RPC code leans on: an unroutable message reaches the alternate exchange
instead of vanishing, an unroutable mandatory publish is returned before it is confirmed
(pika's UnroutableError depends on that order), and a direct reply-to reply reaches the
requesting channel or nobody.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest
from pamqp import commands as C
from pamqp import header as H
from pamqp.body import ContentBody

from tests.conformance.helpers import channel_error, connect, connection_error
from tests.conformance.wire import RawClient

REPLY_TO = "amq.rabbitmq.reply-to"


def raw(broker) -> RawClient:
    client = RawClient(broker.host, broker.port)
    client.handshake()
    client.open_channel()
    return client


def rpc(client: RawClient, method, channel: int = 1):
    client.send_frames(channel, method)
    return client.next_method()


def raw_publish(client: RawClient, exchange: str, key: str, body: bytes, mandatory: bool):
    client.send_frames(
        1,
        C.Basic.Publish(exchange=exchange, routing_key=key, mandatory=mandatory),
        H.ContentHeader(0, len(body), C.Basic.Properties()),
        ContentBody(body),
    )


def methods_until(client: RawClient, done, limit: int = 200, timeout: float = 5.0) -> list:
    """Methods (content frames dropped) until ``done(methods)`` holds; bounded."""
    got: list = []
    deadline = time.monotonic() + timeout
    for _ in range(limit):
        if done(got) or time.monotonic() > deadline:
            break
        frame = client.next_frame(timeout=max(0.05, deadline - time.monotonic()))
        if frame is None:
            break
        value = frame[1]
        if isinstance(value, (H.ContentHeader, ContentBody)):
            continue
        if type(value).__name__ != "Heartbeat":
            got.append(value)
    return got


def pump(conn, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)


def get_body(ch, queue: str):
    method, _props, body = ch.basic_get(queue, auto_ack=True)
    return None if method is None else (method.exchange, method.routing_key, body)


# -- alternate exchanges ------------------------------------------------------------------


def test_an_unroutable_message_goes_to_the_alternate_exchange(broker, uid):
    """rabbit_exchange:route1: no binding matched, so the alternate routes it; a mandatory
    publish that an alternate delivered is neither returned nor nacked."""
    conn, ch = connect(broker)
    ch.confirm_delivery()
    ch.exchange_declare(f"ae-{uid}", "fanout", auto_delete=True)
    ch.exchange_declare(
        f"x-{uid}", "direct", auto_delete=True, arguments={"alternate-exchange": f"ae-{uid}"}
    )
    ch.queue_declare(f"kept-{uid}", exclusive=True)
    ch.queue_declare(f"caught-{uid}", exclusive=True)
    ch.queue_bind(f"kept-{uid}", f"x-{uid}", "k")
    ch.queue_bind(f"caught-{uid}", f"ae-{uid}")
    ch.basic_publish(f"x-{uid}", "k", b"routed", mandatory=True)
    ch.basic_publish(f"x-{uid}", "other", b"unroutable", mandatory=True)
    assert get_body(ch, f"kept-{uid}") == (f"x-{uid}", "k", b"routed")
    assert get_body(ch, f"caught-{uid}") == (f"x-{uid}", "other", b"unroutable")
    assert get_body(ch, f"caught-{uid}") is None, "a routed message never reaches the AE"
    conn.close()


def test_alternates_chain_and_cycles_or_missing_alternates_route_nowhere(broker, uid):
    conn, ch = connect(broker)
    ch.confirm_delivery()

    def x(name, kind="direct", ae=None, internal=False):
        args = {"alternate-exchange": f"{ae}-{uid}"} if ae else None
        ch.exchange_declare(f"{name}-{uid}", kind, auto_delete=True, internal=internal,
                            arguments=args)  # fmt: skip

    x("last", "fanout", internal=True)  # an internal exchange may be an alternate
    x("middle", "direct", ae="last")
    x("first", "topic", ae="middle")
    x("c1", ae="c2")
    x("c2", ae="c1")
    x("selfish", ae="selfish")
    x("orphan", ae="never-declared")
    ch.queue_declare(f"mq-{uid}", exclusive=True)
    ch.queue_declare(f"lq-{uid}", exclusive=True)
    ch.queue_bind(f"mq-{uid}", f"middle-{uid}", "only")
    ch.queue_bind(f"lq-{uid}", f"last-{uid}")
    ch.basic_publish(f"first-{uid}", "only", b"to middle", mandatory=True)
    ch.basic_publish(f"first-{uid}", "zzz", b"to last", mandatory=True)
    assert get_body(ch, f"mq-{uid}") == (f"first-{uid}", "only", b"to middle")
    assert get_body(ch, f"lq-{uid}") == (f"first-{uid}", "zzz", b"to last")
    for name in ("c1", "selfish", "orphan"):
        with pytest.raises(pika.exceptions.UnroutableError):
            ch.basic_publish(f"{name}-{uid}", "k", name.encode(), mandatory=True)
    assert ch.is_open
    conn.close()


def test_a_bound_exchange_that_routes_nowhere_uses_its_own_alternate_only(broker, uid):
    """A binding to an exchange is a match: the source's alternate is not used; the bound
    exchange, finding no match, hands over to *its* alternate if it has one."""
    conn, ch = connect(broker)
    ch.confirm_delivery()
    ae = {"alternate-exchange": f"ae-{uid}"}
    ch.exchange_declare(f"ae-{uid}", "fanout", auto_delete=True)
    ch.exchange_declare(f"up-{uid}", "direct", auto_delete=True, arguments=ae)
    ch.exchange_declare(f"down-{uid}", "direct", auto_delete=True)
    ch.exchange_declare(f"down-ae-{uid}", "direct", auto_delete=True, arguments=ae)
    ch.exchange_bind(f"down-{uid}", f"up-{uid}", "plain")
    ch.exchange_bind(f"down-ae-{uid}", f"up-{uid}", "with-ae")
    ch.queue_declare(f"caught-{uid}", exclusive=True)
    ch.queue_bind(f"caught-{uid}", f"ae-{uid}")
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(f"up-{uid}", "plain", b"lost", mandatory=True)
    ch.basic_publish(f"up-{uid}", "with-ae", b"down's ae", mandatory=True)
    ch.basic_publish(f"up-{uid}", "nothing", b"up's ae", mandatory=True)
    assert get_body(ch, f"caught-{uid}")[2] == b"down's ae"
    assert get_body(ch, f"caught-{uid}")[2] == b"up's ae"
    assert get_body(ch, f"caught-{uid}") is None
    conn.close()


def test_a_dead_lettered_message_follows_the_dlx_alternate(broker, uid):
    conn, ch = connect(broker)
    ch.exchange_declare(f"dae-{uid}", "fanout", auto_delete=True)
    ch.exchange_declare(
        f"dlx-{uid}", "direct", auto_delete=True, arguments={"alternate-exchange": f"dae-{uid}"}
    )
    ch.queue_declare(f"dead-{uid}", exclusive=True)
    ch.queue_bind(f"dead-{uid}", f"dae-{uid}")
    ch.queue_declare(
        f"work-{uid}", exclusive=True, arguments={"x-dead-letter-exchange": f"dlx-{uid}"}
    )
    ch.basic_publish("", f"work-{uid}", b"poison")
    method, _, _ = ch.basic_get(f"work-{uid}")
    ch.basic_reject(method.delivery_tag, requeue=False)
    deadline = time.monotonic() + 5
    got = None
    while got is None and time.monotonic() < deadline:
        got = get_body(ch, f"dead-{uid}")
    assert got == (f"dlx-{uid}", f"work-{uid}", b"poison")
    conn.close()


def test_redeclaring_with_another_alternate_exchange_is_406(broker, uid):
    """rabbit_exchange:assert_args_equivalence compares alternate-exchange only; the texts
    are rabbit_misc's (a value missing on one side shows the other's type)."""
    conn, ch = connect(broker)
    name, plain = f"eq-{uid}", f"plain-{uid}"
    ch.exchange_declare(name, "direct", auto_delete=True, arguments={"alternate-exchange": "a1"})
    ch.exchange_declare(plain, "direct", auto_delete=True)
    ch.exchange_declare(
        name, "direct", auto_delete=True, arguments={"alternate-exchange": "a1", "other": 1}
    )
    prefix = "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange"
    cases = [
        (name, {"alternate-exchange": "a2"}, "received 'a2' but current is 'a1'"),
        (name, None, "received none but current is the value 'a1' of type 'longstr'"),
        (name, {"alternate-exchange": 5}, "received '5' but current is 'a1'"),
        (plain, {"alternate-exchange": "a1"},
         "received the value 'a1' of type 'longstr' but current is none"),
    ]  # fmt: skip
    for target, args, detail in cases:
        got = channel_error(ch.exchange_declare, target, "direct", auto_delete=True, arguments=args)
        assert got == (406, f"{prefix} '{target}' in vhost '/': {detail}")
        ch = conn.channel()
    for value, kind in ((5, "signedint"), (True, "bool"), (b"a1", "binary")):
        got = channel_error(
            ch.exchange_declare, f"bad-{uid}", "direct", arguments={"alternate-exchange": value}
        )
        assert got == (
            406,
            f"PRECONDITION_FAILED - invalid type '{kind}' for arg 'alternate-exchange' in "
            f"exchange 'bad-{uid}' in vhost '/'",
        )
        ch = conn.channel()
    conn.close()


def test_declaring_an_alternate_needs_read_on_the_exchange_and_write_on_the_alternate(broker, uid):
    user = f"ae-user-{uid}"
    broker.add_user(user, "pw")
    try:
        # (write, read, the exchange refused): write on the alternate, read on the exchange
        cases = ((f"^mine-{uid}$", ".*", "amq.fanout"), (".*", "^$", f"mine-{uid}"))
        for write, read, refused in cases:
            broker.set_permissions(user, "/", configure=".*", write=write, read=read)
            conn, ch = connect(broker, user, "pw")
            got = channel_error(
                ch.exchange_declare,
                f"mine-{uid}",
                "fanout",
                arguments={"alternate-exchange": "amq.fanout"},
            )
            assert got == (
                403,
                f"ACCESS_REFUSED - access to exchange '{refused}' in vhost '/' refused for "
                f"user '{user}'",
            )
            conn.close()
    finally:
        broker.delete_user(user)


# -- mandatory publishes and confirms -----------------------------------------------------


def test_an_unroutable_mandatory_publish_is_returned_before_its_ack(broker, uid):
    """rabbit_channel:deliver_to_queues: "basic.returns must be sent before confirms";
    unroutable is still a positive confirm. Each return precedes the ack that covers it
    (RabbitMQ may coalesce acks, as the simulator does per input batch)."""
    client = raw(broker)
    assert isinstance(rpc(client, C.Queue.Declare(queue=f"mq-{uid}", exclusive=True)),
                      C.Queue.DeclareOk)  # fmt: skip
    assert isinstance(rpc(client, C.Confirm.Select()), C.Confirm.SelectOk)
    plan = [("", "nowhere", True), ("", f"mq-{uid}", True), ("amq.direct", "x", True),
            ("", "nowhere", False), ("amq.topic", "x", True)]  # fmt: skip
    for exchange, key, mandatory in plan:
        raw_publish(client, exchange, key, b"m", mandatory)

    def all_acked(got):
        acks = [m.delivery_tag for m in got if isinstance(m, C.Basic.Ack)]
        return bool(acks) and max(acks) == len(plan)

    got = methods_until(client, all_acked)
    assert not any(isinstance(m, C.Basic.Nack) for m in got), got
    returns = [i for i, m in enumerate(got) if isinstance(m, C.Basic.Return)]
    assert [(got[i].reply_code, got[i].reply_text, got[i].exchange) for i in returns] == [
        (312, "NO_ROUTE", ""),
        (312, "NO_ROUTE", "amq.direct"),
        (312, "NO_ROUTE", "amq.topic"),
    ]
    acked_at = {}  # publish seq -> index of the ack covering it
    floor = 0
    for i, m in enumerate(got):
        if isinstance(m, C.Basic.Ack):
            top = m.delivery_tag
            for seq in range(floor + 1, top + 1) if m.multiple else [top]:
                acked_at[seq] = i
            floor = max(floor, top) if m.multiple else floor
    for seq, index in zip((1, 3, 5), returns, strict=True):
        assert index < acked_at[seq], f"publish {seq}: return after its ack: {got}"
    client.close()


def test_pika_raises_unroutable_error_for_a_returned_confirmed_publish(broker, uid):
    conn, ch = connect(broker)
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError) as info:
        ch.basic_publish("amq.direct", f"nobody-{uid}", b"lost", mandatory=True)
    (returned,) = info.value.messages
    assert (returned.method.reply_code, returned.method.reply_text) == (312, "NO_ROUTE")
    assert returned.body == b"lost"
    ch.basic_publish("amq.direct", f"nobody-{uid}", b"dropped", mandatory=False)
    assert ch.is_open
    conn.close()


def test_a_transaction_returns_its_unroutable_publishes_before_commit_ok(broker, uid):
    client = raw(broker)
    assert isinstance(rpc(client, C.Tx.Select()), C.Tx.SelectOk)
    raw_publish(client, "amq.direct", f"nobody-{uid}", b"m", True)
    client.send_frames(1, C.Tx.Commit())
    got = methods_until(client, lambda got: any(isinstance(m, C.Tx.CommitOk) for m in got))
    assert [type(m).__name__ for m in got] == ["Return", "CommitOk"]
    client.close()


# -- direct reply-to ----------------------------------------------------------------------


class Requester:
    """A pika RPC requester using direct reply-to (RabbitMQ docs' recipe)."""

    def __init__(self, broker) -> None:
        self.conn, self.ch = connect(broker)
        self.replies: list = []
        self.tag = self.ch.basic_consume(
            REPLY_TO, lambda _ch, m, p, b: self.replies.append((m, p, b)), auto_ack=True
        )

    def request(self, queue: str, body: bytes, correlation_id: str = "c1") -> None:
        props = pika.BasicProperties(reply_to=REPLY_TO, correlation_id=correlation_id)
        self.ch.basic_publish("", queue, body, props)

    def wait(self, count: int, seconds: float = 3.0) -> list:
        deadline = time.monotonic() + seconds
        while len(self.replies) < count and time.monotonic() < deadline:
            self.conn.process_data_events(time_limit=0.05)
        return self.replies


def test_direct_reply_to_round_trip(broker, uid):
    requester = Requester(broker)
    worker, wch = connect(broker)
    wch.queue_declare(f"rpc-{uid}", exclusive=True)
    requester.request(f"rpc-{uid}", b"ping")
    method, props, body = None, None, None
    deadline = time.monotonic() + 5
    while method is None and time.monotonic() < deadline:
        method, props, body = wch.basic_get(f"rpc-{uid}", auto_ack=True)
    assert body == b"ping"
    token = props.reply_to
    assert token.startswith(REPLY_TO + ".") and token.count(".") >= 4, token
    assert props.correlation_id == "c1", "the other properties are kept"
    declared = wch.queue_declare(token, passive=True).method
    assert (declared.queue, declared.message_count, declared.consumer_count) == (token, 0, 1)
    wch.basic_publish("", token, b"pong", pika.BasicProperties(correlation_id="c1"))
    wch.basic_publish("", token, b"pong 2", pika.BasicProperties(correlation_id="c1"))
    (m1, p1, b1), (m2, _, b2) = requester.wait(2)
    assert (b1, b2, p1.correlation_id) == (b"pong", b"pong 2", "c1")
    assert (m1.exchange, m1.routing_key, m1.consumer_tag) == ("", token, requester.tag)
    # rabbit_channel deliver_reply: a reply takes the channel's next tag without using it
    assert (m1.delivery_tag, m2.delivery_tag) == (1, 1)
    requester.ch.queue_declare(f"own-{uid}", exclusive=True)
    requester.ch.basic_publish("", f"own-{uid}", b"x")
    got, deadline = (None,), time.monotonic() + 5
    while got[0] is None and time.monotonic() < deadline:
        got = requester.ch.basic_get(f"own-{uid}", auto_ack=True)
    assert got[0].delivery_tag == 1
    requester.ch.basic_cancel(requester.tag)
    wch.basic_publish("", token, b"after cancel")
    assert channel_error(wch.queue_declare, token, passive=True) == (
        404,
        f"NOT_FOUND - no queue '{token}' in vhost '/'",
    )
    pump(requester.conn, 0.3)
    assert len(requester.replies) == 2, "a reply after basic.cancel reaches nobody"
    requester.conn.close()
    worker.close()


def test_the_reply_consumer_is_no_ack_and_one_per_channel(broker):
    conn, ch = connect(broker)
    assert channel_error(ch.basic_consume, REPLY_TO, lambda *a: None, auto_ack=False) == (
        406,
        "PRECONDITION_FAILED - reply consumer cannot acknowledge",
    )
    ch = conn.channel()
    ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    assert channel_error(ch.basic_consume, REPLY_TO, lambda *a: None, auto_ack=True) == (
        406,
        "PRECONDITION_FAILED - reply consumer already set",
    )
    conn.close()


def test_reply_to_the_pseudo_queue_needs_a_reply_consumer_on_that_channel(broker, uid):
    conn, ch = connect(broker)
    other = conn.channel()
    other.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)  # another channel's
    ch.confirm_delivery()
    props = pika.BasicProperties(reply_to=REPLY_TO)
    assert channel_error(ch.basic_publish, "amq.direct", f"k-{uid}", b"q", props) == (
        406,
        "PRECONDITION_FAILED - fast reply consumer does not exist",
    )
    conn.close()


def test_declaring_the_pseudo_queue_is_always_passive(broker, uid):
    """rabbit_channel: "all declares to these are effectively passive. If it exists it by
    definition has one consumer"."""
    conn, ch = connect(broker)
    for passive in (True, False):
        ok = ch.queue_declare(REPLY_TO, passive=passive).method
        assert (ok.queue, ok.message_count, ok.consumer_count) == (REPLY_TO, 0, 1)
    for name in (f"{REPLY_TO}x", f"{REPLY_TO}.garbage-{uid}"):
        assert channel_error(ch.queue_declare, name) == (
            404,
            f"NOT_FOUND - no queue '{name}' in vhost '/'",
        )
        ch = conn.channel()
    conn.close()


def test_a_mandatory_reply_is_returned_whether_or_not_it_was_delivered(broker, uid):
    """No queue receives a reply, so a mandatory one is returned (312) even when the
    requester got it; one sent through another exchange reaches nobody."""
    requester = Requester(broker)
    requester.ch.queue_declare(f"req-{uid}", exclusive=True)
    requester.request(f"req-{uid}", b"q")
    _, props, _ = requester.ch.basic_get(f"req-{uid}", auto_ack=True)
    token = props.reply_to
    worker, wch = connect(broker)
    wch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        wch.basic_publish("", token, b"delivered and returned", mandatory=True)
    with pytest.raises(pika.exceptions.UnroutableError):
        wch.basic_publish("amq.direct", token, b"via amq.direct", mandatory=True)
    got = [b for _, _, b in requester.wait(1)]
    pump(requester.conn, 0.3)
    assert got == [b"delivered and returned"]
    requester.ch.close()
    wch.basic_publish("", token, b"to a closed channel")  # dropped, confirmed
    with pytest.raises(pika.exceptions.UnroutableError):
        wch.basic_publish("", token, b"to a closed channel", mandatory=True)
    requester.conn.close()
    wch.basic_publish("", token, b"to a closed connection")
    assert wch.is_open
    worker.close()


def test_a_reply_key_rabbitmq_cannot_decode_crashes_the_channel(broker, uid):
    """A two-part suffix that is not a pid term: RabbitMQ's channel crashes in
    rabbit_direct_reply_to:decode_reply_to_v1 and the connection closes with 541."""
    conn, ch = connect(broker)
    ch.basic_publish("", f"{REPLY_TO}.abc.def{uid}", b"x")
    assert connection_error(conn, ch.queue_declare, "", exclusive=True) == (541, "INTERNAL_ERROR")


def test_a_reply_published_in_a_transaction_is_delivered_at_once(broker, uid):
    """rabbit_channel basic.publish delivers direct replies before it looks at the
    transaction: neither commit nor rollback has a say."""
    requester = Requester(broker)
    requester.ch.queue_declare(f"txq-{uid}", exclusive=True)
    requester.request(f"txq-{uid}", b"q")
    _, props, _ = requester.ch.basic_get(f"txq-{uid}", auto_ack=True)
    worker, wch = connect(broker)
    wch.tx_select()
    wch.basic_publish("", props.reply_to, b"uncommitted")
    assert [b for _, _, b in requester.wait(1)] == [b"uncommitted"]
    wch.tx_rollback()
    pump(requester.conn, 0.2)
    assert len(requester.replies) == 1
    requester.conn.close()
    worker.close()
