"""The instrumentation layer (scenarios.instrument): what kombu's and pika's calls record,
and that nothing of it outlives the run."""

from __future__ import annotations

import time

import kombu
import kombu.message
import kombu.messaging
import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from broker_sim.drivers.virtual import World
from client.runtime import RecordingRuntime
from scenarios.instrument import recording

ORIGINALS = {
    "publish": kombu.messaging.Producer.publish,
    "ack": kombu.message.Message.ack,
    "factory": kombu.Connection._connection_factory,
    "pika.publish": BlockingChannel.basic_publish,
    "pika.init": BlockingConnection.__init__,
}


def current() -> dict:
    return {
        "publish": kombu.messaging.Producer.publish,
        "ack": kombu.message.Message.ack,
        "factory": kombu.Connection._connection_factory,
        "pika.publish": BlockingChannel.basic_publish,
        "pika.init": BlockingConnection.__init__,
    }


def events_of(world, *kinds) -> list[tuple[str, dict]]:
    return [(k, d) for _, k, d in world.events if k in kinds]


def test_the_wrappers_are_in_place_only_while_recording_even_when_the_block_raises():
    world = World(1)
    with pytest.raises(RuntimeError, match="inside"), recording(world):
        assert current()["publish"] is not ORIGINALS["publish"]
        assert current()["pika.publish"] is not ORIGINALS["pika.publish"]
        raise RuntimeError("inside")
    assert current() == ORIGINALS


def test_an_unknown_library_is_refused_by_name():
    with (
        pytest.raises(ValueError, match="no instrumentation for 'celery'"),
        recording(World(1), ("celery",)),
    ):
        pass
    assert current() == ORIGINALS


def test_kombu_publishes_without_an_id_get_one_from_the_seed_and_deliveries_follow_it():
    def run(seed: int) -> list:
        world = World(seed)

        def user():
            with kombu.Connection(world.url(0)) as conn:
                queue = kombu.Queue("q", routing_key="q")
                conn.Producer().publish({"n": 1}, routing_key="q", declare=[queue])
                message = queue(conn.default_channel).get()
                message.ack()

        world.spawn("user", user)
        with recording(world, ("kombu",)):
            world.run(until=30)
        return events_of(world, "publish_invoke", "publish_ok", "deliver", "ack")

    first = run(5)
    kinds = [k for k, _ in first]
    assert kinds == ["publish_invoke", "publish_ok", "deliver", "ack"]
    ids = {d["id"] for _, d in first}
    assert len(ids) == 1 and None not in ids
    assert first[1][1]["confirmed"] is False  # no confirm_publish
    assert first[2][1]["node"] == "rabbit@node1"
    assert run(5) == first and run(6)[0][1]["id"] != first[0][1]["id"]


def test_pika_acks_nacks_and_rejects_are_recorded_by_delivery_tag():
    world = World(2)

    def user():
        url = world.url(0).rstrip("/") + "/%2F"  # pika names the default vhost %2F
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("q")
        for n in range(4):
            channel.basic_publish("", "q", b"x", pika.BasicProperties(message_id=f"m{n}"))
        tags = []
        for _ in range(4):
            method, _properties, _body = channel.basic_get("q")
            tags.append(method.delivery_tag)
        channel.basic_ack(tags[1], multiple=True)  # m0 and m1
        channel.basic_nack(tags[2], requeue=True)  # m2 back to the queue
        channel.basic_reject(tags[3], requeue=False)  # m3 dropped
        connection.close()

    world.spawn("user", user)
    with recording(world, ("pika",)):
        world.run(until=30)
    settled = [(k, d["id"]) for k, d in events_of(world, "ack", "requeue", "reject")]
    assert settled == [("ack", "m0"), ("ack", "m1"), ("requeue", "m2"), ("reject", "m3")]
    assert all(d["confirmed"] for _, d in events_of(world, "publish_ok"))


def test_on_a_live_run_the_recording_thread_is_the_actor_and_reconnects_count_per_thread(
    sim_cluster,
):
    runtime = RecordingRuntime()
    with recording(runtime, ("kombu",)):
        for _ in range(2):  # the same thread connects twice: the second is a recovery
            with kombu.Connection(sim_cluster.urls[0]) as conn:
                conn.ensure_connection(max_retries=1)
    kinds = [kind for _, kind, _ in runtime.history]
    assert kinds == ["recovery_succeeded"]
    assert time.monotonic() >= runtime.history[0][0]


def test_each_new_connection_error_is_recorded_even_where_memory_is_reused():
    """The error dedupe once compared id()s: a new exception at a freed one's address was
    taken for the same one and dropped, so digests differed between processes."""
    from scenarios.instrument import Recorder

    events = []
    recorder = Recorder(lambda kind, **d: events.append(kind), lambda: "actor", lambda: "id")
    for _ in range(50):
        recorder.error(ConnectionResetError(104, "Connection reset by peer"))
    same = ConnectionResetError(104, "once")
    recorder.error(same)
    recorder.error(same)  # the same exception seen twice (ensure, then collect): once
    assert events == ["error"] * 51
