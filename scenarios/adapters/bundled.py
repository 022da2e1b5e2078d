"""The bundled client (``client/``) playing a scenario's roles, the way its users write them:
a retrying, confirming ``Producer``; consumers in the seeds' styles (``ensure`` around a
drain loop, ``ConsumerMixin``, ``SimpleQueue`` with revive, ``autoretry`` around
``basic.get``); and the client-API probes. The client records its own history through
``env.runtime``."""

from __future__ import annotations

from client import Connection, Consumer, Producer, Queue
from client.errors import ConfigurationError, OperationalError
from client.mixins import ConsumerMixin
from scenarios.adapters import drain_until_settled, play_style
from scenarios.adapters.probes import PROBES

#: how the consumers retry (the seeds' values, unbounded: the scenario's duration bounds it)
FOREVER = {"max_retries": None, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 1.0}


class BundledAdapter:
    name = "bundled"

    # -- publisher ---------------------------------------------------------------------------

    def publisher(self, env, spec) -> None:
        options = {"confirm_publish": spec.confirms, "confirm_timeout": spec.confirm_timeout}
        conn = Connection(
            env.urls(spec.nodes),
            heartbeat=spec.heartbeat,
            runtime=env.runtime,
            failover_strategy=spec.failover_strategy,
            transport_options=options,
        )
        producer = Producer(conn)
        queue = env.queue
        declare = conn.ensure(conn, lambda: queue(conn.default_channel).declare(), **FOREVER)
        declare()
        for n in range(spec.messages):
            try:
                producer.publish(
                    {"n": n},
                    routing_key=queue.name,
                    retry=spec.retry,
                    retry_policy=dict(spec.retry_policy),
                    message_id=env.message_id(spec, n),
                    timeout=spec.timeout,
                )
            except (OSError, OperationalError, ConfigurationError):
                pass  # the client recorded publish_fail; a user's loop goes on too
            env.sleep(spec.interval)
        conn.collect()

    # -- consumers ---------------------------------------------------------------------------

    def consumer(self, env, spec) -> None:
        play_style(CONSUMERS, env, spec)

    def probe(self, env, probe) -> None:
        PROBES[probe.name](env, **probe.params)


def _connection(env, spec) -> Connection:
    return Connection(env.urls(spec.nodes), heartbeat=spec.heartbeat, runtime=env.runtime)


def _handle(env, spec, message) -> None:
    if spec.work_seconds:
        env.sleep(spec.work_seconds)
    env.processed(message.properties.get("message_id"))
    if spec.ack:
        message.ack()


def _ensure_consumer(env, spec) -> None:
    """Seed 001: ``conn.ensure(conn, consume)`` around a drain_events loop."""
    conn = _connection(env, spec)
    consumer = Consumer(
        conn,
        [env.queue],
        callbacks=[lambda body, message: _handle(env, spec, message)],
        prefetch_count=spec.prefetch,
    )
    conn.ensure(conn, consumer.consume, **FOREVER)()

    conn.ensure(conn, lambda: drain_until_settled(env, conn), **FOREVER)()
    conn.collect()


class _Worker(ConsumerMixin):
    def __init__(self, connection, env, spec) -> None:
        self.connection, self.env, self.spec = connection, env, spec

    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        return [
            Consumer(
                [self.env.queue],
                callbacks=[lambda body, message: _handle(self.env, self.spec, message)],
                prefetch_count=self.spec.prefetch,
            )
        ]

    def on_iteration(self) -> None:
        self.should_stop = self.env.settled()


def _mixin_consumer(env, spec) -> None:
    conn = _connection(env, spec)
    _Worker(conn, env, spec).run()
    conn.collect()


def _simple_consumer(env, spec) -> None:
    """SimpleQueue.get in a loop; on a connection error, reconnect and open it again (the
    robust-consumer article's revive)."""
    conn = _connection(env, spec)
    queue = None
    while not env.settled():
        try:
            if queue is None:
                conn.ensure_connection(**FOREVER)
                queue = conn.SimpleQueue(
                    env.queue.name,
                    queue_args=env.queue.queue_arguments,
                    channel=_prefetching_channel(conn, spec),
                )
            try:
                message = queue.get(timeout=1)
            except queue.Empty:
                conn.heartbeat_check()
                continue
            _handle(env, spec, message)
        except conn.connection_errors:
            conn.collect()
            queue = None
    conn.collect()


def _prefetching_channel(conn, spec):
    """A channel with the spec's prefetch, set before the SimpleQueue consumes on it (what
    a user does to bound it; kombu's SimpleQueue sets none). Without a bound, a hung node's
    consumer is handed everything published until its peers see the hang (net_ticktime)."""
    channel = conn.channel()
    channel.basic_qos(0, spec.prefetch, False)
    return channel


def _autoretry_consumer(env, spec) -> None:
    """``conn.autoretry`` around basic.get, polling."""
    conn = _connection(env, spec)
    get = conn.autoretry(lambda channel: Queue(env.queue.name)(channel).get(), **FOREVER)
    conn.ensure(conn, lambda: env.queue(conn.default_channel).declare(), **FOREVER)()
    while not env.settled():
        message = get()
        if message is None:
            env.sleep(0.1)
            continue
        _handle(env, spec, message)
    conn.collect()


CONSUMERS = {
    "ensure": _ensure_consumer,
    "mixin": _mixin_consumer,
    "simple": _simple_consumer,
    "autoretry": _autoretry_consumer,
}
