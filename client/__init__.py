"""Warren's bundled AMQP 0-9-1 failover client: kombu's API, done right: ``Connection`` with
failover, ``ensure`` and recovery, ``Producer``, ``Consumer``, ``Exchange``, ``Queue``,
``binding``, ``SimpleQueue``/``SimpleBuffer``, ``mixins.ConsumerMixin``,
``common.eventloop``, ``pools``, ``utils.url.parse_url``.

Usage is kombu's: ``from client import Connection, Producer, Consumer, Exchange, Queue``.
"""

from client.connection import BrokerConnection, Connection
from client.entity import Exchange, Queue, binding
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
    "binding",
]
