"""Direct reply-to and confirmed publishes across node faults, with real clients (kombu,
pika) on the live driver.

A reply has no queue to wait in: when the requesting channel's node dies the reply is
dropped (RabbitMQ: rabbit_channel:deliver_reply finds no running node for the pid's hash;
a mandatory reply is returned, as every mandatory reply is). An RPC client must therefore
time out; here kombu's ``drain_events(timeout=...)`` does, and the next call over the
reconnected client works. A confirmed publish to a durable classic queue whose home node
is down is nacked (rabbit_classic_queue: the monitor of a pid on a down node fires at once
with ``noconnection``), a transient one is gone with its node, so a mandatory publish is
returned. A single real node can show none of this; the fidelity checks of the same
features on one node are in tests/conformance/test_routing_features.py.
"""

from __future__ import annotations

import time

import kombu
import pika
import pika.exceptions
import pytest

from broker_sim import SimCluster

REPLY_TO = "amq.rabbitmq.reply-to"


@pytest.fixture
def cluster():
    with SimCluster(nodes=3, seed=5) as c:  # of 2, pause_minority stops the survivor too
        yield c


def pika_conn(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


def take_request(ch, queue: str, seconds: float = 5.0):
    """The next request waiting in ``queue`` (basic.get, bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            return props, body
        time.sleep(0.02)
    raise AssertionError(f"no request arrived in {queue!r}")


class KombuRequester:
    """An RPC client as kombu users write one: the reply consumer and the producer share
    the connection's default channel (direct reply-to requires it); ``call`` waits with a
    deadline and returns None when it passes."""

    def __init__(self, url: str) -> None:
        self.conn = kombu.Connection(url, connect_timeout=5)
        self.conn.ensure_connection(max_retries=1)
        self.replies: dict[str, bytes] = {}
        self.consumer = kombu.Consumer(
            self.conn,
            queues=[kombu.Queue(REPLY_TO, no_declare=True)],
            no_ack=True,
            on_message=lambda m: self.replies.setdefault(m.properties["correlation_id"], m.body),
            accept=["application/data"],
        )
        self.consumer.consume()
        self.producer = kombu.Producer(self.conn)

    def send(self, correlation_id: str, body: bytes = b"request") -> None:
        self.producer.publish(
            body, routing_key="rpc", reply_to=REPLY_TO, correlation_id=correlation_id
        )

    def wait(self, correlation_id: str, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            if correlation_id in self.replies:
                return self.replies[correlation_id]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                self.conn.drain_events(timeout=remaining)
            except TimeoutError:  # socket.timeout: nothing came
                return None
        return None

    def close(self) -> None:
        try:
            self.conn.release()
        except OSError:
            pass


def test_a_reply_to_a_dead_node_is_dropped_and_the_kombu_client_times_out(cluster):
    url1, url2, _ = cluster.urls
    worker = pika_conn(url1)
    wch = worker.channel()
    wch.queue_declare("rpc", durable=True)  # a classic queue on node1
    wch.confirm_delivery()

    requester = KombuRequester(url2)
    requester.send("c1")
    props, body = take_request(wch, "rpc")
    assert body == b"request" and props.reply_to.startswith(REPLY_TO + ".")
    old_token = props.reply_to

    cluster.kill("node2")  # the requesting channel's node: its reply consumer is gone
    started = time.monotonic()
    with pytest.raises((OSError, kombu.exceptions.OperationalError)):
        requester.wait("c1", timeout=5)
    assert time.monotonic() - started < 4, "the reset is seen at once"
    requester.close()

    # the worker replies anyway: no queue holds it; mandatory, it comes back; never an error
    wch.basic_publish("", old_token, b"reply c1", pika.BasicProperties(correlation_id="c1"))
    with pytest.raises(pika.exceptions.UnroutableError):
        wch.basic_publish("", old_token, b"reply c1", mandatory=True)
    assert wch.is_open

    # the client fails over to node1; its pending call has no reply to wait for
    requester = KombuRequester(url1)
    started = time.monotonic()
    assert requester.wait("c1", timeout=1.0) is None
    assert 0.9 <= time.monotonic() - started < 3, "a clean timeout, not a hang"

    requester.send("c2")  # the next call, with the new consumer's reply queue, works
    props, _ = take_request(wch, "rpc")
    assert props.reply_to != old_token
    wch.basic_publish("", props.reply_to, b"reply c2", pika.BasicProperties(correlation_id="c2"))
    assert requester.wait("c2", timeout=5) == b"reply c2"

    cluster.start_node("node2")  # back, but the old channel is not
    with pytest.raises(pika.exceptions.UnroutableError):
        wch.basic_publish("", old_token, b"late", mandatory=True)
    wch.basic_publish("", old_token, b"late", pika.BasicProperties(correlation_id="c1"))
    assert requester.wait("c1", timeout=0.5) is None, "a late reply finds nobody"
    requester.close()
    worker.close()


def test_a_reply_from_a_dead_workers_node_never_arrives_and_the_pika_client_times_out(cluster):
    """The other way round: the worker's node dies before it replies. The requester on the
    surviving node keeps its connection and its reply consumer, and gives up by deadline."""
    url1, url2, _ = cluster.urls
    setup = pika_conn(url1)
    setup.channel().queue_declare("rpc", durable=True)
    requester = pika_conn(url2)
    rch = requester.channel()
    replies = []
    rch.basic_consume(REPLY_TO, lambda _c, _m, _p, body: replies.append(body), auto_ack=True)
    props = pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c1")
    rch.basic_publish("", "rpc", b"request", props)
    cluster.kill("node1")
    started = time.monotonic()
    for _ in range(200):
        if replies or time.monotonic() - started > 1.0:
            break
        requester.process_data_events(time_limit=0.05)
    assert replies == [] and requester.is_open and rch.is_open
    assert time.monotonic() - started < 3
    requester.close()


def test_confirms_for_a_queue_whose_home_node_is_down(cluster):
    url1, url2, _ = cluster.urls
    owner = pika_conn(url1)
    och = owner.channel()
    och.queue_declare("durable-q", durable=True)
    och.queue_declare("transient-q", durable=False)
    publisher = pika_conn(url2)
    ch = publisher.channel()
    ch.confirm_delivery()
    ch.basic_publish("", "durable-q", b"before", mandatory=True)

    cluster.kill("node1")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", "durable-q", b"while down", mandatory=True)
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("", "transient-q", b"its queue died with node1", mandatory=True)
    assert ch.is_open

    cluster.start_node("node1")
    ch.basic_publish("", "durable-q", b"after", mandatory=True)
    assert cluster.queue_depth("durable-q") == 1, "the transient 'before' died in the crash"
    publisher.close()
