"""``SimpleQueue`` and ``SimpleBuffer`` (kombu.simple): a queue-like API over one queue."""

from __future__ import annotations

import queue as stdqueue
from collections import deque

from client.entity import Exchange, Queue
from client.messaging import Consumer, Producer


class SimpleBase:
    Empty = stdqueue.Empty
    no_ack = False
    queue_opts: dict = {}  # noqa: RUF012
    exchange_opts: dict = {}  # noqa: RUF012

    def __init__(
        self,
        channel,
        name: str,
        no_ack: bool | None = None,
        queue_opts: dict | None = None,
        queue_args: dict | None = None,
        exchange_opts: dict | None = None,
        serializer: str | None = None,
        compression: str | None = None,
        accept=None,
    ) -> None:
        """kombu's SimpleQueue: ``channel`` is a Connection (its default channel is used)
        or a channel; ``queue_args`` become the queue's x-arguments."""
        from client.connection import Connection

        if isinstance(channel, Connection):
            self.connection, self.channel = channel, channel.default_channel
        else:
            self.connection, self.channel = channel.connection, channel
        exchange = Exchange(
            name, **{"type": "direct", **self.exchange_opts, **(exchange_opts or {})}
        )
        opts = {**self.queue_opts, **(queue_opts or {})}
        if queue_args:
            opts["queue_arguments"] = {**opts.get("queue_arguments", {}), **queue_args}
        self.queue = Queue(name, exchange, name, **opts)
        self.no_ack = self.no_ack if no_ack is None else no_ack
        self.producer = Producer(
            self.channel, exchange, name, serializer=serializer, compression=compression
        )
        self.buffer: deque = deque()
        self.consumer = Consumer(
            self.channel,
            [self.queue],
            no_ack=self.no_ack,
            on_message=self.buffer.append,
            accept=accept,
        )
        self.consumer.consume()

    def put(
        self,
        message,
        serializer: str | None = None,
        headers: dict | None = None,
        compression: str | None = None,
        routing_key: str | None = None,
        **kwargs,
    ) -> None:
        self.producer.publish(
            message,
            serializer=serializer,
            headers=headers,
            compression=compression,
            routing_key=routing_key,
            **kwargs,
        )

    def get(self, block: bool = True, timeout: float | None = None):
        if not block:
            return self.get_nowait()
        """kombu's get: wait ``timeout`` seconds for a message (None: until one comes),
        then raise ``Empty``; the clock is the connection's runtime's (virtual in a world)."""
        clock = self.connection.runtime.monotonic
        deadline = None if timeout is None else clock() + timeout
        while not self.buffer:
            remaining = None if deadline is None else deadline - clock()
            if remaining is not None and remaining <= 0:
                raise self.Empty()
            try:
                self.connection.drain_events(timeout=remaining)
            except TimeoutError:
                pass
        return self.buffer.popleft()

    def get_nowait(self):
        message = self.channel.get_message(self.queue.name, self.no_ack)
        if message is None:
            raise self.Empty()
        return message

    def clear(self) -> int:
        return self.channel.purge_queue(self.queue.name)

    def qsize(self) -> int:
        return self.channel.queue_declare_ok(self.queue, passive=True).message_count

    def close(self) -> None:
        self.consumer.cancel()

    def __len__(self) -> int:
        return self.qsize()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SimpleQueue(SimpleBase):
    """Durable queue, persistent messages."""


class SimpleBuffer(SimpleBase):
    """Transient, auto-deleted queue; messages are not acknowledged."""

    no_ack = True
    queue_opts = {"durable": False, "auto_delete": True}  # noqa: RUF012
    exchange_opts = {"durable": False, "auto_delete": True}  # noqa: RUF012
