"""``Producer`` and ``Consumer`` (kombu/messaging.py) on recoverable channels.

``Producer.publish(retry=True)`` runs under ``Connection.ensure`` and gives every message a
``message_id`` first, so a republish after a failure is recognisable as the same message.
With ``transport_options={'confirm_publish': True}`` each publish waits for the broker's
confirm, bounded by ``confirm_timeout`` (kombu waits forever). Consumers are re-registered
by their channel after a reconnect; ``revive`` exists for kombu's call sites.
"""

from __future__ import annotations

from collections.abc import Callable

from broker_sim.properties import build as build_properties
from client.entity import Exchange, Queue
from client.errors import CONNECTION_ERRORS, PublishTimeout
from client.message import compress, dumps


def _channel_of(channel_or_connection):
    from client.connection import Connection

    if isinstance(channel_or_connection, Connection):
        return channel_or_connection.default_channel
    return channel_or_connection


class Producer:
    """kombu's Producer. Given a Connection, the channel is taken lazily at first use (kombu's
    ChannelPromise), so a producer built during an outage, or handed a connection by a
    pool, connects inside ``publish`` under its retry policy."""

    def __init__(
        self,
        channel,
        exchange: Exchange | str | None = None,
        routing_key: str | None = None,
        serializer: str | None = None,
        auto_declare: bool | None = None,
        compression: str | None = None,
        on_return: Callable | None = None,
    ) -> None:
        self.connection = self._channel = None
        self._ensured_by_policy: dict[tuple, Callable] = {}
        self.revive(channel)
        self.exchange = (
            Exchange(exchange) if isinstance(exchange, str) else exchange or Exchange("")
        )
        self.routing_key, self.serializer = routing_key or "", serializer
        self.compression = compression
        self.on_return = on_return
        if auto_declare is not False and self.exchange.name:
            self.exchange.declare(self.channel)

    @property
    def channel(self):
        if self._channel is None:
            self._channel = self.connection.default_channel
        return self._channel

    @channel.setter
    def channel(self, channel) -> None:
        self._channel = channel

    def revive(self, channel) -> None:
        """Use ``channel`` (or a Connection's default channel, when first needed)."""
        from client.connection import Connection

        connection = channel if isinstance(channel, Connection) else channel.connection
        if connection is not self.connection:  # wrappers built for another connection
            self._ensured_by_policy = {}
        self.connection = connection
        self._channel = None if isinstance(channel, Connection) else channel

    def publish(
        self,
        body,
        routing_key: str | None = None,
        delivery_mode: int | None = None,
        mandatory: bool = False,
        immediate: bool = False,
        priority: int = 0,
        content_type: str | None = None,
        content_encoding: str | None = None,
        serializer: str | None = None,
        headers: dict | None = None,
        compression: str | None = None,
        exchange: Exchange | str | None = None,
        retry: bool = False,
        retry_policy: dict | None = None,
        declare: list | None = None,
        expiration: float | None = None,
        timeout: float | None = None,
        confirm_timeout: float | None = None,
        **properties,
    ) -> None:
        """kombu's publish, keyword for keyword. ``timeout`` bounds the whole call (a
        connection blocked by a resource alarm, the confirm, the retries): past it,
        :class:`~client.errors.PublishTimeout` (a ``socket.timeout``). ``confirm_timeout``
        bounds the confirm wait (default: transport option ``confirm_timeout``, 30 s)."""
        if content_type is None:
            payload, content_type, content_encoding = dumps(body, serializer or self.serializer)
        else:
            payload = body if isinstance(body, bytes) else str(body).encode()
        compression = compression or self.compression
        if compression:
            payload, headers = self._compressed(payload, compression, headers)
        exchange = exchange if exchange is not None else self.exchange
        exchange_name = exchange.name if isinstance(exchange, Exchange) else exchange
        if retry and not properties.get("message_id"):  # the same id on every retry
            properties["message_id"] = self.connection.runtime.new_id()
        props = build_properties(
            content_type=content_type,
            content_encoding=content_encoding,
            delivery_mode=delivery_mode or getattr(exchange, "delivery_mode", None) or 2,
            priority=priority or None,
            headers=headers or None,
            expiration=str(int(expiration * 1000)) if expiration is not None else None,
            **properties,
        )
        key = self.routing_key if routing_key is None else routing_key
        deadline = None if timeout is None else self.connection.runtime.monotonic() + timeout
        waits = (deadline, confirm_timeout)
        args = (declare, payload, exchange_name, key, props, (mandatory, immediate), waits)
        record = self.connection.runtime.record
        record("publish_invoke", id=props.message_id, routing_key=key)
        try:
            if retry:
                self._ensured(_within(retry_policy, timeout))(*args)
            else:
                self._publish_once(*args)
        except Exception as exc:
            record("publish_fail", id=props.message_id, error=type(exc).__name__)
            raise
        confirmed = bool(self.connection.transport_options.get("confirm_publish"))
        record("publish_ok", id=props.message_id, confirmed=confirmed)

    @staticmethod
    def _compressed(payload: bytes, method: str, headers: dict | None):
        payload, header = compress(payload, method)
        return payload, {**(headers or {}), "compression": header}

    def _ensured(self, policy: dict | None):
        """``connection.ensure(self, _publish_once, **policy)``, built once per policy."""
        key = tuple(sorted((policy or {}).items()))
        try:
            return self._ensured_by_policy[key]
        except KeyError:
            wrapped = self.connection.ensure(self, self._publish_once, **(policy or {}))
        except TypeError:  # an unhashable value in the policy: build it for this call
            return self.connection.ensure(self, self._publish_once, **(policy or {}))
        if len(self._ensured_by_policy) >= 16:  # policies built per call (inline errbacks)
            self._ensured_by_policy.clear()
        self._ensured_by_policy[key] = wrapped
        return wrapped

    def _publish_once(self, declare, payload, exchange, key, props, flags, waits) -> None:
        for entity in declare or ():
            entity.declare(self.channel)
        self._send(payload, exchange, key, props, flags, waits)

    def _send(self, payload: bytes, exchange: str, key: str, props, flags, waits) -> None:
        options = self.connection.transport_options
        confirm = options.get("confirm_publish")
        deadline, confirm_timeout = waits
        if confirm and not self.channel.confirm:
            self.channel.confirm_select()
        if confirm and confirm_timeout is None:
            confirm_timeout = options.get("confirm_timeout", 30.0)
        try:
            self.channel.publish(
                payload,
                exchange,
                key,
                props,
                *flags,
                confirm_timeout=confirm_timeout if confirm else None,
                deadline=deadline,
            )
        except PublishTimeout as exc:
            if confirm and exc.sent:  # it went out; whether the broker has it is unknown
                self.connection.notify("publish_unknown", props.message_id)
            raise
        except CONNECTION_ERRORS:
            if confirm:
                self.connection.notify("publish_unknown", props.message_id)
            raise

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc) -> None:
        pass


def _within(policy: dict | None, timeout: float | None) -> dict | None:
    """The retry policy, its deadline no later than the publish's own ``timeout``."""
    if timeout is None:
        return policy
    policy = dict(policy or {})
    own = policy.get("timeout")
    policy["timeout"] = timeout if own is None else min(own, timeout)
    return policy


class Consumer:
    def __init__(
        self,
        channel,
        queues=None,
        no_ack: bool | None = None,
        auto_declare: bool = True,
        callbacks: list | None = None,
        on_decode_error: Callable | None = None,
        on_message: Callable | None = None,
        accept=None,
        prefetch_count: int | None = None,
        tag_prefix: str | None = None,
    ) -> None:
        self.channel = _channel_of(channel)
        self.queues = [queues] if isinstance(queues, Queue) else list(queues or [])
        self.no_ack = bool(no_ack)
        self.auto_declare = auto_declare
        self.callbacks = list(callbacks or [])
        self.on_decode_error, self.on_message = on_decode_error, on_message
        self.accept = accept
        self.prefetch_count = prefetch_count
        self.tags: dict[str, str] = {}  # queue name -> consumer tag

    def register_callback(self, callback: Callable) -> None:
        self.callbacks.append(callback)

    def add_queue(self, queue: Queue) -> Queue:
        self.queues.append(queue)
        return queue

    def qos(
        self, prefetch_size: int = 0, prefetch_count: int = 0, apply_global: bool = False
    ) -> None:
        self.channel.basic_qos(prefetch_size, prefetch_count, apply_global)

    def declare(self) -> None:
        for queue in self.queues:
            queue.declare(self.channel)

    def consume(self, no_ack: bool | None = None) -> None:
        if self.prefetch_count is not None:
            self.qos(prefetch_count=self.prefetch_count)
        if self.auto_declare:
            self.declare()
        for queue in self.queues:
            if queue.name not in self.tags:
                self.tags[queue.name] = self.channel.consume(
                    queue.name,
                    self._receive,
                    self.no_ack if no_ack is None else no_ack,
                    self.accept,
                )

    def cancel(self) -> None:
        for tag in self.tags.values():
            self.channel.cancel(tag)
        self.tags.clear()

    def revive(self, channel) -> None:
        """kombu re-consumes here; a recoverable channel already has (no-op unless moved)."""
        channel = _channel_of(channel)
        if channel is not self.channel:
            self.channel, self.tags = channel, {}
            self.consume()

    def _receive(self, message) -> None:
        if self.on_message is not None:
            self.on_message(message)
            return
        try:
            body = message.payload
        except Exception as exc:
            if self.on_decode_error is None:
                raise
            self.on_decode_error(message, exc)
            return
        self.receive(body, message)

    def receive(self, body, message) -> None:
        if not self.callbacks:
            raise NotImplementedError("Consumer does not have any callbacks")
        for callback in self.callbacks:
            callback(body, message)

    def __enter__(self) -> Consumer:
        self.consume()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.cancel()
        except OSError:
            pass
