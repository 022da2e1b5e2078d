"""Connection-level behaviour: handshake, auth, vhosts, tuning, heartbeats, alarms."""

from __future__ import annotations

import time

import amqp.exceptions
import kombu
import pika
import pika.exceptions
import pytest
from pamqp import commands as C

from tests.conformance.helpers import connect, wait_until
from tests.conformance.wire import PROTOCOL_HEADER, RawClient

CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


def test_server_properties_and_tune(broker):
    client = RawClient(broker.host, broker.port)
    try:
        client.send(PROTOCOL_HEADER)
        start = client.next_method()
        assert (start.version_major, start.version_minor) == (0, 9)
        props = start.server_properties
        assert props["product"] == "RabbitMQ" and props["version"]
        assert all(props["capabilities"][cap] is True for cap in CAPABILITIES)
        assert set(start.mechanisms.split()) == {"PLAIN", "AMQPLAIN"}
        assert start.locales == "en_US"
        client.send_frames(
            0,
            C.Connection.StartOk(
                client_properties={}, mechanism="PLAIN", response="\0guest\0guest"
            ),
        )
        tune = client.next_method()
        assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 60)
    finally:
        client.close()


def test_kombu_sees_the_same_server(broker):
    with kombu.Connection(broker.url) as conn:
        conn.connect()
        props = conn.connection.server_properties
        assert props["capabilities"]["publisher_confirms"] is True


@pytest.mark.parametrize("login_method", ["PLAIN", "AMQPLAIN"])
def test_login_methods(broker, login_method):
    with kombu.Connection(broker.url, login_method=login_method) as conn:
        conn.connect()
        assert conn.connected


def test_unknown_user_and_wrong_password_are_403(broker, uid):
    text = (
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
        "For details see the broker logfile."
    )
    for user, password in ((f"nobody-{uid}", "x"), ("guest", "wrong")):
        with kombu.Connection(broker.amqp_url(user, password)) as conn:
            with pytest.raises(amqp.exceptions.AccessRefused) as info:
                conn.connect()
            assert info.value.code == 403 and str(info.value.reply_text) == text
            assert (info.value.method_sig or (0, 0)) == (0, 0)


def test_vhost_permissions(broker, uid):
    user, vhost = f"u-{uid}", f"v-{uid}"
    broker.add_user(user, "pw")
    broker.add_vhost(vhost)
    try:
        with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as info:
            connect(broker, user, "pw", vhost)
        assert f"NOT_ALLOWED - access to vhost '{vhost}' refused for user '{user}'" in str(
            info.value
        )
        broker.set_permissions(user, vhost, configure="^own-.*", write=".*", read=".*")
        conn, ch = connect(broker, user, "pw", vhost)
        ch.queue_declare(f"own-{uid}")
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as denied:
            ch.queue_declare(f"other-{uid}")
        assert (denied.value.reply_code, denied.value.reply_text) == (
            403,
            f"ACCESS_REFUSED - access to queue 'other-{uid}' in vhost '{vhost}' refused "
            f"for user '{user}'",
        )
        conn.close()
    finally:
        broker.delete_vhost(vhost)
        broker.delete_user(user)


@pytest.mark.parametrize(("asked", "expected"), [(5, 5), (0, 0)])
def test_heartbeat_negotiation_follows_the_client(broker, asked, expected):
    params = pika.URLParameters(broker.url)
    params.heartbeat = asked
    conn = pika.BlockingConnection(params)
    assert conn._impl.params.heartbeat == expected
    conn.close()


def test_idle_client_with_heartbeats_stays_connected(broker):
    params = pika.URLParameters(broker.url)
    params.heartbeat = 1
    conn = pika.BlockingConnection(params)
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.2)
    assert conn.is_open
    conn.close()


def test_server_sends_heartbeats_and_drops_a_silent_client(broker):
    client = RawClient(broker.host, broker.port)
    try:
        client.handshake(heartbeat=1)
        beats = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and not client.eof:
            got = client.next_frame(timeout=0.5)
            if got is not None and type(got[1]).__name__ == "Heartbeat":
                beats += 1
        assert beats >= 1, "the server sends heartbeats to an idle client"
        assert client.eof, "a client that never sends a heartbeat is dropped"
    finally:
        client.close()


def test_memory_alarm_blocks_publishers(broker, uid):
    blocked, unblocked = [], []
    params = pika.URLParameters(broker.url)
    conn = pika.BlockingConnection(params)
    conn.add_on_connection_blocked_callback(lambda c, frame: blocked.append(frame.method.reason))
    conn.add_on_connection_unblocked_callback(lambda c, frame: unblocked.append(True))
    ch = conn.channel()
    q = f"alarm-{uid}"
    ch.queue_declare(q)
    try:
        broker.set_memory_alarm(True)
        conn.process_data_events(time_limit=0.3)
        assert blocked == [], "connection.blocked waits for the connection's next publish"
        ch.basic_publish("", q, b"held")
        deadline = time.monotonic() + 5
        while not blocked and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.1)
        assert blocked == ["low on memory"]
    finally:
        broker.set_memory_alarm(False)
    deadline = time.monotonic() + 5
    while not unblocked and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert unblocked
    assert ch.basic_get(q, auto_ack=True)[2] == b"held"
    ch.queue_delete(q)
    conn.close()


def test_publishes_made_during_an_alarm_wait_until_it_clears(broker, uid):
    """RabbitMQ stops reading a publishing connection while an alarm is on (rabbit_reader's
    ``blocked`` state): not even the publish that triggered connection.blocked is routed
    until the alarm clears; a connection that only consumes keeps working."""
    q = f"held-{uid}"
    pub, ch = connect(broker)
    watcher, wch = connect(broker)
    ch.queue_declare(q)
    ch.basic_publish("", q, b"before")
    try:
        broker.set_memory_alarm(True)
        for i in range(3):
            ch.basic_publish("", q, b"during-%d" % i)
        pub.process_data_events(time_limit=1.0)
        assert wch.queue_declare(q, passive=True).method.message_count == 1
        assert wch.basic_get(q, auto_ack=True)[2] == b"before", "consumers are not blocked"
        pub.process_data_events(time_limit=0.5)
        assert wch.queue_declare(q, passive=True).method.message_count == 0
    finally:
        broker.set_memory_alarm(False)

    def depth() -> int:
        pub.process_data_events(time_limit=0.05)
        return wch.queue_declare(q, passive=True).method.message_count

    assert wait_until(lambda: depth() == 3, timeout=10)
    assert [wch.basic_get(q, auto_ack=True)[2] for _ in range(3)] == [
        b"during-0",
        b"during-1",
        b"during-2",
    ]
    wch.queue_delete(q)
    pub.close()
    watcher.close()
