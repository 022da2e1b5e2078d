"""Client-API probes for the bundled client: checks that are not a publish/consume pipeline.
Each records one ``probe`` event whose keys become figures ``probe.<key>`` (numbers, so a
scenario's thresholds can judge them). Faults scheduled at 1 s find the probe connected."""

from __future__ import annotations

from client import Connection, Queue, pools
from client.errors import (
    IRRECOVERABLE_ERRORS,
    ConfigurationError,
    NotFound,
    OperationalError,
    PreconditionFailed,
)

FAULTS_AT = 1.0  # the scenarios' faults fire here; probes act after it


def _after_faults(env) -> None:
    env.sleep(FAULTS_AT + 0.5)
    env.wait_for_faults(FAULTS_AT)  # on real nodes a fault takes a CLI call's time


def connect(env, strategy: str = "round-robin", finite: bool = False) -> None:
    """Connect through every node's URL after the first ones died: which node answers."""
    _after_faults(env)
    chosen = (lambda hosts: iter(list(hosts)[:1])) if finite else strategy
    conn = Connection(env.urls(range(env.nodes)), runtime=env.runtime, failover_strategy=chosen)
    try:
        conn.connect()
    except ConnectionError as exc:
        env.record("probe", raised=1, names_strategy=int("failover strategy" in str(exc)))
        return
    env.record("probe", raised=0, node=env.node_index(conn.current.port))
    conn.collect()


def ensure_accounting(env, max_retries=None, timeout=None) -> None:
    """``ensure`` on a connection whose every node is stopped at 1 s: how many retries it
    spends, whether it gives up, how long it took; a node may come back meanwhile."""
    conn = Connection(env.urls(range(env.nodes)), runtime=env.runtime)
    conn.connect()
    _after_faults(env)
    retries = []
    started = env.clock()
    fun = conn.ensure(
        conn,
        lambda: Queue("probe-q")(conn.default_channel).declare(),
        errback=lambda exc, interval: retries.append(interval),
        max_retries=max_retries,
        interval_start=0.5,
        interval_step=0.5,
        interval_max=2,
        timeout=timeout,
    )
    try:
        fun()
        raised = 0
    except OperationalError:
        raised = 1
    env.record("probe", retries=len(retries), raised=raised, elapsed=env.clock() - started)
    conn.collect()


def irrecoverable(env, code: int = 404) -> None:
    """``ensure(max_retries=None)`` around a call the broker refuses for good: raised at once,
    unchanged, after one call."""
    urls = env.urls(range(env.nodes))
    admin = Connection(urls, runtime=env.runtime)
    Queue("ttl-q", queue_arguments={"x-message-ttl": 10}).declare(admin.default_channel)
    admin.collect()
    conn = Connection(urls, runtime=env.runtime)
    calls = []

    def refused():
        calls.append(1)
        channel = conn.default_channel
        if code == 404:
            channel.declare_queue(Queue("no-such-queue"), passive=True)
        else:
            Queue("ttl-q", queue_arguments={"x-message-ttl": 20}).declare(channel)

    expected = {404: NotFound, 406: PreconditionFailed}[code]
    try:
        conn.ensure(conn, refused, max_retries=None, interval_start=0.5)()
        outcome = 0
    except IRRECOVERABLE_ERRORS as exc:
        outcome = 1 if isinstance(exc, expected) else 2
    env.record("probe", calls=len(calls), raised_unchanged=outcome)
    conn.collect()


BAD_CONFIGS = (
    ({"hostname": "amqp://h:1;redis://h"}, "redis"),
    ({"hostname": "amqp://h:1", "failover_strategy": "random"}, "failover_strategy"),
    ({"hostname": "amqp://h:1", "heartbeat": -1}, "heartbeat"),
    ({"hostname": "amqp://h:99999"}, "99999"),
    ({"hostname": "amqp://h:1", "connect_timeout": 0}, "connect_timeout"),
)


def bad_config(env) -> None:
    """Each bad setting is refused when the Connection is built, naming the bad part; a
    busy-looping retry policy is refused when ensure is set up."""
    named = 0
    for kwargs, part in BAD_CONFIGS:
        try:
            Connection(runtime=env.runtime, **kwargs)
        except ConfigurationError as exc:
            named += part in str(exc)
    conn = Connection(env.urls([0]), runtime=env.runtime)
    try:
        conn.ensure(conn, lambda: None, interval_start=0, interval_step=0, interval_max=0)
    except ConfigurationError as exc:
        named += "busy loop" in str(exc)
    env.record("probe", named=named, cases=len(BAD_CONFIGS) + 1)


def pooled(env, producers: int = 2, rounds: int = 6) -> None:
    """A producer pool across a node's outage: every publish lands, every producer and
    connection goes back to its pool."""
    url = env.urls(range(env.nodes))
    options = {"confirm_publish": True}
    conn = Connection(url, runtime=env.runtime, transport_options=options)
    pool = pools.ProducerPool(pools.ConnectionPool(conn, limit=producers), limit=producers)
    policy = {"max_retries": None, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 1}
    queue = env.queue
    for n in range(rounds):
        with pool.acquire(block=True) as producer:
            producer.publish(
                {"n": n},
                routing_key=queue.name,
                declare=[queue],
                retry=True,
                retry_policy=policy,
                message_id=f"pool-{n}",
            )
        env.sleep(1)
    env.record("probe", leased=pool.used, connections_leased=pool.connections.used)


PROBES = {
    "connect": connect,
    "ensure-accounting": ensure_accounting,
    "irrecoverable": irrecoverable,
    "bad-config": bad_config,
    "pool": pooled,
}
