"""Unmodified kombu (py-amqp) playing a scenario's roles as kombu's own guide writes them,
recording the history events kombu does not record itself. kombu runs on the live backend
(real sockets, real time) until it runs in virtual time (a later issue).

The roles mirror the bundled adapter's one for one, so a difference in verdict is a
difference between the clients: ``Producer.publish(retry=True, retry_policy=...)`` with
``confirm_publish``; consumers as ``conn.ensure(conn, drain)`` with ``on_revive``
re-consuming (kombu's failover guide), a ``ConsumerMixin``, ``SimpleQueue`` with revive, and
``autoretry`` around ``basic.get``.
"""

from __future__ import annotations

import kombu
from kombu.mixins import ConsumerMixin

from scenarios.adapters import play_style

FOREVER = {"max_retries": None, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 1.0}


class KombuAdapter:
    name = "kombu"
    backends = ("live",)

    def publisher(self, env, spec) -> None:
        conn = kombu.Connection(
            env.urls(spec.nodes),
            heartbeat=spec.heartbeat,
            failover_strategy=spec.failover_strategy,
            transport_options={"confirm_publish": spec.confirms},
        )
        queue = _queue(env)
        producer = kombu.Producer(conn)
        policy = {**spec.retry_policy, "on_revive": lambda channel: _revived(env)}
        conn.ensure(conn, lambda: queue(conn.default_channel).declare(), **FOREVER)()
        for n in range(spec.messages):
            message_id = env.message_id(spec, n)
            env.record("publish_invoke", id=message_id, routing_key=queue.name)
            try:
                producer.publish(
                    {"n": n},
                    routing_key=queue.name,
                    retry=spec.retry,
                    retry_policy=policy,
                    message_id=message_id,
                    timeout=spec.timeout,
                    confirm_timeout=spec.confirm_timeout if spec.confirms else None,
                )
            except Exception as exc:  # a user's loop goes on; the outcome is recorded
                env.record("publish_fail", id=message_id, error=type(exc).__name__)
            else:
                env.record("publish_ok", id=message_id, confirmed=spec.confirms)
            env.sleep(spec.interval)
        conn.release()

    def consumer(self, env, spec) -> None:
        play_style(CONSUMERS, env, spec)


def _queue(env) -> kombu.Queue:
    return kombu.Queue(
        env.queue.name, routing_key=env.queue.name, queue_arguments=env.queue.queue_arguments
    )


def _revived(env) -> None:
    env.record("recovery_succeeded", details=[])


def _received(env, spec, message) -> None:
    env.record(
        "deliver",
        id=message.properties.get("message_id"),
        redelivered=bool(message.delivery_info.get("redelivered")),
    )
    if spec.work_seconds:
        env.sleep(spec.work_seconds)
    if spec.ack:
        message.ack()
        env.record("ack", id=message.properties.get("message_id"), stale=False)


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
        _revived(env)

    def drain() -> None:
        while not env.settled():
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                conn.heartbeat_check()

    conn.ensure(conn, drain, on_revive=on_revive, **FOREVER)()
    conn.release()


class _Worker(ConsumerMixin):
    def __init__(self, connection, env, spec) -> None:
        self.connection, self.env, self.spec = connection, env, spec
        self.connects = 0

    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        return [
            Consumer(
                [_queue(self.env)],
                callbacks=[lambda body, message: _received(self.env, self.spec, message)],
                prefetch_count=self.spec.prefetch,
            )
        ]

    def on_connection_revived(self) -> None:
        self.connects += 1
        if self.connects > 1:
            _revived(self.env)

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
                queue = conn.SimpleQueue(env.queue.name, queue_args=env.queue.queue_arguments)
            try:
                message = queue.get(timeout=1)
            except queue.Empty:
                conn.heartbeat_check()
                continue
            _received(env, spec, message)
        except conn.connection_errors:
            conn.collect()
            queue = None
            _revived(env)
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
