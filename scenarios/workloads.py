"""Built-in workloads for the virtual world (``warren replay --workload NAME``).

``failover-demo``: a 3-node cluster, a quorum queue, a publisher with confirms and a
consumer, both on the bundled client with failover URLs; node1 is killed and later
restarted, node2 hangs past the heartbeat timeout and later resumes. The run ends with
every confirmed message consumed: the verdict line is computed from the history the
client itself recorded (``publish_ok confirmed=True`` against ``deliver``).

``network-demo``: the same pipeline under toxics and link faults (latency with jitter, a
slicer, the publisher's cable pulled for 12 s, a node's proxy down, a reset_peer).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from broker_sim.drivers.virtual import World
from client import Connection, Consumer, Producer, Queue
from scenarios.checker import figures, lost_ids

MESSAGES = 120


def outcome(world: World) -> tuple[set[str], set[str]]:
    """Message ids the broker confirmed, and ids the consumer was given, from the history."""
    confirmed = {d["id"] for _, kind, d in world.events if kind == "publish_ok" and d["confirmed"]}
    delivered = {d["id"] for _, kind, d in world.events if kind == "deliver"}
    return confirmed, delivered


def lost_messages(world: World) -> set[str]:
    confirmed, delivered = outcome(world)
    return confirmed - delivered


def confirmed_pipeline(world: World, faults: list[tuple]) -> None:
    """A confirming publisher and an acking consumer on a quorum queue, with ``faults``
    (``(virtual s, fault name, *args[, {keyword: value}])``) scheduled; ends with the
    verdict line."""
    urls = ";".join(world.url(i) for i in range(3))
    queue = Queue("orders", routing_key="orders", queue_arguments={"x-queue-type": "quorum"})
    state = {"publisher_done": False}

    def publisher() -> None:
        conn = Connection(
            urls,
            heartbeat=10,
            runtime=world.runtime,
            transport_options={"confirm_publish": True, "confirm_timeout": 5},
        )
        producer = Producer(conn)
        policy = {
            "max_retries": 20,
            "interval_start": 0.2,
            "interval_step": 0.2,
            "interval_max": 1.0,
        }
        for n in range(MESSAGES):
            try:
                producer.publish(
                    {"n": n},
                    routing_key="orders",
                    declare=[queue],
                    retry=True,
                    retry_policy=policy,
                    message_id=f"m{n}",
                )
            except Exception:  # noqa: S110 - the client recorded publish_fail
                pass
            world.runtime.sleep(0.1)
        state["publisher_done"] = True
        conn.collect()

    def consumer() -> None:
        conn = Connection(";".join(reversed(urls.split(";"))), heartbeat=10, runtime=world.runtime)

        def on_message(body, message) -> None:
            message.ack()

        Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10).consume()
        deadline = world.clock() + 600

        def drain() -> None:
            while world.clock() < deadline:
                if state["publisher_done"] and not lost_messages(world):
                    return
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    conn.heartbeat_check()

        conn.ensure(
            conn, drain, max_retries=50, interval_start=0.2, interval_step=0.2, interval_max=1.0
        )()
        conn.collect()
        values = figures(world.events)  # the checker's figures, as warren run reports them
        world.record(
            "verdict",
            confirmed=values["confirmed"],
            consumed=values["delivered"],
            lost=lost_ids(world.events),
        )

    world.spawn("publisher", publisher)
    world.spawn("consumer", consumer)
    for when, fault, *args in faults:
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        world.at(when, fault, *args, **kwargs)


def failover_demo(world: World) -> None:
    """node1 killed at 3 s and started at 8 s; node2 hung from 10 s to 60 s."""
    confirmed_pipeline(
        world,
        [
            (3.0, "kill", "node1"),
            (8.0, "start", "node1"),
            (10.0, "pause", "node2"),
            (60.0, "resume", "node2"),
        ],
    )


def network_demo(world: World) -> None:
    """Toxics and link faults: latency, slicer, a pulled cable, a proxy down, reset_peer.

    Latency with jitter on node1 from 1 s, a slicer on node3 (where the consumer is) from
    2 s, the publisher's cable pulled from 4 s to 16 s, node2's proxy down from 18 s to 22 s,
    and node3's connections reset for a second at 24 s."""
    confirmed_pipeline(
        world,
        [
            (1.0, "add_toxic", "node1", "latency", {"latency": 200, "jitter": 50}),
            (2.0, "add_toxic", "node3", "slicer", {"average_size": 64, "delay": 100}),
            (4.0, "isolate", "publisher"),
            (16.0, "rejoin", "publisher"),
            (18.0, "down", "node2"),
            (22.0, "up", "node2"),
            (24.0, "add_toxic", "node3", "reset_peer", {"name": "rst", "timeout": 100}),
            (25.0, "remove_toxic", "node3", "rst"),
        ],
    )


WORKLOADS: dict[str, Callable[[World], None]] = {
    "failover-demo": failover_demo,
    "network-demo": network_demo,
}


def find_workload(name: str) -> Callable[[World], None]:
    """A built-in workload, or ``package.module:function`` (a function taking the world)."""
    if name in WORKLOADS:
        return WORKLOADS[name]
    module_name, _, attr = name.partition(":")
    if not attr:
        raise ValueError(
            f"unknown workload {name!r}: one of {', '.join(WORKLOADS)}, or module:function"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"workload {name!r}: cannot import {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"workload {name!r}: {module_name} has no function {attr!r}")
    return fn


RUN_FOR = 900.0  # virtual seconds a replayed run may take


def prepare(seed: int, workload: str) -> World:
    """The world for ``seed`` with ``workload`` set up in it, not run yet."""
    setup = find_workload(workload)
    world = World(seed, nodes=3, election_timeout=1.0)
    world.replay_hint = f"`warren replay --seed {seed} --workload {workload}`"
    setup(world)
    return world


def replay(seed: int, workload: str) -> World:
    """Build the world for ``seed``, set up ``workload`` in it, run it to its end."""
    world = prepare(seed, workload)
    world.run(until=RUN_FOR)
    return world
