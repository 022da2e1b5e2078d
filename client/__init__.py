"""Warren's bundled AMQP 0-9-1 failover client: kombu's API, done right (issue 5, in
progress: ``Connection`` with failover, ``ensure`` and recovery, ``Producer``, ``Consumer``,
``Exchange``, ``Queue``, ``SimpleQueue``/``SimpleBuffer``, ``mixins.ConsumerMixin``,
``common.eventloop``, ``pools``, ``utils.url.parse_url``).

Usage is kombu's: ``from client import Connection, Producer, Consumer, Exchange, Queue``.
"""

from client.connection import BrokerConnection, Connection
from client.entity import Exchange, Queue
from client.errors import OperationalError
from client.messaging import Consumer, Producer

__all__ = [
    "BrokerConnection",
    "Connection",
    "Consumer",
    "Exchange",
    "OperationalError",
    "Producer",
    "Queue",
]
