"""The bundled client's failover promises, each driven through a fault on ``SimCluster``
(real TCP) and, where the path exists there, in the virtual world (issue 10).

Each test failed before its fix: a retry policy's ``None`` means forever, the
ConsumerMixin stops and revives as kombu's does, ``ensure`` classifies errors as kombu's,
``heartbeat_check`` reads before it judges, heartbeats are negotiated as py-amqp does,
``Producer.publish`` takes kombu's keywords, a finite failover strategy ends in a
connection error, and a consumer whose declared queue is deleted gets it back.
"""

from __future__ import annotations

import inspect
import socket
import threading
import time

import kombu
import pytest
from pamqp import commands as C

from broker_sim import SimCluster
from broker_sim.drivers.virtual import START, World
from broker_sim.node import NodeConfig
from client import (
    Connection,
    Consumer,
    Exchange,
    OperationalError,
    Producer,
    Queue,
    binding,
    pools,
)
from client.errors import AccessRefused, NotFound, PreconditionFailed, ResourceLocked
from client.mixins import ConsumerMixin
from client.protocol import ClientProtocol
from client.runtime import RecordingRuntime
from tests.drain import drain_until

FOREVER = {"max_retries": None, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 1}


@pytest.fixture
def one_node():
    with SimCluster(nodes=1, seed=31) as c:
        yield c


@pytest.fixture
def cluster():
    with SimCluster(nodes=3, seed=32, election_timeout=0.3) as c:
        yield c


def outage(cluster: SimCluster, node: str, seconds: float) -> threading.Thread:
    """Stop ``node`` now and start it again ``seconds`` later, from a thread."""
    cluster.stop_node(node)
    thread = threading.Timer(seconds, cluster.start_node, args=(node,))
    thread.start()
    return thread


# -- 1. max_retries=None means forever -------------------------------------------------------


def test_a_publish_with_max_retries_none_waits_out_an_outage(one_node):
    with Connection(one_node.urls[0], transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn)
        queue = Queue("forever", routing_key="forever")
        producer.publish("first", routing_key="forever", declare=[queue])
        restart = outage(one_node, "node1", 3.0)
        started = time.monotonic()
        producer.publish("second", routing_key="forever", retry=True, retry_policy=FOREVER)
        assert time.monotonic() - started >= 2.5, "the publish waited for the broker"
        restart.join()
        got = [queue(conn.default_channel).get(no_ack=True).payload for _ in range(2)]
        assert got == ["first", "second"], "a durable queue kept both"


def test_ensure_with_max_retries_none_stops_at_its_own_timeout(one_node):
    conn = Connection(one_node.urls[0])
    conn.connect()
    one_node.stop_node("node1")
    started = time.monotonic()
    with pytest.raises(OperationalError):
        conn.ensure(
            conn,
            lambda: conn.default_channel.declare_queue(Queue("t"), False),
            timeout=1.5,
            **FOREVER,
        )()
    assert 1.0 <= time.monotonic() - started < 3.5
    conn.collect()


def test_a_producer_pool_of_two_serves_eight_threads_through_an_outage(one_node):
    url = one_node.urls[0]
    pools.set_limit(2)
    try:
        pool = pools.producers[Connection(url, transport_options={"confirm_publish": True})]
        with pool.acquire(block=True) as producer:
            Queue("pooled", routing_key="pooled").declare(producer.channel)
        errors: list[BaseException] = []
        done: list[int] = []

        def publish(n: int) -> None:
            try:
                with pool.acquire(block=True) as producer:
                    producer.publish(
                        {"n": n}, routing_key="pooled", retry=True, retry_policy=FOREVER
                    )
                done.append(n)
            except BaseException as exc:  # what a thread died of is the assertion
                errors.append(exc)

        restart = outage(one_node, "node1", 3.0)
        threads = [threading.Thread(target=publish, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        restart.join()
        assert errors == [] and sorted(done) == list(range(8))
        assert pool.used == 0 and len(pool.free) <= 2, "every producer went back"
        assert pool.connections.used == 0, "every producer's connection went back"
        assert one_node.queue_depth("pooled") == 8
    finally:
        pools.reset()
        pools.set_limit(10)


def test_in_the_world_a_publish_with_max_retries_none_waits_out_an_outage():
    world = World(seed=3)
    result = {}

    def publisher():
        conn = Connection(
            world.url(0), runtime=world.runtime, transport_options={"confirm_publish": True}
        )
        producer = Producer(conn)
        for n in range(20):
            producer.publish(
                {"n": n},
                routing_key="w",
                declare=[Queue("w", routing_key="w")],
                retry=True,
                retry_policy=FOREVER,
            )
            world.runtime.sleep(0.5)
        result["finished"] = world.runtime.monotonic()
        conn.collect()

    world.spawn("publisher", publisher)
    world.at(2.0, "stop", "node1")
    world.at(32.0, "start", "node1")  # a 30 s outage: 30 virtual seconds of retries
    world.run(until=600)
    assert "finished" in result
    oks = [d["id"] for _, kind, d in world.events if kind == "publish_ok"]
    assert len(oks) == 20
    assert world.cluster.vhosts["/"].queue("w").message_count == 20


# -- 2 and 3. ConsumerMixin: should_stop while reconnecting; on_connection_revived ----------


class Worker(ConsumerMixin):
    def __init__(self, connection, queue: Queue) -> None:
        self.connection, self.queue = connection, queue
        self.got: list = []
        self.revived = 0
        self.connection_errors_seen: list = []

    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        return [Consumer([self.queue], callbacks=[self.on_message])]

    def on_message(self, body, message) -> None:
        self.got.append(body)
        message.ack()

    def on_connection_revived(self) -> None:
        self.revived += 1

    def on_connection_error(self, exc, interval) -> None:
        self.connection_errors_seen.append((type(exc).__name__, interval))


def test_should_stop_is_honoured_while_the_mixin_reconnects(one_node):
    conn = Connection(one_node.urls[0], connect_timeout=1)
    worker = Worker(conn, Queue("stopq", routing_key="stopq"))
    worker.connect_max_retries = None
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while worker.revived == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    one_node.kill("node1")  # every node down: the mixin retries forever
    time.sleep(1.5)
    assert thread.is_alive() and worker.connection_errors_seen
    worker.should_stop = True
    stopped = time.monotonic()
    thread.join(timeout=8)
    assert not thread.is_alive(), "should_stop ignored while reconnecting"
    assert time.monotonic() - stopped < 2 + 1 + 0.5  # interval_max + connect_timeout


def test_on_connection_revived_is_called_once_per_revival(cluster):
    queue = Queue("revq", routing_key="revq", queue_arguments={"x-queue-type": "quorum"})
    conn = Connection(f"{cluster.urls[0]};{cluster.urls[1]}", heartbeat=2)
    worker = Worker(conn, queue)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    with Connection(cluster.urls[2]) as admin:
        producer = Producer(admin)
        producer.publish("a", routing_key="revq", declare=[queue])
        deadline = time.monotonic() + 5
        while not worker.got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.revived == 1, "kombu calls it on every connect, the first one too"
        cluster.kill("node1")
        producer.publish("b", routing_key="revq")
        deadline = time.monotonic() + 10
        while len(worker.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    worker.should_stop = True
    thread.join(timeout=5)
    assert worker.got == ["a", "b"]
    assert worker.revived == 2, "one call for the one revival"
    conn.collect()


def test_in_the_world_should_stop_ends_a_mixin_that_cannot_reconnect():
    world = World(seed=4)
    stopped = {}
    queue = Queue("wq", routing_key="wq")

    def worker():
        conn = Connection(world.url(0), runtime=world.runtime, connect_timeout=1)
        w = Worker(conn, queue)
        w.connect_max_retries = None

        def stop_later():
            world.runtime.sleep(20)
            w.should_stop = True
            stopped["asked"] = world.runtime.monotonic()

        world.spawn("stopper", stop_later)
        w.run()
        stopped["returned"] = world.runtime.monotonic()
        stopped["revived"] = w.revived
        conn.collect()

    world.spawn("worker", worker)
    world.at(1.0, "kill", "node1")
    world.run(until=600)
    assert stopped["returned"] - stopped["asked"] <= 2 + 1 + 0.01
    assert stopped["revived"] == 1


# -- 4. ensure retries recoverable channel errors, raises irrecoverable ones ----------------


def test_ensure_retries_a_405_resource_locked_without_reconnecting(one_node):
    owner = Connection(one_node.urls[0])
    Queue("locked", exclusive=True).declare(owner.default_channel)
    conn = Connection(one_node.urls[0])
    conn.connect()
    amqp_before = conn.connection
    calls, errbacks, recoveries = [], [], []
    conn.on("recovery_started", lambda *a: recoveries.append(a))

    def declare():
        calls.append(1)
        return Queue("locked", exclusive=False).declare(conn.default_channel)

    def errback(exc, interval):
        errbacks.append(type(exc))
        owner.close()  # the lock goes with its owner

    assert conn.ensure(conn, declare, errback=errback, max_retries=3, interval_start=0.05)()
    assert len(calls) == 2 and errbacks == [ResourceLocked]
    assert conn.connection is amqp_before and recoveries == []
    conn.close()


def test_ensure_gives_up_on_a_recoverable_channel_error_after_max_retries(one_node):
    owner = Connection(one_node.urls[0])
    Queue("locked2", exclusive=True).declare(owner.default_channel)
    conn = Connection(one_node.urls[0])
    calls = []

    def declare():
        calls.append(1)
        return Queue("locked2", exclusive=False).declare(conn.default_channel)

    with pytest.raises(OperationalError) as info:
        conn.ensure(conn, declare, max_retries=2, interval_start=0.01)()
    assert isinstance(info.value.__cause__, ResourceLocked) and len(calls) == 3
    owner.close()
    conn.close()


@pytest.mark.parametrize("code", [403, 404, 406])
def test_ensure_raises_irrecoverable_channel_errors_at_once_unchanged(one_node, code):
    node = one_node.nodes[0]
    node.add_user("limited", "pw")
    node.set_permissions("limited", "/", configure="^$", write="^$", read="^$")
    with Connection(one_node.urls[0]) as admin:
        Queue("ttlq", queue_arguments={"x-message-ttl": 10}).declare(admin.default_channel)
    conn = Connection(node.amqp_url("limited", "pw") if code == 403 else one_node.urls[0])
    attempts = {
        403: lambda channel: Queue("forbidden").declare(channel),
        404: lambda channel: channel.declare_queue(Queue("nope-404"), passive=True),
        406: lambda channel: Queue("ttlq", queue_arguments={"x-message-ttl": 20}).declare(channel),
    }
    calls = []

    def fail():
        calls.append(1)
        attempts[code](conn.default_channel)

    expected = {403: AccessRefused, 404: NotFound, 406: PreconditionFailed}[code]
    with pytest.raises(expected) as info:
        conn.ensure(conn, fail, max_retries=5, interval_start=0.01)()
    assert info.value.reply_code == code and len(calls) == 1
    conn.close()


# -- 5. heartbeat_check reads before it judges ----------------------------------------------


def test_heartbeat_check_alone_keeps_a_healthy_connection(one_node):
    conn = Connection(one_node.urls[0], heartbeat=1)
    conn.connect()
    deadline = time.monotonic() + 4  # four heartbeat intervals, the app never drains
    while time.monotonic() < deadline:
        conn.heartbeat_check()
        time.sleep(0.5)  # the recommended rate: heartbeat / 2
    assert conn.connected
    one_node.pause("node1")
    started = time.monotonic()
    with pytest.raises(conn.connection_errors):
        while time.monotonic() - started < 5:
            conn.heartbeat_check()
            time.sleep(0.25)
    assert time.monotonic() - started <= 2 * 1 + 0.6, "a dead broker is found within 2 x hb"
    conn.collect()
    one_node.resume("node1")


def test_in_the_world_heartbeat_check_alone_keeps_a_healthy_connection():
    world = World(seed=6)
    seen = {}

    def app():
        conn = Connection(world.url(0), heartbeat=10, runtime=world.runtime)
        conn.connect()
        for _ in range(120):  # 10 virtual minutes
            conn.heartbeat_check()
            world.runtime.sleep(5)
        seen["healthy"] = conn.connected
        world.pause("node1")
        started = world.runtime.monotonic()
        try:
            for _ in range(20):
                conn.heartbeat_check()
                world.runtime.sleep(5)
        except conn.connection_errors:
            seen["dead_after"] = world.runtime.monotonic() - started
        conn.collect()

    world.spawn("app", app)
    world.run(until=3600)
    assert seen["healthy"] is True
    assert seen["dead_after"] <= 2 * 10 + 5


# -- 6. heartbeat negotiation as py-amqp's _on_tune ------------------------------------------

#: (server's proposal, client's wish) -> what TuneOk carries (py-amqp Connection._on_tune):
#: the smaller non-zero value; a client that asks for None or 0 turns heartbeats off.
HEARTBEAT_MATRIX = {
    (0, None): 0,
    (0, 0): 0,
    (0, 30): 30,
    (0, 120): 120,
    (60, None): 0,
    (60, 0): 0,
    (60, 30): 30,
    (60, 120): 60,
}


@pytest.mark.parametrize(("server", "client"), sorted(HEARTBEAT_MATRIX, key=str))
def test_heartbeat_negotiation_matches_py_amqp(server, client):
    proto = ClientProtocol("guest", "guest", heartbeat=client)
    proto.initiate()
    proto.data_to_send()
    proto.state = "tune"
    proto.receive(_frame(C.Connection.Tune(channel_max=2047, frame_max=131072, heartbeat=server)))
    sent = proto.data_to_send()
    tune_ok = _first_method(sent)
    assert isinstance(tune_ok, C.Connection.TuneOk)
    assert tune_ok.heartbeat == proto.heartbeat == HEARTBEAT_MATRIX[(server, client)]


@pytest.mark.parametrize("server", [0, 60])
def test_heartbeat_negotiation_on_the_wire(server):
    config = NodeConfig(heartbeat=server)
    with SimCluster(nodes=1, config=config) as sim:
        for client, expected in [(0, 0), (30, 30), (120, 60 if server else 120)]:
            with Connection(sim.urls[0], heartbeat=client) as conn:
                conn.connect()
                assert conn.connection.proto.heartbeat == expected
                with kombu.Connection(sim.urls[0], heartbeat=client) as theirs:
                    theirs.connect()
                    assert theirs.connection.heartbeat == expected, "py-amqp agrees"


def _frame(method) -> bytes:
    from pamqp import frame as pframe

    return pframe.marshal(method, 0)


def _first_method(data: bytes):
    from pamqp import frame as pframe

    _, _, method = pframe.unmarshal(data)
    return method


# -- 7. Producer.publish takes every keyword kombu's does ------------------------------------


def _kombu_pairs():
    import kombu.mixins
    import kombu.resource
    import kombu.simple

    import client.mixins
    import client.pools
    import client.simple

    return [
        (kombu.Connection, client.Connection),
        (kombu.Producer, Producer),
        (kombu.Consumer, Consumer),
        (kombu.Queue, Queue),
        (kombu.Exchange, Exchange),
        (kombu.mixins.ConsumerMixin, client.mixins.ConsumerMixin),
        (kombu.simple.SimpleQueue, client.simple.SimpleQueue),
        (kombu.resource.Resource, client.pools.Resource),
    ]


#: kombu keywords that mean nothing here, each accepted through ``**kwargs`` or absent by
#: design: a pool's items are made by a callable here (no preload / fork handling).
NOT_MIRRORED = {("Resource", "__init__", "preload"), ("Resource", "__init__", "close_after_fork")}


def test_every_kombu_keyword_is_accepted():
    """The audit of issue 10: each public method kombu and the client share takes every
    keyword kombu's takes (Producer.publish's timeout and confirm_timeout among them)."""
    missing = []
    for theirs_cls, ours_cls in _kombu_pairs():
        for name, ours in inspect.getmembers(ours_cls, callable):
            theirs = getattr(theirs_cls, name, None)
            if (name.startswith("_") and name != "__init__") or not callable(theirs):
                continue
            try:
                ours_params = inspect.signature(ours).parameters
                theirs_params = inspect.signature(theirs).parameters
            except (TypeError, ValueError):
                continue
            if any(p.kind is p.VAR_KEYWORD for p in ours_params.values()):
                continue
            missing += [
                (ours_cls.__name__, name, param)
                for param, spec in theirs_params.items()
                if param not in ours_params
                and spec.kind not in (spec.VAR_KEYWORD, spec.VAR_POSITIONAL)
                and (ours_cls.__name__, name, param) not in NOT_MIRRORED
            ]
    assert missing == []


def test_queue_bindings_on_declared_and_simple_queue_args(one_node):
    declared = []
    with Connection(one_node.urls[0]) as conn:
        events = Exchange("events", "topic")
        queue = Queue(
            "multi",
            bindings=[binding(events, "a.*"), binding(events, "b.#")],
            on_declared=lambda *info: declared.append(info),
        )
        queue.declare(channel=conn.default_channel)
        assert declared == [("multi", 0, 0)]
        producer = Producer(conn, exchange=events)
        for key in ("a.x", "b.y.z", "c.q"):
            producer.publish(key, routing_key=key)
        assert one_node.queue_depth("multi") == 2
        simple = conn.SimpleQueue("capped", queue_args={"x-max-length": 1})
        simple.put("one")
        assert simple.get(timeout=2).payload == "one"
        assert one_node.cluster.vhosts["/"].queue("capped").arguments == {"x-max-length": 1}
        simple.close()


def test_in_the_world_untimed_waits_wait_past_an_hour_and_timed_ones_use_virtual_time():
    """drain_events() and SimpleQueue.get() without a timeout wait until a message comes
    (kombu's meaning; they stopped after an hour); a timed get ends on the world's clock."""
    world = World(seed=12)
    seen = {}

    def consumer():
        conn = Connection(world.url(0), runtime=world.runtime, heartbeat=30)
        queue = conn.SimpleQueue("later")
        started = world.runtime.monotonic()
        with pytest.raises(queue.Empty):
            queue.get(timeout=5)
        seen["timed"] = world.runtime.monotonic() - started
        seen["body"] = queue.get().payload
        seen["waited"] = world.runtime.monotonic() - started
        conn.collect()

    def late_producer():
        world.runtime.sleep(2 * 3600)
        conn = Connection(world.url(1), runtime=world.runtime)
        Producer(conn).publish("at last", routing_key="later")
        conn.collect()

    world.spawn("consumer", consumer)
    world.spawn("producer", late_producer)
    world.run(until=3 * 3600)
    assert 5 <= seen["timed"] < 5.1
    assert seen["body"] == "at last" and seen["waited"] >= 2 * 3600 - 1


def test_publish_timeout_bounds_a_publish_blocked_by_an_alarm(broker, uid):
    with Connection(broker.url, transport_options={"confirm_publish": True}) as conn:
        queue = Queue(f"alarm-{uid}", routing_key=f"alarm-{uid}", auto_delete=True)
        producer = Producer(conn)
        producer.publish("before", routing_key=queue.routing_key, declare=[queue], timeout=2)
        broker.set_memory_alarm(True)
        try:
            started = time.monotonic()
            with pytest.raises(socket.timeout):
                producer.publish("during", routing_key=queue.routing_key, timeout=2)
            assert 1.8 <= time.monotonic() - started <= 3.0
            assert conn.connection.blocked, "connection.blocked arrived meanwhile"
            started = time.monotonic()
            with pytest.raises(socket.timeout):  # now the client knows: it does not send
                producer.publish("during-2", routing_key=queue.routing_key, timeout=1)
            assert 0.8 <= time.monotonic() - started <= 2.0
        finally:
            broker.set_memory_alarm(False)
        channel = conn.default_channel.low
        assert channel.wait_for_confirms(10), "the held publish is confirmed after the clear"
        producer.publish("after", routing_key=queue.routing_key, timeout=5)
        got = [queue(conn.default_channel).get(no_ack=True).payload for _ in range(3)]
        assert got == ["before", "during", "after"]


def test_publish_confirm_timeout_and_kombu_keywords(one_node):
    with Connection(one_node.urls[0], transport_options={"confirm_publish": True}) as conn:
        queue = Queue("kw", routing_key="kw")
        producer = Producer(conn, compression=None)
        producer.publish(
            {"a": 1},
            routing_key="kw",
            declare=[queue],
            confirm_timeout=5,
            timeout=5,
            compression="zlib",
            immediate=False,
        )
        message = queue(conn.default_channel).get(no_ack=True)
        assert message.payload == {"a": 1}
        assert message.headers["compression"] == "application/x-gzip"
        one_node.pause("node1")
        started = time.monotonic()
        with pytest.raises(socket.timeout):
            producer.publish({"a": 2}, routing_key="kw", confirm_timeout=0.5)
        assert time.monotonic() - started < 1.5
        one_node.resume("node1")


# -- 8. a finite failover strategy ends in a connection error -------------------------------


def test_a_finite_failover_strategy_that_runs_out_raises_a_connection_error(one_node):
    one_node.kill("node1")
    dead = [one_node.urls[0], "amqp://guest:guest@127.0.0.1:1//"]
    conn = Connection(";".join(dead), failover_strategy=lambda hosts: iter(hosts[:1]))
    with pytest.raises(ConnectionError, match="no broker of the list answered") as info:
        conn.connect()
    assert "failover strategy" in str(info.value)
    with pytest.raises(OperationalError):
        conn.ensure_connection(max_retries=2, interval_start=0.01)
    with pytest.raises(ConnectionError, match="failover strategy .* no host"):
        Connection(dead[0], failover_strategy=lambda hosts: iter(())).connect()


# -- 9. a consumer whose declared queue is deleted gets it back -----------------------------


def test_a_consumer_gets_back_the_queue_it_declared_when_the_queue_is_deleted(one_node):
    events, got = [], []
    conn = Connection(one_node.urls[0])
    conn.on("consumer_recovered", lambda tag, queue: events.append(("recovered", queue)))
    exchange = Exchange("orders", "direct")
    queue = Queue("mine", exchange, routing_key="new", queue_arguments={"x-max-length": 5})
    consumer = Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())])
    consumer.consume()
    with Connection(one_node.urls[0]) as admin:
        queue(admin.default_channel).delete()
        assert drain_until(conn, lambda: events, 5), "the client re-declared its queue"
        Producer(admin, exchange=exchange).publish("again", routing_key="new")
    assert drain_until(conn, lambda: got, 5)
    assert got == ["again"], "the binding came back with the queue"
    vq = one_node.cluster.vhosts["/"].queue("mine")
    assert vq.arguments.get("x-max-length") == 5
    conn.collect()


def test_a_queue_the_app_did_not_declare_is_awaited_not_recreated(one_node):
    events = []
    with Connection(one_node.urls[0]) as admin:
        Queue("theirs", routing_key="theirs").declare(admin.default_channel)
    conn = Connection(one_node.urls[0])
    conn.on("consumer_cancelled", lambda tag, queue: events.append(("cancelled", queue)))
    consumer = Consumer(conn, [Queue("theirs")], auto_declare=False, callbacks=[print])
    consumer.consume()
    with Connection(one_node.urls[0]) as admin:
        Queue("theirs")(admin.default_channel).delete()
        drain_until(conn, lambda: events, 3)
        drain_until(conn, lambda: False, 1.5)
        with pytest.raises(NotFound):
            Queue("theirs")(admin.default_channel).queue_declare(passive=True)
    assert events == [("cancelled", "theirs")]
    conn.collect()


def test_in_the_world_a_deleted_queue_is_redeclared_and_consumed_again():
    world = World(seed=9)
    got = []
    queue = Queue("wdel", routing_key="wdel")

    def consumer():
        conn = Connection(world.url(0), runtime=world.runtime)
        Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]).consume()
        for _ in range(100):
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                pass
            if len(got) == 2:
                break
        conn.collect()

    def admin():
        conn = Connection(world.url(1), runtime=world.runtime)
        producer = Producer(conn)
        world.runtime.sleep(1)
        producer.publish(1, routing_key="wdel")
        world.runtime.sleep(1)
        conn.default_channel.delete_queue("wdel")
        world.runtime.sleep(3)
        producer.publish(2, routing_key="wdel")
        conn.collect()

    world.spawn("consumer", consumer)
    world.spawn("admin", admin)
    world.run(until=300)
    assert got == [1, 2]


def test_in_the_world_an_alarm_holds_a_publisher_until_it_clears():
    world = World(seed=14)
    node = world.cluster.node("node1")
    outcome = {}

    def publisher():
        conn = Connection(
            world.url(0), runtime=world.runtime, transport_options={"confirm_publish": True}
        )
        producer = Producer(conn)
        queue = Queue("walarm", routing_key="walarm")
        producer.publish("before", routing_key="walarm", declare=[queue], timeout=2)
        world.runtime.sleep(2)  # the alarm goes on at t=1
        started = world.runtime.monotonic()
        with pytest.raises(socket.timeout):
            producer.publish("during", routing_key="walarm", timeout=2)
        outcome["timed_out_after"] = world.runtime.monotonic() - started
        outcome["depth_during"] = world.cluster.vhosts["/"].queue("walarm").message_count
        outcome["confirmed"] = conn.default_channel.low.wait_for_confirms(60)
        outcome["confirmed_at"] = world.runtime.monotonic()
        conn.collect()

    world.spawn("publisher", publisher)
    world.at(1.0, lambda: node.set_memory_alarm(True))
    world.at(20.0, lambda: node.set_memory_alarm(False))
    world.run(until=300)
    assert 2 <= outcome["timed_out_after"] < 2.1
    assert outcome["depth_during"] == 1, "the publish made during the alarm was held"
    assert outcome["confirmed"] and outcome["confirmed_at"] - START >= 20
    assert world.cluster.vhosts["/"].queue("walarm").message_count == 2


def test_a_nacked_publish_is_not_reported_as_confirmed(cluster):
    """basic.nack means the broker does not have the message (RabbitMQ nacks a publish to a
    durable classic queue whose home node is down, and the publishes a quorum queue held
    while its leader changed): ``publish`` raises MessageNacked, the history says failed,
    and with ``retry`` the publish is sent again until the broker takes it."""
    from client.errors import MessageNacked

    urls = cluster.urls
    home = Connection(urls[0])
    Queue("dq", durable=True)(home.default_channel).declare()
    home.release()
    cluster.kill("node1")
    runtime = RecordingRuntime()
    conn = Connection(urls[1], transport_options={"confirm_publish": True}, runtime=runtime)
    producer = Producer(conn, routing_key="dq")
    with pytest.raises(MessageNacked, match="nacked"):
        producer.publish({"n": 1}, confirm_timeout=5)
    kinds = [kind for _, kind, _ in runtime.history if kind.startswith("publish")]
    assert "publish_ok" not in kinds and "publish_fail" in kinds
    threading.Timer(1.0, cluster.start_node, args=("node1",)).start()
    producer.publish({"n": 2}, retry=True, retry_policy=FOREVER, confirm_timeout=5)
    conn.release()
    with kombu.Connection(urls[0]) as reader:
        assert reader.default_channel.queue_declare("dq", passive=True).message_count == 1
