"""The docker backend (``warren run --backend docker``): catalog scenarios against a real
RabbitMQ cluster in containers (:class:`~scenarios.backends.docker.DockerCluster`), under
the same fault vocabulary by node name, with the run machinery of
:mod:`scenarios.backends.local_run` (one cluster per process, a fresh vhost and a reset per
run). Partitions are network disconnects of the minority side (DockerCluster.partition).
"""

from __future__ import annotations

from scenarios.backends.docker import DockerCluster
from scenarios.backends.local_run import node_index
from scenarios.backends.realtime import TOXIPROXY_FAULTS, toxiproxy_request

UNAVAILABLE = {
    "drop_heartbeats": "a real RabbitMQ node cannot be made to stop sending heartbeats",
    "crash": "client crashes are virtual-backend faults",
    "restart_client": "client crashes are virtual-backend faults",
}
NODE_FAULTS = ("kill", "stop", "start", "restart", "pause", "resume")


class DockerTarget:
    """A :class:`DockerCluster` as :func:`~scenarios.backends.realtime.run_realtime`'s
    target (nodes named ``node1``... as everywhere else)."""

    def __init__(self, nodes: int = 3, net_ticktime: int = 60) -> None:
        self.cluster = DockerCluster(nodes=nodes, net_ticktime=net_ticktime)
        self.nodes_count, self.net_ticktime = nodes, net_ticktime
        self.vhost = "/"
        self.node_ports: list[int] = []

    def start(self) -> DockerTarget:
        try:
            self.cluster.start()
            self.node_ports = list(self.cluster.proxy_ports)
        except BaseException:  # nothing left running: containers, network, our dockerd
            self.cluster.close()
            raise
        return self

    def close(self) -> None:
        self.cluster.close()

    def url(self, i: int) -> str:
        return self.cluster.url(i, vhost=self.vhost)

    def apply(self, fault) -> None:
        action, args = fault.action, fault.args
        if action in UNAVAILABLE:
            raise ValueError(f"not available on the docker backend: {UNAVAILABLE[action]}")
        if action in TOXIPROXY_FAULTS:
            self.cluster.toxiproxy(*toxiproxy_request(action, args, fault.kwargs))
        elif action in NODE_FAULTS:
            getattr(self.cluster, action)(self._index(args[0]))
        elif action == "partition":
            self.cluster.partition([[self._index(n) for n in group] for group in args[0]])
        elif action == "heal":
            self.cluster.heal()
        elif action in ("alarm", "clear_alarm"):
            self.cluster.set_memory_alarm(self._index(args[0]), action == "alarm")
        else:
            raise ValueError(f"fault {action!r} is not available on the docker backend")

    def _index(self, name: str) -> int:
        return node_index(name, self.nodes_count)

    def reset(self) -> None:
        self.cluster.reset()

    @property
    def toxiproxy_url(self) -> str:
        return self.cluster.toxiproxy_url

    def ctl(self, *args: str) -> str:
        """rabbitmqctl on a running node (the admin of a user's test)."""
        return self.cluster.ctl(self.cluster._any_running(), *args)

    def fresh_vhost(self, name: str) -> str:
        self.cluster.add_vhost(name)
        self.vhost = name
        return name

    def drop_vhost(self) -> None:
        if self.vhost != "/":
            self.cluster.delete_vhost(self.vhost)
        self.vhost = "/"
