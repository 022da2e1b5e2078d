"""``ConsumerMixin`` (kombu.mixins): run consumers until ``should_stop``, reconnecting on
connection errors. Every wait is bounded and the retry budget comes from the connection's
settings; channel recovery re-registers the consumers after a reconnect."""

from __future__ import annotations

from contextlib import ExitStack

from client.messaging import Consumer


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
        restarts = 0
        while not self.should_stop:
            try:
                for _ in self.consume(limit=None, **kwargs):
                    if self.should_stop:
                        break
                return
            except self.connection.connection_errors as exc:
                restarts += 1
                self.connection.runtime.record("error", error=type(exc).__name__, retry=restarts)
                if self.connect_max_retries is not None and restarts > self.connect_max_retries:
                    raise
                self.on_connection_error(exc, 0)
                self.connection.collect()

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

    @property
    def connection_errors(self):
        return self.connection.connection_errors


class _ConsumerContext:
    def __init__(self, mixin: ConsumerMixin) -> None:
        self.mixin = mixin
        self.stack = ExitStack()

    def __enter__(self):
        conn = self.mixin.connection
        conn.ensure_connection(
            max_retries=self.mixin.connect_max_retries,
            interval_start=0.1,
            interval_step=0.5,
            interval_max=2,
        )
        channel = conn.default_channel

        def make(*args, **kwargs):
            return Consumer(channel, *args, **kwargs)

        consumers = [self.stack.enter_context(c) for c in self.mixin.get_consumers(make, channel)]
        return conn, channel, consumers

    def __exit__(self, *exc) -> None:
        self.stack.close()
