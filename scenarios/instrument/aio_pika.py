"""The calls of aio-pika (and aiormq under it) that make history events.

=======================================  =====================================================
aio-pika call                            events
=======================================  =====================================================
``Exchange.publish``                     publish_invoke, then publish_ok (``confirmed``: the
                                         channel has publisher confirms, aio-pika's default)
                                         or publish_fail; a missing ``message_id`` is given
                                         one
``Queue.consume`` (and so ``iterator``)  deliver, before the user's callback
``Queue.get``                            deliver when a message came
``IncomingMessage.ack / reject / nack``  ack / reject / requeue
``aiormq.Connection.connect``            recovery_succeeded for an actor's every connection
                                         after its first (a robust reconnect); error when it
                                         fails
``Connection._on_connection_close``      error: the connection was lost (robust connections
                                         reconnect after it)
=======================================  =====================================================
"""

from __future__ import annotations

import asyncio
import functools

import aio_pika.connection
import aio_pika.exchange
import aio_pika.message
import aio_pika.queue
import aiormq.connection


def _broker(channel) -> str | None:
    connection = getattr(channel, "connection", None)
    url = getattr(connection, "url", None)
    return f"{url.host}:{url.port}" if url is not None else None


def wrappers(recorder) -> list:
    publish = aio_pika.exchange.Exchange.publish
    consume = aio_pika.queue.Queue.consume
    get = aio_pika.queue.Queue.get
    connect = aiormq.connection.Connection.connect
    closed = aio_pika.connection.Connection._on_connection_close
    incoming = aio_pika.message.IncomingMessage

    def deliver(message) -> None:
        recorder.record(
            "deliver",
            id=message.message_id,
            redelivered=bool(message.redelivered),
            broker=_broker(getattr(message, "channel", None)),
        )

    @functools.wraps(publish)
    async def publish_(self, message, routing_key, **kwargs):
        if message.message_id is None:
            message.message_id = recorder.new_id()
        channel = self.channel
        recorder.record("publish_invoke", id=message.message_id, broker=_broker(channel))
        try:
            result = await publish(self, message, routing_key, **kwargs)
        except Exception as exc:
            recorder.record("publish_fail", id=message.message_id, error=type(exc).__name__)
            raise
        confirmed = bool(getattr(channel, "publisher_confirms", False))
        recorder.record("publish_ok", id=message.message_id, confirmed=confirmed)
        return result

    @functools.wraps(consume)
    async def consume_(self, callback, *args, **kwargs):
        async def on_message(message):
            deliver(message)
            return await callback(message)

        return await consume(self, on_message, *args, **kwargs)

    @functools.wraps(get)
    async def get_(self, *args, **kwargs):
        message = await get(self, *args, **kwargs)
        if message is not None:
            deliver(message)
        return message

    def settle(real, kind: str):
        @functools.wraps(real)
        async def settle_(self, *args, **kwargs):
            result = await real(self, *args, **kwargs)
            requeued = kind != "ack" and kwargs.get("requeue", kind == "nack")
            if args:  # reject(requeue) / nack(multiple, requeue)
                requeued = bool(args[-1]) if kind == "reject" or len(args) > 1 else requeued
            recorder.record(
                "requeue" if requeued else ("ack" if kind == "ack" else "reject"),
                id=self.message_id,
            )
            return result

        return settle_

    @functools.wraps(connect)
    async def connect_(self, *args, **kwargs):
        try:
            result = await connect(self, *args, **kwargs)
        except Exception as exc:
            recorder.error(exc, f"{self.url.host}:{self.url.port}")
            raise
        recorder.connected(f"{self.url.host}:{self.url.port}")
        return result

    @functools.wraps(closed)
    async def closed_(self, closing):
        exc = closing.exception() if closing.done() and not closing.cancelled() else None
        if exc is not None and not isinstance(exc, asyncio.CancelledError):  # not a close()
            recorder.error(exc, f"{self.url.host}:{self.url.port}" if self.url else None)
        return await closed(self, closing)

    return [
        (aio_pika.exchange.Exchange, "publish", publish_),
        (aio_pika.queue.Queue, "consume", consume_),
        (aio_pika.queue.Queue, "get", get_),
        (incoming, "ack", settle(incoming.ack, "ack")),
        (incoming, "reject", settle(incoming.reject, "reject")),
        (incoming, "nack", settle(incoming.nack, "nack")),
        (aiormq.connection.Connection, "connect", connect_),
        (aio_pika.connection.Connection, "_on_connection_close", closed_),
    ]
