"""Small helpers shared by the conformance tests."""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest


def connect(broker, user: str = "guest", password: str = "guest", vhost: str = "/"):
    params = pika.URLParameters(broker.amqp_url(user, password, vhost))
    params.socket_timeout = 10
    conn = pika.BlockingConnection(params)
    return conn, conn.channel()


def channel_error(fn, *args, **kwargs) -> tuple[int, str]:
    """Run ``fn`` and return the (code, text) of the channel close it provokes."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        fn(*args, **kwargs)
    return info.value.reply_code, info.value.reply_text


def connection_error(conn, fn, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        fn(*args, **kwargs)
        conn.process_data_events(time_limit=1)
    return info.value.reply_code, info.value.reply_text


def drain(ch, queue: str, limit: int = 1000) -> list[bytes]:
    bodies = []
    for _ in range(limit):
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        bodies.append(body)
    return bodies


def wait_until(predicate, timeout: float = 5.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
