"""The client-process faults of the virtual world (broker_sim.drivers.client_crash): a
crashed client stops where it is and says nothing, the node sees its connection end and
requeues its unacked deliveries, and a restart runs the role again from the top."""

from __future__ import annotations

import pytest

from broker_sim.cluster import FaultError
from broker_sim.drivers.virtual import World
from client import Connection, Consumer, Producer, Queue

QUEUE = Queue("jobs", routing_key="jobs", queue_arguments={"x-queue-type": "quorum"})


def test_a_crashed_consumer_says_nothing_and_its_unacked_message_goes_to_the_next_one():
    world = World(seed=3)
    seen: list[tuple[str, str, bool]] = []
    cleanups: list[str] = []

    def publisher() -> None:
        with Connection(world.url(0), runtime=world.runtime) as conn:
            Producer(conn).publish("job-1", routing_key="jobs", declare=[QUEUE])

    def worker(name: str) -> None:
        conn = Connection(world.url(1), runtime=world.runtime, heartbeat=0)

        def on_message(body, message) -> None:
            seen.append((name, body, message.delivery_info["redelivered"]))
            world.runtime.sleep(10)  # working on it: the crash comes now
            message.ack()

        try:
            Consumer(conn, [QUEUE], callbacks=[on_message], prefetch_count=1).consume()
            while not any(n == "second" for n, _, _ in seen):
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
        finally:
            cleanups.append(name)  # a dead process runs no finally block
            conn.collect()

    world.spawn("publisher", publisher)
    world.spawn("first", worker, "first")
    peers: dict[float, list[str]] = {}
    node = world.cluster.nodes["rabbit@node2"]

    def look(at: float) -> None:
        peers[at] = [c.peer.split(":")[0] for c in node.connections.values()]

    world.at(2.9, look, 2.9)
    world.at(3, "crash", "first")
    world.at(3.1, look, 3.1)
    world.at(4, lambda: world.spawn("second", worker, "second"))
    world.run(until=60)
    assert seen == [("first", "job-1", False), ("second", "job-1", True)]
    assert cleanups == ["second"]
    assert peers == {2.9: ["first"], 3.1: []}, "the node saw the dead client's socket close"
    assert any(line.endswith("fault action='crash first'") for line in world.history)


def test_a_restarted_role_runs_again_from_the_top_and_threads_die_with_their_process():
    world = World(seed=1)
    starts, ticks = [], []

    def role() -> None:
        import threading
        import time

        starts.append(world.clock() - world.clock.start)

        def tick() -> None:
            for _ in range(100):
                ticks.append(world.clock() - world.clock.start)
                time.sleep(1)

        threading.Thread(target=tick, daemon=True).start()
        time.sleep(100)

    world.spawn("worker", role)
    world.at(2.5, "crash", "worker")
    world.at(10, "restart_client", "worker")
    world.run(until=12)
    assert starts == [0.0, 10.0]
    assert not [t for t in ticks if 2.5 < t < 10], "the crashed process's thread ran on"
    assert [t for t in ticks if t >= 10] == [10.0, 11.0], "the restarted one ticks again"


@pytest.mark.parametrize(
    "faults, message",
    [
        ((("crash", "nobody"),), "crash: no actor named 'nobody'"),
        ((("restart_client", "worker"),), "restart_client: actor 'worker' is running"),
        ((("crash", "worker"), ("crash", "worker")), "crash: actor 'worker' has already ended"),
        ((("restart_client", "nobody"),), "restart_client: no actor named 'nobody'"),
    ],
)
def test_a_client_fault_that_cannot_apply_names_itself(faults, message):
    world = World(seed=1)
    world.spawn("worker", lambda: world.runtime.sleep(50))
    for i, (fault, actor) in enumerate(faults):
        world.at(1 + i, fault, actor)
    with pytest.raises(FaultError, match=message):
        world.run(until=10)
