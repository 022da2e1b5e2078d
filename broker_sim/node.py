"""One simulated RabbitMQ node, sans-IO: the façade the drivers talk to.

Theory of operation. A driver owns the sockets and the clock. For each accepted socket it
calls :meth:`Node.connect`, then :meth:`Node.receive` with every chunk read, and
:meth:`Node.connection_lost` when the socket dies. After each call it collects
:meth:`Node.take_output` of *every* node (a publish on one node delivers to consumers on
others) — ``(connection, bytes, action)`` with action ``None``, ``"close"`` or ``"reset"``.
Timers (heartbeats, TTLs, x-expires, handshake timeout) live in ``node.timers``; the
driver sleeps until the cluster's next deadline and then calls ``cluster.tick()``. The node
never reads a clock or a random source itself: both come from its :class:`Cluster`.

A paused node (``cluster.pause``) holds input unprocessed and output unsent, and its timers
are frozen; a stopped node has no connections; both refuse nothing themselves: the driver
closes the listener of a node that is not running or paused.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pamqp import commands as C

from broker_sim.auth import MECHANISMS
from broker_sim.connection import ServerConnection
from broker_sim.replies import reply_text
from broker_sim.timers import Timers

if TYPE_CHECKING:
    from broker_sim.cluster import Cluster

#: What this node advertises (rabbit_reader:server_capabilities, RabbitMQ 3.13).
SERVER_CAPABILITIES = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}


@dataclass
class NodeConfig:
    """Tunables with RabbitMQ's defaults (rabbitmq.conf names in comments)."""

    frame_max: int = 131072  # frame_max
    channel_max: int = 2047  # channel_max
    heartbeat: int = 60  # heartbeat
    product_version: str = "3.13.7"
    cluster_name: str = "warren"
    #: seconds every reply waits before it leaves (drivers apply it; 0 = off). The simulator
    #: answers in microseconds, a real node in a millisecond or more: a client whose close or
    #: shutdown races only show against real timing wants 0.001-0.005 here.
    reply_latency: float = 0.0
    consumer_timeout: int | None = 1_800_000  # consumer_timeout (ms; None = off)
    #: quorum queues' delivery limit when x-delivery-limit is not given; None: the default
    #: of the version in product_version (none on 3.x, 20 on 4.x)
    delivery_limit: int | None = None


@dataclass
class Event:
    time: float
    kind: str
    node: str
    details: dict = field(default_factory=dict)


class Node:
    def set_state(self, value: str) -> None:
        """Every state change goes here: reachability answers cached so far are stale."""
        self.state = value
        self.cluster.topology_moved()

    def __init__(self, name: str, cluster: Cluster) -> None:
        self.name = name
        self.cluster = cluster
        self.config = replace(cluster.config)  # per node: tune one alone
        self.timers = Timers()
        self.connections: dict[int, ServerConnection] = {}
        self.state = "running"
        self.paused_at = 0.0
        self.alarm_active = False
        self.heartbeats_dropped = False
        self._next_conn_id = 0
        # connections with bytes to take: drivers test it before take_output, on every write
        self.pending_output: dict[ServerConnection, None] = {}
        self._held: dict[ServerConnection, list[bytes]] = {}
        self._lost_while_paused: list[ServerConnection] = []  # closes it has not read yet
        self.confirm_pending: dict[ServerConnection, None] = {}

    # -- shared state ---------------------------------------------------------------------

    def now(self) -> float:
        return self.cluster.now()

    @property
    def users(self):
        return self.cluster.users

    @property
    def vhosts(self):
        return self.cluster.vhosts

    @property
    def events(self):
        return self.cluster.events

    @property
    def running(self) -> bool:
        return self.state == "running"

    # -- driver surface -------------------------------------------------------------------

    def connect(self, peer: str = "") -> ServerConnection:
        self._next_conn_id += 1
        conn = ServerConnection(self, self._next_conn_id, peer)
        self.connections[conn.id] = conn
        self.log_event("connection-accepted", conn=conn.id, peer=peer)
        if self.state == "paused":
            self._held[conn] = []
        return conn

    def receive(self, conn: ServerConnection, data: bytes) -> None:
        if self.state == "paused":
            self._held.setdefault(conn, []).append(data)
            return
        if conn.id not in self.connections:
            return
        conn.receive(data)
        self.cluster.dispatch()

    def connection_lost(self, conn: ServerConnection) -> None:
        if self.state == "paused":  # a hung node reads no FIN either: seen at resume
            self._lost_while_paused.append(conn)
            return
        self._held.pop(conn, None)
        if self.connections.pop(conn.id, None) is not None:
            conn.connection_lost()
        self.pending_output.pop(conn, None)
        self.cluster.dispatch()

    def take_output(self) -> list[tuple[ServerConnection, bytes, str | None]]:
        if self.state == "paused":
            return []
        ready = list(self.pending_output)
        self.pending_output.clear()
        result = []
        for conn in ready:
            action = "reset" if conn.reset_transport else "close" if conn.close_transport else None
            result.append((conn, conn.take_output(), action))
            if action:
                self.connections.pop(conn.id, None)
        return result

    def mark_output(self, conn: ServerConnection) -> None:
        self.pending_output[conn] = None

    def flush_confirms(self) -> None:
        """Send the confirms queued during the last input (only connections that have any)."""
        pending, self.confirm_pending = self.confirm_pending, {}
        for conn in pending:
            if conn.confirm_channels:
                conn._flush_confirms()

    # -- lifecycle (called by the cluster's faults) ---------------------------------------

    def crash(self) -> None:
        """SIGKILL: every socket is reset, nothing is sent, all timers are gone."""
        self.set_state("stopped")
        for conn in list(self.connections.values()):
            conn.out.clear()
            conn.reset_transport = True
            conn.connection_lost()
            self.mark_output(conn)
        self._held.clear()
        self._lost_while_paused.clear()
        self.timers.clear()

    def graceful_stop(self, keep_state: str = "stopped") -> None:
        """Stop the app: 320 CONNECTION_FORCED to every client, then close the sockets."""
        if self.state == "paused":
            self.resume_connections()
        self.set_state(keep_state)
        code, text = reply_text("shutdown")
        for conn in list(self.connections.values()):
            if conn.state == "open":
                conn.server_close(code, text)
            conn._drop()
        self.timers.clear()

    def resume_connections(self) -> None:
        """After a pause: process the input that arrived while the node hung."""
        held, self._held = self._held, {}
        for conn, chunks in held.items():
            if conn.id in self.connections and chunks:
                conn.receive(b"".join(chunks))
        lost, self._lost_while_paused = self._lost_while_paused, []
        for conn in lost:
            self.connection_lost(conn)

    # -- connection lifecycle hooks -------------------------------------------------------

    def start_method(self) -> C.Connection.Start:
        cfg = self.config
        props = {
            "product": "RabbitMQ",
            "version": cfg.product_version,
            "platform": "Erlang/OTP 26.2 (Warren simulation)",
            "copyright": "Warren simulated broker; RabbitMQ is a trademark of Broadcom",
            "information": "Warren: a simulated RabbitMQ node for failover testing",
            "cluster_name": cfg.cluster_name,
            "capabilities": dict(SERVER_CAPABILITIES),
        }
        return C.Connection.Start(0, 9, props, " ".join(sorted(MECHANISMS, reverse=True)), "en_US")

    def connection_opened(self, conn: ServerConnection) -> None:
        self.log_event("connection-open", conn=conn.id, peer=conn.peer, user=conn.user.name)

    def generate_name(self, prefix: str) -> str:
        """RabbitMQ's rabbit_guid style names (``amq.gen-``/``amq.ctag-`` + 22 chars)."""
        raw = self.cluster.rng.getrandbits(128).to_bytes(16, "big")
        return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def log_event(self, kind: str, **details) -> None:
        self.cluster.log(kind, self.name, **details)

    # -- admin (rabbitmqctl equivalents) --------------------------------------------------

    def add_user(self, name: str, password: str, tags: tuple[str, ...] = ()) -> None:
        self.users.add(name, password, tags)

    def delete_user(self, name: str) -> None:
        self.users.delete(name)

    def add_vhost(self, name: str) -> None:
        self.cluster.add_vhost(name)

    def set_vhost_limits(self, vhost: str, **limits: int) -> None:
        """rabbitmqctl set_vhost_limits -p VHOST '{"max-connections": N, "max-queues": N}'
        (keyword names with underscores; a negative value lifts the limit)."""
        target = self.cluster.vhosts[vhost]
        target.limits = {k.replace("_", "-"): int(v) for k, v in limits.items()}

    def set_policy(self, vhost: str, name: str, pattern: str, definition: dict,
                   priority: int = 0, apply_to: str = "all") -> None:  # fmt: skip
        """rabbitmqctl set_policy -p VHOST --priority P --apply-to A NAME PATTERN DEF."""
        self.cluster.vhosts[vhost].set_policy(name, pattern, definition, priority, apply_to)

    def clear_policy(self, vhost: str, name: str) -> None:
        self.cluster.vhosts[vhost].clear_policy(name)

    def delete_vhost(self, name: str) -> None:
        self.cluster.delete_vhost(name)

    def set_permissions(self, user, vhost, configure=".*", write=".*", read=".*") -> None:
        from broker_sim.auth import Permission

        if user not in self.users.users:
            raise KeyError(f"no user '{user}'")
        if vhost not in self.vhosts:
            raise KeyError(f"no vhost '{vhost}'")
        self.users.permissions[(user, vhost)] = Permission(configure, write, read)

    def clear_permissions(self, user: str, vhost: str) -> None:
        self.users.permissions.pop((user, vhost), None)

    def set_memory_alarm(self, active: bool) -> None:
        """Raise/clear a memory alarm on this node. Alarms are cluster-wide in RabbitMQ:
        publishers on every node get connection.blocked while any node is in alarm."""
        if active == self.alarm_active:
            return
        before = self.cluster.alarm_active
        self.alarm_active = active
        self.cluster.alarm_count += 1 if active else -1
        self.log_event("alarm-set" if active else "alarm-cleared", resource="memory")
        after = self.cluster.alarm_active
        if before == after:
            return
        if after:
            return  # publishers are blocked (and told so) when they next publish
        for node in self.cluster.nodes.values():
            for conn in list(node.connections.values()):
                if conn.state != "open":
                    continue
                if conn.blocked_sent:
                    conn.blocked_sent = False
                    conn.send_method(0, C.Connection.Unblocked())
                conn.unblock()
        self.cluster.dispatch()

    def _send_blocked(self, conn: ServerConnection) -> None:
        if conn.client_capability("connection.blocked") and not conn.blocked_sent:
            conn.blocked_sent = True
            conn.send_method(0, C.Connection.Blocked(reason="low on memory"))
