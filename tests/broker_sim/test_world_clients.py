"""Unmodified kombu (py-amqp) and pika inside the deterministic world: the seeds' recipes
through faults, the same digest for the same seed in other processes, long virtual waits
in short wall time, and the same behaviour as on the live simulated cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker_sim.drivers.virtual import START
from tests.broker_sim.world_recipes import MESSAGES, run

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ["kombu-mixin", "pika"]
ROLES = ("publisher", "consumer")
ERROR_TYPES = {"kombu-mixin": "ConnectionResetError", "pika": "StreamLostError"}


def kinds(events, kind: str, actor: str | None = None) -> list[dict]:
    """The details of ``kind`` events (of ``actor``) in a world's or a live run's history."""
    events = getattr(events, "events", events)
    return [d for _, k, d in events if k == kind and (actor is None or d.get("actor") == actor)]


@pytest.mark.parametrize("recipe", CLIENTS)
def test_the_recipes_fail_over_through_a_node_kill_and_lose_nothing(recipe):
    world, received = run(recipe, seed=1)
    assert sorted(received) == list(range(MESSAGES))
    for actor in ROLES:
        errors = kinds(world, "error", actor)
        assert errors and errors[0]["error"] == ERROR_TYPES[recipe], errors
        assert errors[0]["node"] == "rabbit@node1"
        recovered = kinds(world, "recovery_succeeded", actor)
        assert [d["node"] for d in recovered] == ["rabbit@node2"], recovered
    confirmed = [d["id"] for d in kinds(world, "publish_ok") if d["confirmed"]]
    delivered = {d["id"] for d in kinds(world, "deliver")}
    assert len(confirmed) == MESSAGES and set(confirmed) <= delivered


def test_the_seeds_full_consumer_example_stops_consuming_after_a_failover():
    """Seed 001's "full example" wraps drain_events in ensure(conn, ...): ensure revives the
    *connection* and reconnects to broker2, but the Consumer stays bound to the dead channel,
    so nothing is consumed after the failover. Warren shows it; the ConsumerMixin does not
    have the flaw."""
    world, received = run("kombu", seed=1)
    kill = next(t for t, k, _ in world.events if k == "fault")
    last_delivery = max(t for t, k, _ in world.events if k == "deliver")
    assert kinds(world, "recovery_succeeded", "consumer")[0]["node"] == "rabbit@node2"
    assert last_delivery < kill
    assert len(received) < MESSAGES and len(kinds(world, "publish_ok")) == MESSAGES


@pytest.mark.parametrize("recipe", [*CLIENTS, "aio_pika"])
def test_the_same_seed_gives_the_same_digest_in_two_processes_over_20_seeds(recipe):
    command = [sys.executable, "-m", "tests.broker_sim.world_recipes", recipe, "0", "19"]

    def digests() -> list[str]:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split("\n")[:20]

    first, second = digests(), digests()
    assert len(first) == 20 and first == second
    assert first[3].split()[1] == run(recipe, seed=3)[0].digest()  # and in this process
    assert len({line.split()[1] for line in first}) > 1  # the seed matters


def test_aio_pika_runs_on_the_worlds_event_loop_and_its_robust_connection_reconnects():
    """The stretch: aio-pika / aiormq on asyncio, whose selector, clock, self-pipe and
    resolver threads are the world's. connect_robust takes one URL: it waits for node1."""
    faults = (("kill", "node1", 4.0), ("start", "node1", 8.0))
    world, received = run("aio_pika", seed=1, faults=faults)
    assert sorted(set(received)) == list(range(MESSAGES))
    for actor in ROLES:
        assert kinds(world, "error", actor)[0]["error"] == "AMQPConnectionError"
        (back,) = [
            t for t, k, d in world.events if k == "recovery_succeeded" and d["actor"] == actor
        ]
        assert 8.0 <= back <= 8.0 + 5.0 + 1  # robust reconnect_interval: 5 s
    assert all(d["confirmed"] for d in kinds(world, "publish_ok"))


@pytest.mark.parametrize("recipe", CLIENTS)
def test_a_60s_heartbeat_a_10_minute_hang_and_a_failover_take_well_under_a_second(recipe):
    """node1 hangs for 10 virtual minutes, comes back, then is killed: the clients see the
    missed heartbeats (60 s), the hang's end, and fail over to node2 after the kill."""
    faults = (("pause", "node1", 2.0), ("resume", "node1", 602.0), ("kill", "node1", 640.0))
    started = time.perf_counter()
    world, received = run(recipe, seed=2, faults=faults, until=700, heartbeat=60)
    wall = time.perf_counter() - started
    assert wall < 1.0, f"{wall:.2f} s of wall time for 700 virtual seconds"
    assert world.clock.t - START >= 640
    assert sorted(set(received)) == list(range(MESSAGES))
    consumer_errors = [t for t, k, d in world.events if k == "error" and d["actor"] == "consumer"]
    assert any(2 + 60 <= t <= 2 + 3 * 60 for t in consumer_errors), consumer_errors  # heartbeat
    nodes = [d["node"] for d in kinds(world, "recovery_succeeded", "consumer")]
    assert nodes[-1] == "rabbit@node2", nodes


# -- the same recipe on the live simulated cluster -------------------------------------------


def run_live(recipe: str) -> tuple[list, list]:
    """The recipe against the live simulated cluster (real sockets, real time), in a process
    of its own: the documents' endless loops end with it."""
    command = [sys.executable, "-m", "tests.broker_sim.world_recipes", "--live", recipe]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return [tuple(event) for event in result["events"]], result["received"]


@pytest.mark.parametrize("recipe", CLIENTS)
def test_the_world_behaves_as_the_live_cluster_for_the_same_recipe(recipe):
    """Same outcome (nothing lost), same exception types, recovery within the same bound."""
    live_events, live_received = run_live(recipe)
    world, received = run(recipe, seed=1)
    assert sorted(set(live_received)) == sorted(set(received)) == list(range(MESSAGES))

    def error_types(events) -> dict:
        return {
            actor: sorted(
                {d["error"] for _, k, d in events if k == "error" and d["actor"] == actor}
            )
            for actor in ("publisher", "consumer")
        }

    live_errors, world_errors = error_types(live_events), error_types(world.events)
    for actor in ROLES:
        assert world_errors[actor][:1] == live_errors[actor][:1], (live_errors, world_errors)

    def recovery(events, kill: float) -> float:
        return min(t for t, k, _ in events if k == "recovery_succeeded") - kill

    live_kill = next(t for t, k, d in live_events if k == "error")
    world_kill = next(t for t, k, _ in world.events if k == "fault")
    assert recovery(live_events, live_kill) < 2.0 and recovery(world.events, world_kill) < 2.0
