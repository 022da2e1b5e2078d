"""The calls of pika's BlockingConnection API that make history events.

=======================================  =====================================================
pika call                                events
=======================================  =====================================================
``BlockingChannel.basic_publish``        publish_invoke, then publish_ok (``confirmed``: after
                                         ``confirm_delivery()``) or publish_fail (a nack, an
                                         unroutable return, a closed connection); a missing
                                         ``message_id`` is given one
``BlockingChannel.basic_consume``        deliver, before the user's ``on_message_callback``
``BlockingChannel.basic_get``            deliver when a message came
``BlockingChannel.basic_ack / nack /     ack / reject / requeue, by the delivery tags the
basic_reject``                           channel delivered
``BlockingConnection.__init__``          recovery_succeeded for an actor's every connection
                                         after its first; error when it fails
``BlockingConnection.process_data_events error: a connection error surfacing from the I/O
/ _flush_output``                        loop (heartbeat timeout, stream lost, broker close)
=======================================  =====================================================
"""

from __future__ import annotations

import copy
import functools
import inspect

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

CONNECTION_ERRORS = (pika.exceptions.AMQPConnectionError, pika.exceptions.ConnectionClosed)


def _broker(connection) -> str | None:
    params = getattr(getattr(connection, "_impl", None), "params", None)
    return f"{params.host}:{params.port}" if params is not None else None


def _tags(channel) -> dict:
    """delivery tag -> message id of what this channel delivered."""
    return channel.__dict__.setdefault("_warren_tags", {})


def wrappers(recorder) -> list:
    publish = BlockingChannel.basic_publish
    consume = BlockingChannel.basic_consume
    get = BlockingChannel.basic_get
    init = BlockingConnection.__init__

    def deliver(channel, method, properties) -> None:
        message_id = getattr(properties, "message_id", None)
        _tags(channel)[method.delivery_tag] = message_id
        recorder.record(
            "deliver",
            id=message_id,
            redelivered=bool(method.redelivered),
            broker=_broker(channel.connection),
        )

    @functools.wraps(publish)
    def publish_(self, exchange, routing_key, body, properties=None, mandatory=False):
        properties = copy.copy(properties) if properties is not None else pika.BasicProperties()
        properties.message_id = properties.message_id or recorder.new_id()
        message_id = properties.message_id
        recorder.record("publish_invoke", id=message_id, broker=_broker(self.connection))
        try:
            result = publish(self, exchange, routing_key, body, properties, mandatory)
        except Exception as exc:
            recorder.record("publish_fail", id=message_id, error=type(exc).__name__)
            if isinstance(exc, CONNECTION_ERRORS):
                recorder.error(exc, _broker(self.connection))
            raise
        recorder.record("publish_ok", id=message_id, confirmed=self._delivery_confirmation)
        return result

    @functools.wraps(consume)
    def consume_(self, queue, on_message_callback, *args, **kwargs):
        def on_message(channel, method, properties, body):
            deliver(channel, method, properties)
            return on_message_callback(channel, method, properties, body)

        return consume(self, queue, on_message, *args, **kwargs)

    @functools.wraps(get)
    def get_(self, *args, **kwargs):
        method, properties, body = get(self, *args, **kwargs)
        if method is not None:
            deliver(self, method, properties)
        return method, properties, body

    def settle(real, kind: str):
        signature = inspect.signature(real)

        @functools.wraps(real)
        def settle_(self, *args, **kwargs):
            result = real(self, *args, **kwargs)
            call = signature.bind(self, *args, **kwargs)
            call.apply_defaults()
            tag, multiple = call.arguments["delivery_tag"], call.arguments.get("multiple", False)
            requeued = call.arguments.get("requeue", False)
            tags = _tags(self)
            settled = [t for t in tags if multiple and (tag == 0 or t <= tag)] or [tag]
            for settled_tag in settled:
                recorder.record("requeue" if requeued else kind, id=tags.pop(settled_tag, None))
            return result

        return settle_

    @functools.wraps(init)
    def init_(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except Exception as exc:
            recorder.error(exc)
            raise
        recorder.connected(_broker(self))

    def surfacing(real):
        @functools.wraps(real)
        def surfacing_(self, *args, **kwargs):
            try:
                return real(self, *args, **kwargs)
            except CONNECTION_ERRORS as exc:
                connection = getattr(self, "connection", self)
                recorder.error(exc, _broker(connection))
                raise

        return surfacing_

    return [
        (BlockingChannel, "basic_publish", publish_),
        (BlockingChannel, "basic_consume", consume_),
        (BlockingChannel, "basic_get", get_),
        (BlockingChannel, "basic_ack", settle(BlockingChannel.basic_ack, "ack")),
        (BlockingChannel, "basic_nack", settle(BlockingChannel.basic_nack, "reject")),
        (BlockingChannel, "basic_reject", settle(BlockingChannel.basic_reject, "reject")),
        (BlockingConnection, "__init__", init_),
        (
            BlockingConnection,
            "process_data_events",
            surfacing(BlockingConnection.process_data_events),
        ),
        (BlockingConnection, "_flush_output", surfacing(BlockingConnection._flush_output)),
        (BlockingChannel, "_flush_output", surfacing(BlockingChannel._flush_output)),
    ]
