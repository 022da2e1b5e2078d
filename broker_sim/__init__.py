"""broker_sim: a simulated RabbitMQ node/cluster that speaks AMQP 0-9-1 on the wire.

The core (node, connection, channel, queues, exchanges, framing) is sans-IO; the drivers in
:mod:`broker_sim.drivers` run it over real TCP (``live``) or, later, in virtual time.
"""

from broker_sim.drivers.live import LiveNode, SimCluster
from broker_sim.node import Node, NodeConfig

__all__ = ["LiveNode", "Node", "NodeConfig", "SimCluster"]
