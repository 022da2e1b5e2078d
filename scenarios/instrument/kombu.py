"""The calls of kombu (and py-amqp under it) that make history events.

=======================================  =====================================================
kombu call                               events
=======================================  =====================================================
``Producer.publish``                     publish_invoke, then publish_ok (``confirmed``: the
                                         channel is in confirm mode, ``confirm_publish``) or
                                         publish_fail; a missing ``message_id`` is given one
``Consumer._receive_callback``           deliver (what every consumer callback, ConsumerMixin
                                         and SimpleQueue.get go through)
``Queue.get`` (basic.get, autoretry)     deliver when a message came
``Message.ack / reject / requeue``       ack / reject / requeue once the broker was told
``Connection._connection_factory``       recovery_succeeded for an actor's every connection
                                         after its first; error when it fails
``Connection.maybe_switch_next``         error: kombu is handling a connection error (ensure,
                                         ensure_connection, autoretry all switch here)
``Connection.collect``                   error: a user's ``except conn.connection_errors:``
                                         recipe collecting after a failure
``Connection.drain_events /              error: a connection error surfacing (a missed
heartbeat_check``                        heartbeat, a reset); a drain timeout is not one
=======================================  =====================================================
"""

from __future__ import annotations

import functools
import sys

import kombu
import kombu.entity
import kombu.message
import kombu.messaging


def _message_id(message) -> str | None:
    return message.properties.get("message_id")


def _deliver(recorder, message, broker) -> None:
    recorder.record(
        "deliver",
        id=_message_id(message),
        redelivered=bool(message.delivery_info.get("redelivered")),
        broker=broker,
    )


def _broker_of(channel) -> str | None:
    client = getattr(getattr(channel, "connection", None), "client", None)
    return getattr(client, "host", None)


def wrappers(recorder) -> list:
    publish = kombu.messaging.Producer.publish
    receive = kombu.messaging.Consumer._receive_callback
    get = kombu.entity.Queue.get
    factory = kombu.Connection._connection_factory
    switch = kombu.Connection.maybe_switch_next
    collect = kombu.Connection.collect
    drain = kombu.Connection.drain_events
    heartbeat_check = kombu.Connection.heartbeat_check

    @functools.wraps(publish)
    def publish_(self, body, *args, **kwargs):
        message_id = kwargs.setdefault("message_id", None) or recorder.new_id()
        kwargs["message_id"] = message_id
        broker = getattr(self.connection, "host", None)
        recorder.record("publish_invoke", id=message_id, broker=broker)
        try:
            result = publish(self, body, *args, **kwargs)
        except Exception as exc:
            recorder.record("publish_fail", id=message_id, error=type(exc).__name__)
            raise
        confirmed = bool(getattr(self.channel, "_confirm_selected", False))
        recorder.record("publish_ok", id=message_id, confirmed=confirmed)
        return result

    @functools.wraps(receive)
    def receive_(self, message):
        _deliver(recorder, message, _broker_of(self.channel))
        return receive(self, message)

    @functools.wraps(get)
    def get_(self, *args, **kwargs):
        message = get(self, *args, **kwargs)
        if message is not None:
            _deliver(recorder, message, _broker_of(self.channel))
        return message

    def settle(real, kind: str):
        @functools.wraps(real)
        def settle_(self, *args, **kwargs):
            result = real(self, *args, **kwargs)
            requeued = kind == "reject" and kwargs.get("requeue", args[0] if args else False)
            recorder.record("requeue" if requeued else kind, id=_message_id(self), stale=False)
            return result

        return settle_

    @functools.wraps(factory)
    def factory_(self):
        try:
            connection = factory(self)
        except Exception as exc:
            recorder.error(exc, self.host)
            raise
        recorder.connected(self.host)
        return connection

    @functools.wraps(switch)
    def switch_(self):
        exc = sys.exc_info()[1]
        if exc is not None:
            recorder.error(exc, self.host)
        return switch(self)

    @functools.wraps(collect)
    def collect_(self, *args, **kwargs):
        exc = sys.exc_info()[1]
        if exc is not None and isinstance(exc, self.connection_errors):
            recorder.error(exc, self.host)
        return collect(self, *args, **kwargs)

    def surfacing(real):
        @functools.wraps(real)
        def surfacing_(self, *args, **kwargs):
            try:
                return real(self, *args, **kwargs)
            except self.connection_errors as exc:
                if not isinstance(exc, TimeoutError):  # a drain timeout is no error
                    recorder.error(exc, self.host)
                raise

        return surfacing_

    message = kombu.message.Message
    return [
        (kombu.messaging.Producer, "publish", publish_),
        (kombu.messaging.Consumer, "_receive_callback", receive_),
        (kombu.entity.Queue, "get", get_),
        (message, "ack", settle(message.ack, "ack")),
        (message, "reject", settle(message.reject, "reject")),
        (message, "requeue", settle(message.requeue, "requeue")),
        (kombu.Connection, "_connection_factory", factory_),
        (kombu.Connection, "maybe_switch_next", switch_),
        (kombu.Connection, "collect", collect_),
        (kombu.Connection, "drain_events", surfacing(drain)),
        (kombu.Connection, "heartbeat_check", surfacing(heartbeat_check)),
    ]
