"""AMQP URLs as kombu, pika and aio-pika all read them (RabbitMQ's URI spec: the vhost is
the percent-encoded path, so ``/`` is written ``%2F``)."""

from __future__ import annotations

from urllib.parse import quote


def amqp_url(
    host: str, port: int, user: str = "guest", password: str = "guest", vhost: str = "/"
) -> str:
    return (
        f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
        f"{quote(vhost, safe='')}"
    )
