"""Every fault and every toxic inside the virtual world, scheduled at virtual times, seen by
raw links and by the bundled client; the world's Toxiproxy API answers as Toxiproxy does."""

from __future__ import annotations

import pytest

from broker_sim.cluster import FaultError
from broker_sim.drivers.virtual import FAULTS, ToxiproxyError, World
from broker_sim.drivers.world_links import NODE_PORT
from broker_sim.framing import PROTOCOL_HEADER
from broker_sim.toxics import TOXICS
from client import Connection, Producer, Queue
from client.errors import CONNECTION_ERRORS

QUEUE = Queue("q", routing_key="q", queue_arguments={"x-queue-type": "quorum"})
BAD_HEADER = b"AMQP\x00\x00\x09\x02"  # the node answers with its own header and closes


def run_actor(world: World, fn, until: float = 600.0):
    """Run ``fn`` as the world's only actor; return what it returned."""
    out = {}
    world.spawn("client", lambda: out.setdefault("value", fn()))
    world.run(until=until)
    return out.get("value")


def raw_session(world: World, data: bytes, limit: float = 30.0) -> list[tuple[float, object]]:
    """Send ``data`` on a raw link to node1; what comes back: (virtual s, bytes/EOF/RESET)."""
    link = world.runtime.connect("world", NODE_PORT, 5.0, None)
    started = world.clock()
    link.send(data)
    seen: list[tuple[float, object]] = []
    while world.clock() - started < limit:
        try:
            chunk = link.recv(timeout=limit - (world.clock() - started))
        except ConnectionResetError:
            seen.append((world.clock() - started, "RESET"))
            break
        if chunk == b"":
            seen.append((world.clock() - started, "EOF"))
            break
        if chunk:
            seen.append((world.clock() - started, chunk))
    return seen


def session_with(toxic: str | None, data: bytes, stream: str = "downstream", **attributes):
    world = World(seed=7, network_jitter=0)
    if toxic:
        world.add_toxic("node1", toxic, stream=stream, **attributes)
    return run_actor(world, lambda: raw_session(world, data))


def payload(seen) -> bytes:
    return b"".join(item for _, item in seen if isinstance(item, bytes))


START_FRAME = payload(session_with(None, PROTOCOL_HEADER))


# (toxic, stream, attributes, data sent, check of what came back)
CASES = {
    "noop": ("downstream", {}, BAD_HEADER, lambda s: s[-1][1] == "EOF" and s[-1][0] < 0.01),
    "latency": (
        "downstream",
        {"latency": 1000},
        BAD_HEADER,
        lambda s: s[0][0] >= 1.0 and payload(s) == PROTOCOL_HEADER,
    ),
    "bandwidth": (
        "downstream",
        {"rate": 1},  # KB/s: the ~500-byte connection.start takes about half a second
        PROTOCOL_HEADER,
        lambda s: s[-1][0] >= len(START_FRAME) / 1024 * 0.9 and payload(s) == START_FRAME,
    ),
    "slow_close": (
        "downstream",
        {"delay": 3000},
        BAD_HEADER,
        lambda s: s[0][0] < 0.01 and s[-1][1] == "EOF" and s[-1][0] >= 3.0,
    ),
    "timeout": (
        "upstream",
        {"timeout": 2000},  # nothing reaches the node; the link closes after 2 s
        PROTOCOL_HEADER,
        lambda s: s == [(pytest.approx(2.0, abs=0.01), "EOF")],
    ),
    "reset_peer": (
        "downstream",
        {"timeout": 1000},
        PROTOCOL_HEADER,
        lambda s: s[-1][1] == "RESET" and s[-1][0] == pytest.approx(1.0, abs=0.01),
    ),
    "slicer": (
        "downstream",
        {"average_size": 64, "size_variation": 16, "delay": 1000},
        PROTOCOL_HEADER,
        lambda s: len(s) > 3 and payload(s) == START_FRAME,
    ),
    "limit_data": (
        "downstream",
        {"bytes": 4},
        BAD_HEADER,
        lambda s: payload(s) == b"AMQP" and s[-1][1] == "EOF",
    ),
}


def test_every_registered_toxic_has_a_world_case():
    assert set(CASES) == set(TOXICS)


@pytest.mark.parametrize("toxic", sorted(CASES))
def test_each_toxic_acts_on_world_links_in_virtual_time(toxic):
    stream, attributes, data, check = CASES[toxic]
    seen = session_with(toxic, data, stream, **attributes)
    assert check(seen), seen


def test_a_timeout_of_zero_blackholes_the_link_and_the_client_connect_times_out():
    world = World(seed=3)
    world.add_toxic("node1", "timeout", stream="upstream", timeout=0)

    def attempt():
        conn = Connection(world.url(0), runtime=world.runtime, connect_timeout=5)
        started = world.clock()
        with pytest.raises(ConnectionError):
            conn.connect()
        return world.clock() - started

    assert run_actor(world, attempt) == pytest.approx(5.0, abs=0.05)


def confirmed_round_trip(world: World) -> float:
    """Connect to node1, publish one confirmed message, get it back: virtual seconds."""
    started = world.clock()
    conn = Connection(
        world.url(0),
        runtime=world.runtime,
        transport_options={"confirm_publish": True, "confirm_timeout": 60},
    )
    Producer(conn).publish(b"x" * 2000, routing_key="q", declare=[QUEUE])
    got = conn.SimpleQueue("q", queue_opts={"queue_arguments": QUEUE.queue_arguments}).get(
        timeout=60
    )
    got.ack()
    assert got.body == b"x" * 2000
    conn.collect()
    return world.clock() - started


def test_latency_slows_the_bundled_clients_round_trips_in_virtual_time():
    fast = World(seed=1)
    plain = run_actor(fast, lambda: confirmed_round_trip(fast))
    slow = World(seed=1)
    slow.add_toxic("node1", "latency", latency=500)
    delayed = run_actor(slow, lambda: confirmed_round_trip(slow))
    assert plain < 0.5
    assert delayed >= 2.5, "every reply of the handshake, declare, confirm and get waits 0.5 s"


def test_removing_a_toxic_releases_what_it_held():
    world = World(seed=4, network_jitter=0)
    world.add_toxic("node1", "latency", latency=10_000, name="slow")
    world.at(1.0, "remove_toxic", "node1", "slow")
    seen = run_actor(world, lambda: raw_session(world, BAD_HEADER))
    assert seen[0][0] == pytest.approx(1.0, abs=0.01) and payload(seen) == PROTOCOL_HEADER


def test_proxy_down_closes_links_and_refuses_until_up_and_the_client_fails_over():
    world = World(seed=5)
    world.at(2.0, "down", "node1")
    world.at(6.0, "up", "node1")

    def client():
        conn = Connection(f"{world.url(0)};{world.url(1)}", runtime=world.runtime)
        producer = Producer(conn.connect())
        first = conn.current.port
        world.runtime.sleep(3)  # node1's proxy is down now
        with pytest.raises(ConnectionError):
            Connection(world.url(0), runtime=world.runtime).connect()
        producer.publish(b"x", routing_key="q", declare=[QUEUE], retry=True)
        second = conn.current.port
        world.runtime.sleep(4)  # up again
        Connection(world.url(0), runtime=world.runtime).connect().collect()
        conn.collect()
        return first, second

    assert run_actor(world, client) == (NODE_PORT, NODE_PORT + 1)
    assert "fault action='down node1'" in "\n".join(world.history)


def test_an_isolated_client_is_noticed_by_heartbeats_and_recovers_after_rejoin():
    world = World(seed=6)
    world.at(1.0, "isolate", "client")
    world.at(20.0, "rejoin", "client")
    seen = {}

    def client():
        conn = Connection(world.url(0), heartbeat=2, runtime=world.runtime)
        conn.connect()
        lost_at, deadline = None, world.clock() + 60
        while lost_at is None and world.clock() < deadline:
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                continue
            except CONNECTION_ERRORS:
                lost_at = world.clock()
        seen["server_connections"] = len(world.cluster.node("node1").connections)
        seen["lost_at"] = lost_at
        conn.collect()
        conn.ensure_connection(max_retries=30, interval_start=1, interval_step=0, interval_max=1)
        seen["back_at"] = world.clock()
        conn.collect()

    world.spawn("client", client)
    world.run(until=120)
    start = 1_700_000_000.0
    assert seen["lost_at"] - start < 10, "missed heartbeats noticed within a few intervals"
    assert seen["server_connections"] == 0, "the node closed the silent connection too"
    assert seen["back_at"] - start >= 20, "no connection while isolated"


@pytest.mark.parametrize(
    ("fault", "args", "expect"),
    [
        ("kill", ("node2",), {"node2": "stopped"}),
        ("stop", ("node2",), {"node2": "stopped"}),
        ("pause", ("node2",), {"node2": "paused"}),
        ("partition", ([["node1", "node2"], ["node3"]],), {"node3": "minority"}),
        ("drop_heartbeats", ("node2",), {"node2": "running"}),
    ],
)
def test_cluster_faults_fire_at_their_virtual_time(fault, args, expect):
    world = World(seed=8)
    world.at(5.0, fault, *args)
    states = {}

    def watcher():
        world.runtime.sleep(4.9)
        states["before"] = {n.name.split("@")[1]: n.state for n in world.cluster.nodes.values()}
        world.runtime.sleep(0.2)
        states["after"] = {n.name.split("@")[1]: n.state for n in world.cluster.nodes.values()}

    world.spawn("watcher", watcher)
    world.run(until=10)
    assert set(states["before"].values()) == {"running"}
    assert {k: states["after"][k] for k in expect} == expect
    assert f"fault action={fault} " in "\n".join(world.history).replace("'", "").replace('"', "")


@pytest.mark.parametrize(
    ("first", "undo", "args"),
    [("kill", "start", "node2"), ("pause", "resume", "node2"), ("stop", "start", "node2")],
)
def test_undoing_faults_fire_at_their_virtual_time_too(first, undo, args):
    world = World(seed=8)
    world.at(1.0, first, args)
    world.at(3.0, undo, args)
    seen = []

    def watcher():
        for _ in range(4):
            seen.append(world.cluster.node(args).state)
            world.runtime.sleep(1.0)

    world.spawn("watcher", watcher)
    world.run(until=10)
    assert seen[0] == "running" and seen[2] != "running" and seen[3] == "running", seen


def test_heal_ends_a_partition_at_its_virtual_time():
    world = World(seed=8)
    world.at(1.0, "partition", [["node1", "node2"], ["node3"]])
    world.at(2.0, "heal")
    world.spawn("idle", lambda: world.runtime.sleep(3))
    world.run(until=5)
    assert world.cluster.node("node3").state == "running"
    assert "fault action='heal'" in "\n".join(world.history)


def test_the_world_schedules_the_whole_vocabulary():
    world = World(seed=1)
    for name in FAULTS:
        assert callable(getattr(world, name)), name


def test_an_unknown_fault_or_a_bad_argument_is_named_with_the_seed():
    world = World(seed=11)
    with pytest.raises(FaultError, match="unknown fault 'explode': one of kill, stop"):
        world.at(1.0, "explode", "node1")
    with pytest.raises(FaultError, match="in the past"):
        world.at(-1.0, "kill", "node1")
    world.at(2.0, "kill", "node9")
    world.spawn("idle", lambda: world.runtime.sleep(5))
    with pytest.raises(FaultError, match=r"fault 'kill node9' at t=2.000s failed \(seed 11\)"):
        world.run(until=10)


def test_the_worlds_toxiproxy_api_answers_as_toxiproxy():
    world = World(seed=2)
    assert sorted(world.api("GET", "/proxies")) == ["node1", "node2", "node3"]
    with pytest.raises(ToxiproxyError, match="400") as bad:
        world.add_toxic("node1", "lightning")
    assert bad.value.status == 400 and "invalid toxic type" in bad.value.body
    with pytest.raises(ToxiproxyError) as missing:
        world.add_toxic("node7", "latency", latency=1)
    assert missing.value.status == 404 and "proxy not found" in missing.value.body
    world.add_toxic("node1", "latency", latency=1)
    with pytest.raises(ToxiproxyError) as twice:
        world.add_toxic("node1", "latency", latency=2)
    assert twice.value.status == 409
    with pytest.raises(ToxiproxyError) as bad_attr:
        world.add_toxic("node1", "bandwidth", rate="fast")
    assert bad_attr.value.status == 400 and "rate" in bad_attr.value.body


def test_a_proxy_created_through_the_api_gets_its_own_address_and_toxics():
    world = World(seed=9, network_jitter=0)
    made = world.api("POST", "/proxies", {"name": "extra", "upstream": "world:50000"})
    assert made["listen"] == "world:51000"
    world.add_toxic("extra", "latency", latency=500)
    with pytest.raises(ToxiproxyError) as refused:
        world.api("POST", "/proxies", {"name": "nowhere", "upstream": "world:1"})
    assert refused.value.status == 500 and "not a node of the world" in refused.value.body

    def both():
        times = []
        for port in (51000, NODE_PORT):
            started = world.clock()
            conn = Connection(f"amqp://guest:guest@world:{port}//", runtime=world.runtime)
            conn.connect()
            times.append(world.clock() - started)
            conn.collect()
        return times

    through_extra, direct = run_actor(world, both)
    assert through_extra >= 1.5 > 0.5 > direct


def test_toxic_randomness_is_seeded():
    def digest(seed):
        world = World(seed=seed)
        world.add_toxic("node1", "latency", latency=50, jitter=40)
        world.add_toxic("node1", "slicer", average_size=32, size_variation=16, delay=100)
        world.spawn("client", lambda: confirmed_round_trip(world))
        world.run(until=60)
        return world.digest(), world.clock()

    assert digest(3) == digest(3)
    assert digest(3)[1] != digest(4)[1], "different seeds draw different jitter"


def test_a_hung_node_accepts_connections_and_answers_once_it_resumes():
    """As on the live driver (and a SIGSTOPped RabbitMQ, whose kernel still completes the
    TCP handshake): a connection to a paused node is accepted, hears nothing, and gets its
    connection.start when the node resumes; it is not refused."""
    world = World(seed=7, network_jitter=0)
    world.pause("node1")
    world.at(5.0, "resume", "node1")
    seen = run_actor(world, lambda: raw_session(world, PROTOCOL_HEADER, limit=10.0))
    assert seen, "the connect succeeded and something came back"
    first_at, first = seen[0]
    assert isinstance(first, bytes) and first.startswith(START_FRAME[:7])
    assert 5.0 <= first_at < 6.0, "nothing before the resume"


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_a_consumer_on_a_node_hung_shorter_than_its_heartbeat_keeps_consuming(queue_type):
    """Found by the property-based tests (scenarios.strategies): a 1 s pause of the
    consumer's node (node3, not the queue's) silently dropped its quorum-queue consumer
    while its connection stayed open, so nothing more was delivered. RabbitMQ does not even
    notice a 1 s SIGSTOP (net_ticktime 60 s): the consumer goes on after the resume."""
    world = World(seed=1)
    got: list[int] = []
    arguments = {"x-queue-type": queue_type} if queue_type == "quorum" else {}
    queue = Queue("jobs", routing_key="jobs", queue_arguments=arguments)

    def publisher():
        with Connection(world.url(0), runtime=world.runtime) as conn:
            producer = Producer(conn)
            for n in range(30):
                producer.publish({"n": n}, routing_key="jobs", declare=[queue], retry=True)
                world.runtime.sleep(0.1)

    def consumer():
        world.runtime.sleep(0.05)  # the publisher declares the queue on node1
        with Connection(world.url(2), heartbeat=4, runtime=world.runtime) as conn:
            consumer = conn.Consumer([queue], callbacks=[lambda b, m: (got.append(1), m.ack())])
            consumer.consume()
            for _ in range(100):
                if len(got) == 30:
                    break
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    conn.heartbeat_check()

    world.spawn("publisher", publisher)
    world.spawn("consumer", consumer)
    world.at(1.0, "pause", "node3")
    world.at(2.0, "resume", "node3")
    world.run(until=120)
    assert len(got) == 30
    cancels = [kind for _, kind, _ in world.events if kind == "consumer_cancelled"]
    assert cancels == []  # and a classic queue's consumer was not cancelled meanwhile


def test_a_hang_longer_than_the_net_tick_is_seen_and_leaves_the_node_in_minority():
    """Past ``net_ticktime`` the peers declare a hung node down: its quorum consumer is
    dropped and the delivery it held goes back to the queue; the node that resumes finds
    its peers gone and pauses itself (pause_minority, connections closed 320) until it is
    restarted (RabbitMQ 3.10: the partition persists after a long SIGSTOP)."""
    world = World(seed=1, net_ticktime=5.0)
    cluster = world.cluster
    held: list[int] = []
    closed: list[str] = []

    def consumer():
        with Connection(world.url(2), heartbeat=0, runtime=world.runtime) as conn:
            producer = Producer(conn)
            producer.publish({"n": 1}, routing_key="q", declare=[QUEUE])
            consumer = conn.Consumer([QUEUE], callbacks=[lambda b, m: held.append(1)])
            consumer.consume()
            try:
                for _ in range(30):  # bounded: until the node closes the connection
                    try:
                        conn.drain_events(timeout=1)
                    except TimeoutError:
                        pass
            except CONNECTION_ERRORS as exc:
                closed.append(type(exc).__name__)

    states: dict[float, tuple] = {}

    def look(at: float) -> None:
        q = cluster.vhosts["/"].queues["q"]
        states[at] = (cluster.nodes["rabbit@node3"].state, len(q.consumers), q.message_count)

    world.spawn("consumer", consumer)
    world.spawn("watcher", lambda: world.runtime.sleep(20))  # the world runs while it lives
    world.at(1.0, "pause", "node3")
    for at in (5.5, 7.5, 12.0, 16.0):  # seen down at 6, a new leader 1 s later
        world.at(at, look, at)
    world.at(10.0, "resume", "node3")
    world.at(15.0, "restart", "node3")
    world.run(until=40)
    assert held == [1]
    assert states[5.5] == ("paused", 1, 0), "not seen before the tick: consumer kept"
    assert states[7.5] == ("paused", 0, 1), "seen down: consumer dropped, delivery back"
    assert states[12.0][0] == "minority"
    assert states[16.0][0] == "running"
    assert closed, "the minority node closed the consumer's connection"
    kinds = [e.kind for e in cluster.events if e.node == "rabbit@node3"]
    assert kinds.index("node-down-seen") < kinds.index("resume") < kinds.index("pause-minority")
