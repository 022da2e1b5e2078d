"""The virtual-time world: determinism across processes, seeds that explore, time that
jumps, deadlocks and failing actors reported with their seed, real time/sockets refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from broker_sim.drivers.virtual import ActorFailed, World, WorldDeadlock
from client import Connection, Consumer, Producer, Queue
from client.mixins import ConsumerMixin
from scenarios.workloads import replay

SEEDS = range(20)


def test_same_seed_same_digest_across_processes():
    here = {seed: replay(seed, "failover-demo").digest() for seed in SEEDS}
    code = (
        "from scenarios.workloads import replay\n"
        f"for s in {list(SEEDS)}: print(s, replay(s, 'failover-demo').digest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    ).stdout.split("\n")
    there = {int(line.split()[0]): line.split()[1] for line in out if line.strip()}
    assert there == here


def test_different_seeds_explore_different_interleavings_and_lose_nothing():
    worlds = [replay(seed, "failover-demo") for seed in range(8)]
    assert len({w.digest() for w in worlds}) >= 6
    for world in worlds:
        assert world.history[-1].endswith("lost=[]"), world.seed


def test_replay_cli_prints_the_history_and_the_digest_last():
    out = subprocess.run(
        [sys.executable, "-m", "scenarios.cli", "replay", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    lines = out.strip().split("\n")
    assert lines[-1] == f"digest: {replay(3, 'failover-demo').digest()}"
    assert any("fault action='kill node1'" in line for line in lines)


def test_a_sixty_second_heartbeat_and_a_ten_minute_hang_cost_no_wall_time():
    world = World(seed=5)
    queue = Queue("q", routing_key="q", queue_arguments={"x-queue-type": "quorum"})
    seen = {}

    def worker():
        conn = Connection(f"{world.url(0)};{world.url(1)}", heartbeat=60, runtime=world.runtime)
        got = []
        Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]).consume()

        def drain():
            while not got:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    conn.heartbeat_check()

        conn.ensure(conn, drain, max_retries=10, interval_start=1)()
        seen["got"], seen["node"], seen["at"] = got, conn.current.port, world.clock()
        conn.collect()

    def late_publisher():
        world.runtime.sleep(600)  # node1 hangs for all of it
        conn = Connection(world.url(2), runtime=world.runtime)
        Producer(conn).publish("after the hang", routing_key="q", declare=[queue])
        conn.collect()

    world.spawn("worker", worker)
    world.spawn("late-publisher", late_publisher)
    world.at(1.0, "pause", "node1")
    started = time.monotonic()
    world.run(until=4000)
    # ~0.03 s here; the bound leaves a wide margin for a loaded CI machine
    assert time.monotonic() - started < 0.5, "ten simulated minutes in a fraction of a second"
    assert seen["got"] == ["after the hang"]
    assert seen["node"] == 50001, "the worker detected the hang by heartbeat and failed over"
    assert seen["at"] - 1_700_000_000.0 >= 600


def test_deadlocked_actors_are_named_with_their_blocking_calls():
    world = World(seed=1)
    world.spawn("alice", lambda: world.block("wait-for-bob", None, lambda: False))
    world.spawn("bob", lambda: world.block("wait-for-alice", None, lambda: False))
    with pytest.raises(WorldDeadlock, match="alice in wait-for-bob, bob in wait-for-alice"):
        world.run(until=10)


def test_a_failing_actor_surfaces_its_traceback_and_seed():
    world = World(seed=42)

    def broken():
        raise ValueError("boom")

    world.spawn("broken", broken)
    with pytest.raises(ActorFailed, match=r"(?s)seed 42.*ValueError: boom"):
        world.run(until=1)


def test_the_client_records_the_history_design_section_5_lists():
    world = replay(4, "failover-demo")
    kinds = [kind for _, kind, _ in world.events]
    for kind in ("publish_invoke", "publish_ok", "deliver", "ack", "error", "fault"):
        assert kind in kinds, kind
    assert "recovery_succeeded" in kinds, "the publisher reconnected after the kill"
    invoked = [d["id"] for _, kind, d in world.events if kind == "publish_invoke"]
    assert invoked == [f"m{n}" for n in range(120)]
    kill = next(t for t, kind, d in world.events if kind == "fault" and "kill" in d["action"])
    after = [kind for t, kind, _ in world.events if t > kill]
    assert after.index("error") < after.index("recovery_succeeded")
    assert world.history[0].split()[1] in kinds  # the digest covers these lines
    nodes = {d["node"] for _, kind, d in world.events if kind == "deliver"}
    assert nodes and nodes <= {"rabbit@node1", "rabbit@node2", "rabbit@node3"}


def test_generated_message_ids_and_shuffled_failover_come_from_the_seed():
    def run(seed):
        world = World(seed)

        def publisher():
            urls = ";".join(world.url(i) for i in range(3))
            conn = Connection(urls, failover_strategy="shuffle", runtime=world.runtime)
            producer = Producer(conn)
            for _ in range(3):
                producer.publish(b"x", routing_key="q", retry=True)
            conn.collect()

        world.spawn("publisher", publisher)
        world.run(until=60)
        return [d for _, kind, d in world.events if kind in ("publish_ok", "publish_invoke")]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_network_demo_survives_toxics_a_pulled_cable_and_a_proxy_down():
    world = replay(2, "network-demo")
    lines = "\n".join(world.history)
    for fault in ("add_toxic node1 latency", "isolate publisher", "down node2", "reset_peer"):
        assert fault in lines, fault
    assert world.history[-1].endswith("lost=[]")
    assert "confirmed=120" in world.history[-1]


USER_WORKLOAD = """
from client import Connection, Producer


def steady(world):
    def publisher():
        conn = Connection(world.url(0) + ";" + world.url(1), runtime=world.runtime)
        producer = Producer(conn)
        for n in range(20):
            producer.publish({"n": n}, routing_key="q", retry=True)
            world.runtime.sleep(0.5)

    world.spawn("publisher", publisher)
    world.at(3.0, "kill", "node1")


def broken(world):
    def actor():
        world.runtime.sleep(1.5)
        raise RuntimeError("the user's bug")

    world.spawn("buggy", actor)
"""


def _replay_cli(tmp_path, *args):
    (tmp_path / "userwl.py").write_text(USER_WORKLOAD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_replay_runs_a_users_workload_by_module_and_function(tmp_path):
    first = _replay_cli(tmp_path, "11", "--workload", "userwl:steady")
    second = _replay_cli(tmp_path, "--seed", "11", "--workload", "userwl:steady")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.strip().split("\n")[-1].startswith("digest: ")
    assert "fault action='kill node1'" in first.stdout


def test_a_failing_replay_prints_its_history_then_the_error_with_the_command(tmp_path):
    done = _replay_cli(tmp_path, "4", "--workload", "userwl:broken")
    assert done.returncode == 1
    assert done.stdout.strip().split("\n")[-1].startswith("digest: ")
    assert "the user's bug" in done.stderr
    assert "warren replay --seed 4 --workload userwl:broken" in done.stderr


@pytest.mark.parametrize(
    ("workload", "message"),
    [("nope", "unknown workload 'nope'"), ("userwl:missing", "has no function 'missing'")],
)
def test_replay_names_a_bad_workload(tmp_path, workload, message):
    done = _replay_cli(tmp_path, "1", "--workload", workload)
    assert done.returncode == 2 and message in done.stderr


def test_a_consumer_mixin_worker_runs_in_the_world_through_kill_and_hang():
    world = World(seed=21)
    urls = ";".join(world.url(i) for i in range(3))
    queue = Queue("jobs", routing_key="jobs", queue_arguments={"x-queue-type": "quorum"})
    done: list[int] = []

    class Worker(ConsumerMixin):
        def __init__(self, connection):
            self.connection = connection

        def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
            return [Consumer([queue], callbacks=[self.on_job], prefetch_count=5)]

        def on_job(self, body, message):
            done.append(body["n"])
            message.ack()
            self.should_stop = len(set(done)) == 40

    def worker():
        conn = Connection(";".join(reversed(urls.split(";"))), heartbeat=5, runtime=world.runtime)
        Worker(conn).run()
        conn.collect()

    def producer():
        conn = Connection(urls, runtime=world.runtime, transport_options={"confirm_publish": True})
        producer = Producer(conn)
        for n in range(40):
            producer.publish({"n": n}, routing_key="jobs", declare=[queue], retry=True)
            world.runtime.sleep(0.5)
        conn.collect()

    world.spawn("worker", worker)
    world.spawn("producer", producer)
    world.at(4.0, "kill", "node3")  # the worker's node
    world.at(9.0, "start", "node3")
    world.at(12.0, "pause", "node2")  # the worker's next node, hung past 2 heartbeats
    world.run(until=300)
    assert sorted(set(done)) == list(range(40))
    worker_events = [kind for _, kind, d in world.events if d.get("actor") == "worker"]
    assert "error" in worker_events or "recovery_succeeded" in worker_events, worker_events[-5:]


@pytest.mark.parametrize("workload", ["failover-demo", "network-demo"])
def test_a_sweep_of_seeds_loses_no_confirmed_message(workload):
    verdicts = {seed: replay(seed, workload).history[-1] for seed in range(100, 130)}
    failing = {s: v for s, v in verdicts.items() if not v.endswith("lost=[]")}
    assert not failing, f"replay with: warren replay --seed N --workload {workload}: {failing}"
