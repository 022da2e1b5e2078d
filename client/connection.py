"""``Connection``: kombu's connection and failover API (kombu/connection.py), done right.

Where kombu is wrong, this is right (each point has a test in tests/client):
- every URL of a ``;`` list, the failover strategy and the retry intervals are validated
  when the connection is built, and each host keeps its own settings;
- one connect attempt tries every host; ``ensure_connection`` and ``ensure`` are bounded by
  ``max_retries`` *and* an optional ``timeout`` for the whole retry, and their sleeps wake
  on ``stop`` (a threading.Event);
- waits are bounded (handshake, RPC, confirm, close); a dead connection is dropped without
  waiting for a close-ok;
- an idle ``drain_events(timeout)`` raises ``socket.timeout`` as kombu does, but ``ensure``
  does not mistake it for a connection failure;
- after a reconnect the recorded topology is replayed and every channel recovers its
  prefetch, confirm mode and consumers, so the seeds' ``conn.ensure(conn, consume)`` keeps
  consuming.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from client.amqp import AMQPConnection
from client.channel import RecoverableChannel, Topology
from client.errors import (
    CHANNEL_ERRORS,
    CONNECTION_ERRORS,
    AMQPChannelError,
    ConfigurationError,
    OperationalError,
)
from client.retry import (
    FAILOVER_STRATEGIES,
    LinearBackoff,
    RetryBudget,
    check_not_busy,
    shuffle,
)
from client.retry import failover_strategy as strategy_for
from client.runtime import REAL
from client.url import HostSpec, parse_hosts

#: What ``Connection.on`` accepts.
EVENTS = (
    "recovery_started",
    "recovery_succeeded",
    "recovery_failed",
    "blocked",
    "unblocked",
    "consumer_cancelled",
    "consumer_recovered",
    "publish_unknown",
)


class DrainTimeout(TimeoutError):
    """``drain_events`` found nothing to deliver: not a connection failure."""


class Transport:
    """What ``conn.transport`` answers (kombu's transport object, reduced)."""

    driver_type = driver_name = "amqp"
    connection_errors = CONNECTION_ERRORS
    channel_errors = CHANNEL_ERRORS


class Connection:
    connection_errors = CONNECTION_ERRORS
    recoverable_connection_errors = CONNECTION_ERRORS
    channel_errors = CHANNEL_ERRORS
    recoverable_channel_errors = (AMQPChannelError,)

    def __init__(
        self,
        hostname: str | list[str] = "amqp://guest:guest@localhost:5672//",
        userid: str | None = None,
        password: str | None = None,
        virtual_host: str | None = None,
        port: int | None = None,
        ssl: bool | dict = False,
        transport: str | None = None,
        connect_timeout: float = 5.0,
        transport_options: dict | None = None,
        login_method: str = "PLAIN",
        heartbeat: float = 0,
        failover_strategy: str | Callable = "round-robin",
        alternates: list[str] | None = None,
        stop: threading.Event | None = None,
        runtime=None,
        **kwargs,
    ) -> None:
        if transport not in (None, "amqp", "pyamqp", "amqps"):
            raise ConfigurationError(
                f"transport {transport!r} is not supported (Warren's client speaks AMQP 0-9-1 only)"
            )
        if connect_timeout is not None and connect_timeout <= 0:
            raise ConfigurationError(f"connect_timeout must be > 0, got {connect_timeout}")
        if heartbeat is None or heartbeat < 0:
            raise ConfigurationError(f"heartbeat must be >= 0, got {heartbeat}")
        urls = hostname if isinstance(hostname, list) else [hostname]
        urls = [u for item in urls for u in item.split(";")] + list(alternates or [])
        defaults = {
            k: v
            for k, v in (
                ("userid", userid),
                ("password", password),
                ("virtual_host", virtual_host),
                ("port", port),
            )
            if v
        }
        self.hosts: list[HostSpec] = parse_hosts(urls, **defaults)
        self._init_args = dict(
            userid=userid,
            password=password,
            virtual_host=virtual_host,
            port=port,
            ssl=ssl,
            transport=transport,
            connect_timeout=connect_timeout,
            transport_options=transport_options,
            login_method=login_method,
            heartbeat=heartbeat,
            failover_strategy=failover_strategy,
        )
        self._urls = urls
        self.runtime = runtime or REAL  # the virtual-time driver passes its own
        strategy = strategy_for(failover_strategy)
        if strategy is shuffle:  # its draws come from the runtime (the world's seed)
            self._hosts_iter = shuffle(self.hosts, self.runtime.random())
        else:
            self._hosts_iter = strategy(self.hosts)
        self.ssl, self.login_method = ssl, login_method
        self.connect_timeout, self.heartbeat = connect_timeout, heartbeat
        self.transport_options = dict(transport_options or {})
        self.stop = stop or threading.Event()
        self.transport = Transport()
        self.topology = Topology()
        self.current: HostSpec | None = None
        self._amqp: AMQPConnection | None = None
        self._channels: list[RecoverableChannel] = []
        self._default: RecoverableChannel | None = None
        self.errors: list[str] = []
        self.listeners: dict[str, list[Callable]] = {event: [] for event in EVENTS}
        self._last_cancel_retry = 0.0

    # -- recovery listeners (RabbitMQ Java client's RecoveryListener, aio-pika callbacks) --

    def on(self, event: str, callback: Callable) -> None:
        """Call ``callback(*details)`` on ``event``: one of EVENTS."""
        if event not in self.listeners:
            raise ConfigurationError(f"unknown event {event!r}: one of {', '.join(EVENTS)}")
        self.listeners[event].append(callback)

    def notify(self, event: str, *details) -> None:
        self.runtime.record(event, details=list(details))
        for callback in self.listeners[event]:
            callback(*details)

    def broker(self) -> str:
        """host:port of the broker this connection is on now (for the history)."""
        return f"{self.current.hostname}:{self.current.port}" if self.current else "-"

    # -- connecting -------------------------------------------------------------------------

    def connect(self) -> Connection:
        """One attempt that tries every host once (kombu tries only the next one)."""
        self._attempt()
        return self

    def _attempt(self) -> None:
        failures = []
        for _ in range(len(self.hosts)):
            host = next(self._hosts_iter)
            try:
                amqp = AMQPConnection(
                    host.hostname,
                    host.port,
                    host.userid,
                    host.password,
                    host.virtual_host,
                    heartbeat=int(host.options.get("heartbeat", self.heartbeat)),
                    connect_timeout=float(
                        host.options.get("connect_timeout", self.connect_timeout)
                    ),
                    login_method=self.login_method,
                    ssl=self.ssl or host.ssl,  # explicit options win over amqps://
                    clock=self.runtime.monotonic,
                    transport_factory=self.runtime.connect,
                ).connect()
            except (*CONNECTION_ERRORS, ConfigurationError) as exc:
                failures.append(f"{host.as_url()}: {exc!r}")
                continue
            self._adopt(amqp, host)
            return
        self.errors = failures
        raise ConnectionRefusedError("no broker of the list answered: " + "; ".join(failures))

    def _adopt(self, amqp: AMQPConnection, host: HostSpec) -> None:
        """A new connection: replay the topology, then recover every channel."""
        recovering = self.current is not None
        self.collect()
        self._amqp, self.current = amqp, host
        if self.transport_options.get("background_heartbeat"):
            amqp.start_heartbeat_thread()
        amqp.on_blocked = lambda reason: self.notify("blocked", reason)
        amqp.on_unblocked = lambda: self.notify("unblocked")
        if recovering:
            self.notify("recovery_started", host.as_url())
        renames = self.topology.replay(amqp.channel()) if self.topology.entries else {}
        for channel in list(self._channels):
            channel.rebind(amqp, renames)
        if recovering:
            self.notify("recovery_succeeded", host.as_url())

    def ensure_connection(
        self,
        errback: Callable | None = None,
        max_retries: int | None = None,
        interval_start: float = 2,
        interval_step: float = 2,
        interval_max: float = 30,
        callback: Callable | None = None,
        timeout: float | None = None,
        backoff=None,
    ) -> Connection:
        """Connect, retrying on the kombu schedule (or ``backoff``, e.g. ExponentialBackoff)
        within ``max_retries`` and ``timeout``."""
        if self.connected:
            return self
        backoff = backoff or LinearBackoff(interval_start, interval_step, interval_max)
        budget = RetryBudget(max_retries, timeout, clock=self.runtime.monotonic)
        check_not_busy(backoff, budget)
        budget.start()
        for delay in backoff.delays():
            try:
                self._attempt()
                return self
            except (*CONNECTION_ERRORS,) as exc:
                if not budget.allows(delay) or self.stop.is_set():
                    self.notify("recovery_failed", repr(exc))
                    raise OperationalError(
                        f"could not connect after {budget.used + 1} attempt(s): {exc}"
                    ) from exc
                if errback is not None:
                    errback(exc, delay)
                if callback is not None:
                    callback()
                budget.spend()
                if not self.runtime.sleep(delay, self.stop):
                    raise OperationalError("stopped while reconnecting") from exc
        raise AssertionError("unreachable: the backoff schedule is infinite")

    def revive_channel(self, channel: RecoverableChannel) -> None:
        """A channel found its connection gone (or its channel closed): get it back."""
        if not self.connected:
            self.ensure_connection(
                max_retries=3, interval_start=0.1, interval_step=0.5, interval_max=2
            )
        elif channel.low is None or channel.low.error is not None:
            channel.rebind(self._amqp)

    # -- channels -----------------------------------------------------------------------------

    def channel(self) -> RecoverableChannel:
        channel = RecoverableChannel(self)
        self._channels.append(channel)
        if self.connected:
            channel.rebind(self._amqp)
        return channel

    def forget_channel(self, channel: RecoverableChannel) -> None:
        if channel in self._channels:
            self._channels.remove(channel)
        if channel is self._default:
            self._default = None

    @property
    def default_channel(self) -> RecoverableChannel:
        self.ensure_connection(
            max_retries=self.transport_options.get("max_retries", 3),
            interval_start=0.2,
            interval_step=0.5,
            interval_max=2,
            timeout=self.transport_options.get("timeout"),
        )
        if self._default is None:
            self._default = self.channel()
        return self._default

    # -- events ---------------------------------------------------------------------------------

    def drain_events(self, timeout: float | None = None) -> None:
        """Deliver messages to consumers; raise socket.timeout if none came within timeout."""
        if not self.connected:
            raise ConnectionResetError("not connected")
        now = self.runtime.monotonic()
        if now - self._last_cancel_retry >= 1.0:  # consumers the broker cancelled
            self._last_cancel_retry = now
            for channel in list(self._channels):
                channel.retry_cancelled()
        if not self._amqp.drain_events(timeout if timeout is not None else 3600.0):
            raise DrainTimeout("timed out")

    def heartbeat_check(self, rate: int = 2) -> None:
        if self._amqp is not None:
            self._amqp._tick_heartbeats()

    # -- ensure ---------------------------------------------------------------------------------

    def ensure(
        self,
        obj,
        fun: Callable,
        errback: Callable | None = None,
        max_retries: int | None = None,
        interval_start: float = 1,
        interval_step: float = 1,
        interval_max: float = 1,
        on_revive: Callable | None = None,
        retry_errors=None,
        timeout: float | None = None,
        backoff=None,
    ) -> Callable:
        """Wrap ``fun`` so connection failures reconnect (with recovery) and retry."""
        backoff = backoff or LinearBackoff(interval_start, interval_step, interval_max)
        check_not_busy(backoff, RetryBudget(max_retries, timeout))
        retry_on = tuple(retry_errors or ()) + CONNECTION_ERRORS

        def ensured(*args, **kwargs):
            started = self.runtime.monotonic()
            budget = None  # set up at the first failure: the common call never needs it
            while True:
                try:
                    return fun(*args, **kwargs)
                except DrainTimeout:
                    raise
                except retry_on as exc:
                    failure = exc
                if budget is None:
                    budget = RetryBudget(max_retries, timeout, clock=self.runtime.monotonic)
                    budget.started, delays = started, backoff.delays()
                delay = next(delays)
                self.runtime.record("error", error=type(failure).__name__, retry=budget.used + 1)
                if not budget.allows(delay) or self.stop.is_set():
                    raise OperationalError(
                        f"{failure!r} (gave up after {budget.used} retries)"
                    ) from failure
                budget.spend()
                if errback is not None:
                    errback(failure, delay)
                if not self.runtime.sleep(delay, self.stop):
                    raise OperationalError("stopped while retrying") from failure
                self._reconnect(budget)  # its own failure ends the retries
                channel = self.default_channel
                if on_revive is not None:
                    on_revive(channel)
                if obj is not self and hasattr(obj, "revive"):
                    obj.revive(channel)

        ensured.__name__ = getattr(fun, "__name__", "ensured")
        return ensured

    def _reconnect(self, budget: RetryBudget) -> None:
        self.collect()
        remaining = budget.remaining_time()
        self.ensure_connection(
            max_retries=3, interval_start=0.05, interval_step=0.2, interval_max=1, timeout=remaining
        )

    def autoretry(self, fun: Callable, channel=None, **ensure_options) -> Callable:
        def with_channel(*args, **kwargs):
            return fun(*args, channel=channel or self.default_channel, **kwargs)

        return self.ensure(self, with_channel, **ensure_options)

    # -- state, cloning and closing ------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._amqp is not None and self._amqp.connected

    @property
    def connection(self) -> AMQPConnection | None:
        return self._amqp

    def as_uri(self, include_password: bool = False) -> str:
        host = self.current or self.hosts[0]
        return host.as_url(mask=None if include_password else "**")

    def clone(self, **kwargs) -> Connection:
        return Connection(self._urls, **{**self._init_args, **kwargs})

    def collect(self) -> None:
        """Drop the connection without a handshake (dead peers never answer)."""
        if self._amqp is not None:
            self._amqp.collect()
            self._amqp = None

    def close(self) -> None:
        if self._amqp is not None and self._amqp.connected:
            self._amqp.close(timeout=self.transport_options.get("close_timeout", 2.0))
        self.collect()

    release = close

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Connection: {self.as_uri()} at {id(self):#x}>"

    # -- kombu helpers --------------------------------------------------------------------------

    def Pool(self, limit: int | None = None, preload: int | None = None):  # noqa: N802
        from client.pools import ConnectionPool

        return ConnectionPool(self, limit)

    def ChannelPool(self, limit: int | None = None, preload: int | None = None):  # noqa: N802
        from client.pools import ChannelPool

        return ChannelPool(self, limit)

    def SimpleQueue(
        self,
        name: str,
        no_ack=None,
        queue_opts=None,  # noqa: N802
        exchange_opts=None,
        channel=None,
        **kwargs,
    ):
        from client.simple import SimpleQueue

        return SimpleQueue(self, name, no_ack, queue_opts, exchange_opts, **kwargs)

    def SimpleBuffer(self, name: str, **kwargs):  # noqa: N802 (kombu's name)
        from client.simple import SimpleBuffer

        kwargs.pop("channel", None)
        return SimpleBuffer(self, name, **kwargs)

    def Producer(self, channel=None, *args, **kwargs):  # noqa: N802 (kombu's name)
        from client.messaging import Producer

        return Producer(channel or self, *args, **kwargs)

    def Consumer(self, queues=None, channel=None, *args, **kwargs):  # noqa: N802
        from client.messaging import Consumer

        return Consumer(channel or self, queues, *args, **kwargs)


BrokerConnection = Connection
#: kombu.connection.failover_strategies
failover_strategies = dict(FAILOVER_STRATEGIES)
