"""Deliberately weakened clients: the bundled client with one failover promise broken
each, for the property-based tests to catch (tests/scenarios/test_strategies.py).

- ``forgetful``: its producer swallows a connection error of an in-flight publish and
  reports it done, so a publish whose confirm was lost in a reconnect is never republished
  (and the application is told it was confirmed).
- ``no-reconsume``: its consumer never re-registers a consumer the broker cancelled (a
  classic queue's home node went down), so it consumes nothing after the queue is back.
- ``ack-first``: its consumer acks a message as it arrives and processes it afterwards, so
  a worker that dies mid-message (``crash``) has acked work it never did: the broker
  forgets the message and the restarted worker never sees it.
"""

from __future__ import annotations

from client import Connection, Consumer, Producer
from client.errors import CONNECTION_ERRORS
from scenarios.adapters import drain_until_settled
from scenarios.adapters.bundled import FOREVER, BundledAdapter


class ForgetfulProducer(Producer):
    def _publish_once(self, *args) -> None:
        try:
            super()._publish_once(*args)
        except CONNECTION_ERRORS:
            self.connection.collect()  # the bug: forget the message, report success


class Forgetful(BundledAdapter):
    name = "forgetful"

    def publisher(self, env, spec) -> None:
        conn = Connection(
            env.urls(spec.nodes), heartbeat=spec.heartbeat, runtime=env.runtime,
            transport_options={"confirm_publish": True, "confirm_timeout": spec.confirm_timeout},
        )  # fmt: skip
        producer = ForgetfulProducer(conn)
        conn.ensure(conn, lambda: env.queue(conn.default_channel).declare(), **FOREVER)()
        for n in range(spec.messages):
            producer.publish(
                {"n": n},
                routing_key=env.queue.name,
                retry=True,
                retry_policy=dict(spec.retry_policy),
                message_id=env.message_id(spec, n),
            )
            env.sleep(spec.interval)
        conn.collect()


class NoReconsume(BundledAdapter):
    name = "no-reconsume"

    def consumer(self, env, spec) -> None:
        conn = Connection(env.urls(spec.nodes), heartbeat=spec.heartbeat, runtime=env.runtime)

        def handle(body, message) -> None:
            message.ack()

        consumer = Consumer(conn, [env.queue], callbacks=[handle], prefetch_count=spec.prefetch)

        def consume() -> None:
            consumer.consume()
            consumer.channel.retry_cancelled = lambda: None  # the bug: a cancel is final

        def revive(channel) -> None:
            consumer.revive(channel)
            consume()

        conn.ensure(conn, consume, **FOREVER)()

        conn.ensure(conn, lambda: drain_until_settled(env, conn), on_revive=revive, **FOREVER)()
        conn.collect()


class AckFirst(BundledAdapter):
    name = "ack-first"

    def consumer(self, env, spec) -> None:
        conn = Connection(env.urls(spec.nodes), heartbeat=spec.heartbeat, runtime=env.runtime)

        def handle(body, message) -> None:
            message.ack()  # the bug: the ack goes before the work
            env.sleep(spec.work_seconds)
            env.processed(message.properties.get("message_id"))

        consumer = Consumer(conn, [env.queue], callbacks=[handle], prefetch_count=spec.prefetch)

        def revive(channel) -> None:
            consumer.revive(channel)
            consumer.consume()

        conn.ensure(conn, consumer.consume, **FOREVER)()
        conn.ensure(conn, lambda: drain_until_settled(env, conn), on_revive=revive, **FOREVER)()
        conn.collect()
