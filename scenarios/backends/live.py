"""The live backend: a scenario on :class:`~broker_sim.SimCluster` (real TCP on loopback,
real time), so any client library runs unmodified (kombu, pika, the user's own code).

The run itself is :func:`scenarios.backends.realtime.run_realtime`, shared with the real
RabbitMQ backends; this module is the simulated cluster as its target: node faults go
through ``SimCluster``, the Toxiproxy ones through the cluster's own Toxiproxy API (no
extra hop), the alarm through the node.
"""

from __future__ import annotations

import json

from broker_sim import SimCluster
from scenarios.backends.realtime import TOXIPROXY_FAULTS, run_realtime, toxiproxy_request

CLUSTER_CALLS = {
    "kill": "kill",
    "stop": "stop_node",
    "start": "start_node",
    "restart": "restart",
    "pause": "pause",
    "resume": "resume",
    "partition": "partition",
    "heal": "heal",
    "drop_heartbeats": "drop_heartbeats",
}


def apply_fault(cluster: SimCluster, fault) -> None:
    """One fault of the vocabulary on the live cluster (raises ValueError if it cannot)."""
    action, args = fault.action, fault.args
    if action in CLUSTER_CALLS:
        getattr(cluster, CLUSTER_CALLS[action])(*args)
    elif action in ("alarm", "clear_alarm"):
        cluster.node(args[0]).set_memory_alarm(action == "alarm")
    elif action in TOXIPROXY_FAULTS:
        _toxiproxy(cluster, action, args, fault.kwargs)
    else:
        raise ValueError(f"fault {action!r} is not available on the live backend")


def _toxiproxy(cluster: SimCluster, action: str, args: tuple, kwargs: dict) -> None:
    method, path, body = toxiproxy_request(action, args, kwargs)
    raw = json.dumps(body).encode() if body is not None else b""
    status, _, reply = cluster.call(lambda: cluster.toxiproxy.api.handle(method, path, {}, raw))
    if status >= 400:
        raise ValueError(f"{method} {path}: HTTP {status} {reply.decode().strip()}")


class SimTarget:
    """A :class:`SimCluster` as :func:`run_realtime`'s target."""

    vhost = "/"

    def __init__(self, sim: SimCluster) -> None:
        self.sim = sim
        self.node_ports = [node.port for node in sim.nodes]

    def url(self, i: int) -> str:
        return self.sim.urls[i]

    def apply(self, fault) -> None:
        apply_fault(self.sim, fault)


def run_live(scenario, seed: int, adapter, wall_timeout: float = 300.0):
    setup = scenario.setup
    with SimCluster(
        nodes=setup.nodes,
        seed=seed,
        election_timeout=setup.election_timeout,
        net_ticktime=setup.net_ticktime,
    ) as sim:
        return run_realtime(scenario, seed, adapter, SimTarget(sim), "live", wall_timeout)
