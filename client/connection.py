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
    IRRECOVERABLE_ERRORS,
    RECOVERABLE_CHANNEL_ERRORS,
    ConfigurationError,
    OperationalError,
    PublishTimeout,
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
    recoverable_channel_errors = RECOVERABLE_CHANNEL_ERRORS

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
        if heartbeat is not None and heartbeat < 0:
            raise ConfigurationError(f"heartbeat must be >= 0, got {heartbeat}")
        heartbeat = heartbeat or 0  # py-amqp: None asks for no heartbeats, as 0 does
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
            runtime=runtime,  # a clone lives in the same (virtual or real) world
            stop=stop,
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
        self._strategy = strategy_for(failover_strategy)
        self._hosts_iter = self._new_host_cycle()
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
        self._last_cancel_retry = float("-inf")
        self._ensuring = 0  # > 0 while ensure() runs its function: it owns the retrying

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

    def _new_host_cycle(self):
        if self._strategy is shuffle:  # its draws come from the runtime (the world's seed)
            return shuffle(self.hosts, self.runtime.random())
        return iter(self._strategy(self.hosts))

    def _next_host(self) -> HostSpec | None:
        """The strategy's next host; None when a finite strategy has run out (the next
        attempt starts it over). A strategy may yield URLs as kombu's alternates are."""
        try:
            host = next(self._hosts_iter)
        except StopIteration:
            self._hosts_iter = self._new_host_cycle()
            return None
        return parse_hosts([host])[0] if isinstance(host, str) else host

    def _attempt(self) -> None:
        """Try the strategy's next hosts, each once, until one answers."""
        failures = []
        for _ in range(len(self.hosts)):
            host = self._next_host()
            if host is None:
                name = getattr(self._strategy, "__name__", repr(self._strategy))
                failures.append(f"the failover strategy {name} has no host left")
                break
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
        self._drop_link()
        self._amqp, self.current = amqp, host
        if self.transport_options.get("background_heartbeat"):
            amqp.start_heartbeat_thread()
        amqp.on_blocked = lambda reason: self.notify("blocked", reason)
        amqp.on_unblocked = lambda: self.notify("unblocked")
        if recovering:
            self.notify("recovery_started", host.as_url())
        renames, missing = self.topology.replay(amqp) if self.topology.entries else ({}, set())
        for channel in list(self._channels):
            channel.rebind(amqp, renames, missing)
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
        reraise_as_library_errors: bool = True,
        timeout: float | None = None,
        backoff=None,
    ) -> Connection:
        """Connect, retrying on the kombu schedule (or ``backoff``, e.g. ExponentialBackoff)
        within ``max_retries`` and ``timeout`` (None and None: until it connects or
        ``stop`` is set). ``errback(exc, interval)`` runs before each sleep, ``callback()``
        before each attempt and at least every half second while sleeping (kombu calls it
        every second); an exception it raises ends the retrying."""
        if self.connected:
            return self
        backoff = backoff or LinearBackoff(interval_start, interval_step, interval_max)
        budget = RetryBudget(max_retries, timeout, clock=self.runtime.monotonic)
        check_not_busy(backoff, budget)
        try:
            self._connect_loop(budget.start(), backoff.delays(), errback, callback)
        except OperationalError as exc:
            if reraise_as_library_errors or exc.__cause__ is None:
                raise
            raise exc.__cause__ from None
        return self

    def _connect_loop(self, budget: RetryBudget, delays, errback=None, callback=None) -> None:
        """Attempts (each tries every host) until one connects; every failed attempt spends
        one retry of ``budget`` and sleeps the schedule's next delay."""
        while True:
            if callback is not None:
                callback()
            try:
                self._attempt()
                return
            except CONNECTION_ERRORS as exc:
                give_up = f"could not connect after {budget.used + 1} attempt(s): {exc}"
                try:
                    self._spend_retry(exc, budget, next(delays), give_up, errback, callback)
                except OperationalError:
                    self.notify("recovery_failed", repr(exc))
                    raise

    def _sleep(self, delay: float, callback: Callable | None = None) -> bool:
        """Sleep ``delay`` (False if ``stop`` was set), calling ``callback`` every 0.5 s."""
        if callback is None:
            return self.runtime.sleep(delay, self.stop)
        end = self.runtime.monotonic() + delay
        while (left := end - self.runtime.monotonic()) > 0:
            if not self.runtime.sleep(min(left, 0.5), self.stop):
                return False
            callback()
        return True

    def _failover_options(self) -> dict:
        """kombu's ``_extract_failover_opts``: the retry policy of implicit (re)connects
        (``default_channel``, a channel used after its connection died), from
        ``transport_options``; bounded by ``connect_retries_timeout`` (default: the
        ``connect_timeout``), as kombu."""
        options = self.transport_options
        return {
            "max_retries": options.get("max_retries"),
            "interval_start": options.get("interval_start", 0.2),
            "interval_step": options.get("interval_step", 0.5),
            "interval_max": options.get("interval_max", 2),
            "timeout": options.get("connect_retries_timeout", self.connect_timeout),
        }

    def _reconnect_implicitly(self) -> None:
        """Inside ``ensure`` one attempt (its failure goes back to ensure's own policy);
        elsewhere the connection's failover options."""
        if self._ensuring:
            self._attempt()
        else:
            self.ensure_connection(**self._failover_options())

    def revive_channel(self, channel: RecoverableChannel) -> None:
        """A channel found its connection gone (or its channel closed): get it back."""
        if not self.connected:
            self._reconnect_implicitly()
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
        if not self.connected:
            self._reconnect_implicitly()
        if self._default is None:
            self._default = self.channel()
        return self._default

    # -- events ---------------------------------------------------------------------------------

    def cancel_noticed(self) -> None:
        """The broker cancelled a consumer: the next drain tries to bring it back."""
        self._last_cancel_retry = float("-inf")

    def drain_events(self, timeout: float | None = None) -> None:
        """Deliver messages to consumers; raise socket.timeout if none came within
        ``timeout`` (None: wait until one comes, as kombu; heartbeats go on meanwhile)."""
        while True:
            if not self.connected:
                raise ConnectionResetError("not connected")
            now = self.runtime.monotonic()
            if now - self._last_cancel_retry >= 1.0:  # consumers the broker cancelled
                self._last_cancel_retry = now
                for channel in list(self._channels):
                    channel.retry_cancelled()
            if self._amqp.drain_events(timeout if timeout is not None else 1.0):
                return
            if timeout is not None:
                raise DrainTimeout("timed out")

    def heartbeat_check(self, rate: int = 2) -> None:
        """kombu's heartbeat_check: read what has arrived (without blocking, so a server's
        heartbeats count even if the application never drains), then send a heartbeat if
        one is due and fail if the broker has been silent for two intervals."""
        if self._amqp is not None:
            self._amqp.poll()
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
        """Wrap ``fun`` so that failures are retried as kombu's ``ensure`` classifies them
        (kombu/connection.py): recoverable connection errors reconnect (every host, with
        recovery) and call ``fun`` again; recoverable channel errors (311, 313, 405) and
        ``retry_errors`` call it again on the same connection (its channel reopens);
        irrecoverable errors (403, 404, 406, hard 5xx) are raised at once, unchanged.

        One budget covers it all: every retry of ``fun`` and every failed reconnect
        attempt spends one of ``max_retries`` and sleeps the schedule's next delay, within
        ``timeout`` seconds; ``None`` and ``None`` retry until it works or ``stop`` is set.
        Giving up raises OperationalError from the last failure."""
        backoff = backoff or LinearBackoff(interval_start, interval_step, interval_max)
        check_not_busy(backoff, RetryBudget(max_retries, timeout))
        retry_errors = tuple(retry_errors or ())

        def ensured(*args, **kwargs):
            started = self.runtime.monotonic()
            budget = None  # set up at the first failure: the common call never needs it
            while True:
                self._ensuring += 1
                try:
                    return fun(*args, **kwargs)
                except (DrainTimeout, PublishTimeout):
                    raise  # the caller's own deadline: not a failure to retry
                except retry_errors as exc:
                    failure, reconnect = exc, False
                except IRRECOVERABLE_ERRORS:
                    raise
                except self.recoverable_connection_errors as exc:
                    failure, reconnect = exc, True
                except self.recoverable_channel_errors as exc:
                    failure, reconnect = exc, False
                finally:
                    self._ensuring -= 1
                if budget is None:
                    budget = RetryBudget(max_retries, timeout, clock=self.runtime.monotonic)
                    budget.started, delays = started, backoff.delays()
                self.runtime.record("error", error=type(failure).__name__, retry=budget.used + 1)
                give_up = f"{failure!r} (gave up after {budget.used} retries)"
                self._spend_retry(failure, budget, next(delays), give_up, errback)
                if reconnect or not self.connected:
                    self._drop_link()
                    self._connect_loop(budget, delays, errback)
                    channel = self.default_channel
                    if obj is not self and hasattr(obj, "revive"):
                        obj.revive(channel)
                    if on_revive is not None:
                        on_revive(channel)

        ensured.__name__ = getattr(fun, "__name__", "ensured")
        return ensured

    def _spend_retry(
        self, failure, budget: RetryBudget, delay: float, give_up: str, errback, callback=None
    ) -> None:
        """One retry of ``budget`` for ``failure``: raise OperationalError(``give_up``) when
        the budget cannot pay for ``delay`` (or ``stop`` is set), else call ``errback`` as
        kombu does (``errback(exc, interval)``) and sleep ``delay``."""
        if not budget.allows(delay) or self.stop.is_set():
            raise OperationalError(give_up) from failure
        budget.spend()
        if errback is not None:
            errback(failure, delay)
        if not self._sleep(delay, callback):
            raise OperationalError("stopped while retrying") from failure

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

    def as_uri(self, include_password: bool = False, mask: str = "**", getfields=None) -> str:
        host = self.current or self.hosts[0]
        return host.as_url(mask=None if include_password else mask)

    def clone(self, **kwargs) -> Connection:
        return Connection(self._urls, **{**self._init_args, **kwargs})

    def collect(self, socket_timeout: float | None = None) -> None:
        """Drop the connection without a handshake (dead peers never answer), so
        ``socket_timeout`` (kombu's bound on that goodbye) has nothing to bound, and abandon
        its channels as kombu's ``collect`` does: the next connection recovers none of them,
        so a consumer the caller builds again (the robust-consumer article's revive) is the
        only one on its queue. Recovery inside ``ensure`` drops the link and keeps them."""
        self._drop_link()
        for channel in self._channels:
            channel.abandon()
        self._channels.clear()
        self._default = None

    def _drop_link(self) -> None:
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

    def SimpleQueue(  # noqa: N802 (kombu's name)
        self,
        name: str,
        no_ack=None,
        queue_opts=None,
        queue_args=None,
        exchange_opts=None,
        channel=None,
        **kwargs,
    ):
        from client.simple import SimpleQueue

        return SimpleQueue(
            channel or self, name, no_ack, queue_opts, queue_args, exchange_opts, **kwargs
        )

    def SimpleBuffer(self, name: str, *args, channel=None, **kwargs):  # noqa: N802
        """kombu's SimpleBuffer: SimpleQueue's arguments, a transient auto-deleted queue."""
        from client.simple import SimpleBuffer

        return SimpleBuffer(channel or self, name, *args, **kwargs)

    def Producer(self, channel=None, *args, **kwargs):  # noqa: N802 (kombu's name)
        from client.messaging import Producer

        return Producer(channel or self, *args, **kwargs)

    def Consumer(self, queues=None, channel=None, *args, **kwargs):  # noqa: N802
        from client.messaging import Consumer

        return Consumer(channel or self, queues, *args, **kwargs)


BrokerConnection = Connection
#: kombu.connection.failover_strategies
failover_strategies = dict(FAILOVER_STRATEGIES)
