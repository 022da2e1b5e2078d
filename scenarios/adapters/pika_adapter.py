"""Unmodified pika (``BlockingConnection``) playing a scenario's roles as pika's own
documentation writes them; the history comes from the instrumentation layer
(``instruments = ("pika",)``, :mod:`scenarios.instrument.pika`).

pika has no failover or retry of its own: its README's recovery recipe is a loop around
``BlockingConnection(parameters_list)`` that tries the listed brokers in turn and starts
over on ``AMQPConnectionError``. Both roles use that loop, waiting the scenario's retry
interval between two rounds:

- publisher: ``confirm_delivery()`` when the scenario confirms, then ``basic_publish`` with
  the message id; a connection error re-publishes the same message on the next connection
  when the scenario retries (at-least-once), and moves on to the next message when it does
  not. pika's ``basic_publish`` waits for the confirm with no timeout of its own: only its
  heartbeat checker ends a wait on a hung node.
- consumer: ``basic_qos`` + ``basic_consume`` and ``process_data_events(time_limit=1)`` until
  the run settles (every consumer style plays the same, pika has one way to consume);
  ``simple`` and ``autoretry`` styles poll with ``basic_get``.
"""

from __future__ import annotations

import pika
import pika.exceptions

from scenarios.adapters import play_style

RECOVERABLE = (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosedByBroker)


def parameters(env, nodes, heartbeat: int) -> list[pika.URLParameters]:
    """One URLParameters per node of the role's failover list, with the heartbeat."""
    return [
        pika.URLParameters(f"{url.rstrip('/')}/%2F?heartbeat={heartbeat}&connection_attempts=1")
        for url in env.urls(nodes).split(";")
    ]


def _pause(env, spec_policy: dict) -> None:
    env.sleep(spec_policy.get("interval_start", 1.0) or 0.2)


def _abandon(connection) -> None:
    """After a channel error (a 404 while a queue's node is down) the connection is still
    open: close it before the next round, as a careful pika user does."""
    if connection is not None and connection.is_open:
        try:
            connection.close()
        except pika.exceptions.AMQPError:
            pass


def _declare(env, channel) -> None:
    channel.queue_declare(env.queue.name, durable=True, arguments=env.queue.queue_arguments)


class PikaAdapter:
    name = "pika"
    backends = ("virtual", "live")
    instruments = ("pika",)

    def publisher(self, env, spec) -> None:
        params = parameters(env, spec.nodes, spec.heartbeat)
        n, connection = 0, None
        while n < spec.messages and not env.out_of_time():
            try:
                connection = pika.BlockingConnection(params)
                channel = connection.channel()
                if spec.confirms:
                    channel.confirm_delivery()
                _declare(env, channel)
                while n < spec.messages:
                    properties = pika.BasicProperties(
                        message_id=env.message_id(spec, n),
                        delivery_mode=pika.DeliveryMode.Persistent,  # as kombu's default
                    )
                    try:
                        channel.basic_publish("", env.queue.name, b'{"n": %d}' % n, properties)
                    except RECOVERABLE:
                        n += 0 if spec.retry else 1  # retry: the same message again
                        raise
                    n += 1
                    connection.sleep(spec.interval)
                connection.close()
            except RECOVERABLE:
                _abandon(connection)
                _pause(env, spec.retry_policy)

    def consumer(self, env, spec) -> None:
        play_style(CONSUMERS, env, spec)


def _handle(env, spec, channel, method, properties) -> None:
    if spec.work_seconds:
        env.sleep(spec.work_seconds)
    env.processed(properties.message_id)
    if spec.ack:
        channel.basic_ack(method.delivery_tag)


def _recovering(env, spec, consume) -> None:
    """pika's README recovery loop: connect over the failover list, declare, ``consume``
    until the run settles; on a connection or channel error close what is left and start
    over a second later."""
    params = parameters(env, spec.nodes, spec.heartbeat)
    connection = None
    while not env.settled():
        try:
            connection = pika.BlockingConnection(params)
            channel = connection.channel()
            _declare(env, channel)
            consume(connection, channel)
            connection.close()
        except RECOVERABLE:
            _abandon(connection)
            env.sleep(1)


def _push_consumer(env, spec) -> None:
    """basic_consume, and process_data_events until the run settles."""

    def consume(connection, channel) -> None:
        channel.basic_qos(prefetch_count=spec.prefetch)
        channel.basic_consume(
            env.queue.name,
            lambda ch, method, props, body: _handle(env, spec, ch, method, props),
            auto_ack=not spec.ack,
        )
        while not env.settled():
            connection.process_data_events(time_limit=1)

    _recovering(env, spec, consume)


def _polling_consumer(env, spec) -> None:
    """basic_get in a loop."""

    def consume(connection, channel) -> None:
        while not env.settled():
            method, properties, _body = channel.basic_get(env.queue.name, not spec.ack)
            if method is None:
                connection.sleep(0.1)
                continue
            _handle(env, spec, channel, method, properties)

    _recovering(env, spec, consume)


CONSUMERS = {
    "ensure": _push_consumer,
    "mixin": _push_consumer,
    "simple": _polling_consumer,
    "autoretry": _polling_consumer,
}
