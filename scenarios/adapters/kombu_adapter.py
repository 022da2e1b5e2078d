"""Unmodified kombu (py-amqp) playing a scenario's roles as kombu's own guide writes them.

The code below is plain kombu: the history comes from the instrumentation layer
(``instruments = ("kombu",)``, :mod:`scenarios.instrument.kombu`), which wraps kombu's public
calls for the run. It runs in virtual time by default, kombu on the world's virtual OS layer
(:mod:`broker_sim.drivers.virtual_os`), and on the live backend (real sockets, real time).

The roles mirror the bundled adapter's one for one, so a difference in verdict is a
difference between the clients: ``Producer.publish(retry=True, retry_policy=...)`` with
``confirm_publish``; consumers as ``conn.ensure(conn, drain)`` with ``on_revive``
re-consuming (kombu's failover guide), a ``ConsumerMixin``, ``SimpleQueue`` with revive, and
``autoretry`` around ``basic.get``.
"""

from __future__ import annotations

import kombu
from kombu.mixins import ConsumerMixin

from scenarios.adapters import drain_until_settled, play_style

FOREVER = {"max_retries": None, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 1.0}


class KombuAdapter:
    name = "kombu"
    backends = ("virtual", "live")
    instruments = ("kombu",)

    def publisher(self, env, spec) -> None:
        conn = kombu.Connection(
            env.urls(spec.nodes),
            heartbeat=spec.heartbeat,
            failover_strategy=spec.failover_strategy,
            transport_options={"confirm_publish": spec.confirms},
        )
        queue = _queue(env)
        producer = kombu.Producer(conn)
        conn.ensure(conn, lambda: queue(conn.default_channel).declare(), **FOREVER)()
        for n in range(spec.messages):
            try:
                producer.publish(
                    {"n": n},
                    routing_key=queue.name,
                    retry=spec.retry,
                    retry_policy=spec.retry_policy,
                    message_id=env.message_id(spec, n),
                    timeout=spec.timeout,
                    confirm_timeout=spec.confirm_timeout if spec.confirms else None,
                )
            except Exception:  # a user's loop goes on (the instrumentation records the failure)
                pass
            env.sleep(spec.interval)
        conn.release()

    def consumer(self, env, spec) -> None:
        play_style(CONSUMERS, env, spec)


def _queue(env) -> kombu.Queue:
    return kombu.Queue(
        env.queue.name, routing_key=env.queue.name, queue_arguments=env.queue.queue_arguments
    )


def _received(env, spec, message) -> None:
    if spec.work_seconds:
        env.sleep(spec.work_seconds)
    env.processed(message.properties.get("message_id"))
    if spec.ack:
        message.ack()


def _ensure_consumer(env, spec) -> None:
    """kombu's failover guide: ensure(conn, drain) re-consuming in on_revive."""
    conn = kombu.Connection(env.urls(spec.nodes), heartbeat=spec.heartbeat)
    queue = _queue(env)
    consumer = kombu.Consumer(
        conn,
        [queue],
        callbacks=[lambda body, message: _received(env, spec, message)],
        prefetch_count=spec.prefetch,
    )
    conn.ensure(conn, consumer.consume, **FOREVER)()

    def on_revive(channel) -> None:
        consumer.revive(channel)
        consumer.consume()

    conn.ensure(conn, lambda: drain_until_settled(env, conn), on_revive=on_revive, **FOREVER)()
    conn.release()


class _Worker(ConsumerMixin):
    def __init__(self, connection, env, spec) -> None:
        self.connection, self.env, self.spec = connection, env, spec

    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        return [
            Consumer(
                [_queue(self.env)],
                callbacks=[lambda body, message: _received(self.env, self.spec, message)],
                prefetch_count=self.spec.prefetch,
            )
        ]

    def on_iteration(self) -> None:
        self.should_stop = self.env.settled()


def _mixin_consumer(env, spec) -> None:
    conn = kombu.Connection(env.urls(spec.nodes), heartbeat=spec.heartbeat)
    _Worker(conn, env, spec).run()
    conn.release()


def _simple_consumer(env, spec) -> None:
    conn = kombu.Connection(env.urls(spec.nodes), heartbeat=spec.heartbeat)
    queue = None
    while not env.settled():
        try:
            if queue is None:
                conn.ensure_connection(**FOREVER)
                channel = conn.channel()
                channel.basic_qos(0, spec.prefetch, False)  # as the other styles' prefetch
                queue = conn.SimpleQueue(
                    env.queue.name, queue_args=env.queue.queue_arguments, channel=channel
                )
            try:
                message = queue.get(timeout=1)
            except queue.Empty:
                conn.heartbeat_check()
                continue
            _received(env, spec, message)
        except conn.connection_errors:
            conn.collect()
            queue = None
    conn.release()


def _autoretry_consumer(env, spec) -> None:
    conn = kombu.Connection(env.urls(spec.nodes), heartbeat=spec.heartbeat)
    queue = _queue(env)
    conn.ensure(conn, lambda: queue(conn.default_channel).declare(), **FOREVER)()

    def get(channel=None):
        return kombu.Queue(env.queue.name)(channel).get()

    fetch = conn.autoretry(get, **FOREVER)
    while not env.settled():
        message, _channel = fetch()
        if message is None:
            env.sleep(0.1)
            continue
        _received(env, spec, message)
    conn.release()


CONSUMERS = {
    "ensure": _ensure_consumer,
    "mixin": _mixin_consumer,
    "simple": _simple_consumer,
    "autoretry": _autoretry_consumer,
}
