"""A read-mostly subset of RabbitMQ's management HTTP API, per simulated node, sans-IO.

:class:`~broker_sim.management.api.ManagementAPI` answers
``handle(method, target, headers, body) -> (status, headers, body)`` from the simulated
cluster's state, as the ``rabbitmq_management`` plugin (3.13) on the answering node would:
``/api/overview``, ``/api/nodes[/{node}]``, ``/api/queues[/{vhost}[/{name}]]``,
``/api/connections[/{name}]`` (``DELETE`` force-closes one), ``/api/exchanges[/{vhost}
[/{name}]]`` and ``/api/bindings[/{vhost}]``. The JSON shapes live in
:mod:`broker_sim.management.views`. The driver (:mod:`broker_sim.drivers.management`) owns
the HTTP listener of each node and its life: it dies with the node and a hung node answers
nothing.

Where the simulation cannot say what RabbitMQ says, it leaves the field out rather than
invent it: message rates are 0.0, there are no memory, process or garbage-collection
figures, a binding's ``properties_key`` hashes its arguments with CRC-32 where RabbitMQ uses
``erlang:phash2`` (both are opaque keys), and a quorum queue between leaders reports
``leader``/``node`` as ``null`` (RabbitMQ keeps naming the last leader until one is elected).
"""

from broker_sim.management.api import ManagementAPI

__all__ = ["ManagementAPI"]
