"""``ConsumerMixin`` (kombu.mixins): run consumers until ``should_stop``, reconnecting on
connection and channel errors, as kombu's does:

- each (re)connect goes through ``ensure_connection`` with ``connect_max_retries`` (None:
  forever) and ``on_connection_error(exc, interval)`` as its errback; ``should_stop`` is
  checked before every attempt and every half second of the sleeps between them, so a
  worker asked to stop while no broker answers returns within a retry interval plus the
  connect timeout (kombu only looks at it between consume loops);
- ``on_connection_revived()`` runs each time the consumers are (re)established — the first
  connect included, as kombu calls it from its ``Consumer()`` context;
- ``on_consume_ready`` / ``on_consume_end`` bracket each consume loop;
- connection and channel errors restart the loop, at most once a second (kombu's
  ``restart_limit``).

Every wait is bounded; channel recovery re-registers the consumers after a reconnect.
"""

from __future__ import annotations

from contextlib import ExitStack

from client.messaging import Consumer


class StopRequested(Exception):
    """``should_stop`` was set while the mixin was (re)connecting."""


class ConsumerMixin:
    connect_max_retries: int | None = None
    should_stop = False

    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        raise NotImplementedError("subclass responsibility")

    def on_connection_revived(self) -> None:
        pass

    def on_consume_ready(self, connection, channel, consumers, **kwargs) -> None:
        pass

    def on_consume_end(self, connection, channel) -> None:
        pass

    def on_iteration(self) -> None:
        pass

    def on_connection_error(self, exc, interval) -> None:
        pass

    def run(self, _tokens: int = 1, **kwargs) -> None:
        errors = self.connection.connection_errors + self.connection.channel_errors
        restarts = 0
        while not self.should_stop:
            try:
                for _ in self.consume(limit=None, **kwargs):
                    pass
            except StopRequested:
                return
            except errors as exc:
                restarts += 1
                self.connection.runtime.record("error", error=type(exc).__name__, retry=restarts)
                self.on_connection_error(exc, 0)
                self.connection.collect()
                if not self._pause_before_restart():
                    return

    def _pause_before_restart(self) -> bool:
        """At most one restart a second (kombu's ``restart_limit``, a TokenBucket(1)), so an
        error that recurs at once (a 404 in get_consumers) is no busy loop. False if
        ``should_stop`` was set meanwhile."""
        runtime = self.connection.runtime
        last = getattr(self, "_last_restart", None)
        now = runtime.monotonic()
        if last is not None:
            end = last + 1.0
            while not self.should_stop and (left := end - runtime.monotonic()) > 0:
                runtime.sleep(min(left, 0.5))
        self._last_restart = max(now, runtime.monotonic())
        return not self.should_stop

    def consume(
        self,
        limit: int | None = None,
        timeout: float | None = None,
        safety_interval: float = 1,
        **kwargs,
    ):
        elapsed = 0.0
        with self.Consumer() as (connection, channel, consumers):
            self.on_consume_ready(connection, channel, consumers, **kwargs)
            count = 0
            while not self.should_stop and (limit is None or count < limit):
                count += 1
                self.on_iteration()
                try:
                    connection.drain_events(timeout=safety_interval)
                except TimeoutError:
                    connection.heartbeat_check()
                    elapsed += safety_interval
                    if timeout and elapsed >= timeout:
                        raise
                else:
                    yield
                    elapsed = 0

    def Consumer(self):  # noqa: N802 (kombu's name)
        return _ConsumerContext(self)

    def _stop_requested(self) -> None:
        if self.should_stop:
            raise StopRequested()

    @property
    def connection_errors(self):
        return self.connection.connection_errors

    @property
    def channel_errors(self):
        return self.connection.channel_errors


class _ConsumerContext:
    def __init__(self, mixin: ConsumerMixin) -> None:
        self.mixin = mixin
        self.stack = ExitStack()
        self.connection = self.channel = None

    def __enter__(self):
        mixin = self.mixin
        conn = self.connection = mixin.connection
        conn.ensure_connection(
            errback=mixin.on_connection_error,
            max_retries=mixin.connect_max_retries,
            interval_start=0.1,
            interval_step=0.5,
            interval_max=2,
            callback=mixin._stop_requested,
        )
        mixin.on_connection_revived()
        channel = self.channel = conn.default_channel

        def make(*args, **kwargs):
            return Consumer(channel, *args, **kwargs)

        consumers = [self.stack.enter_context(c) for c in mixin.get_consumers(make, channel)]
        return conn, channel, consumers

    def __exit__(self, *exc) -> None:
        self.stack.close()
        self.mixin.on_consume_end(self.connection, self.channel)
