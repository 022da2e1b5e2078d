"""One simulated RabbitMQ node, sans-IO: the façade the drivers talk to.

Theory of operation. A driver owns the sockets and the clock. For each accepted socket it
calls :meth:`Node.connect`, then :meth:`Node.receive` with every chunk read, and
:meth:`Node.connection_lost` when the socket dies. After each call it collects
:meth:`Node.take_output` — ``(connection, bytes, close_after)`` triples — and writes them.
Timers (heartbeats, TTLs, x-expires, handshake timeout) live in ``node.timers``; the
driver sleeps until :meth:`Node.next_deadline` and then calls :meth:`Node.tick`. The node
never reads a clock or a random source itself: ``clock`` and ``rng`` are injected.

After every input batch the node dispatches the queues that became deliverable, so a
publish on one connection turns into deliveries on others before the driver writes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from pamqp import commands as C

from broker_sim.auth import MECHANISMS, Users
from broker_sim.connection import ServerConnection
from broker_sim.queues import ClassicQueue, Consumer
from broker_sim.replies import Code, reply_text
from broker_sim.timers import Timers
from broker_sim.vhost import VHost

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


@dataclass
class Event:
    time: float
    kind: str
    node: str
    details: dict = field(default_factory=dict)


class Node:
    def __init__(
        self,
        name: str,
        clock: Callable[[], float],
        rng,
        users: Users | None = None,
        config: NodeConfig | None = None,
        events: list[Event] | None = None,
    ) -> None:
        self.name = name
        self.now = clock
        self.rng = rng
        self.config = config or NodeConfig()
        self.users = users or Users.with_guest()
        self.timers = Timers()
        self.vhosts: dict[str, VHost] = {"/": VHost("/", self)}
        self.connections: dict[int, ServerConnection] = {}
        self.events = events if events is not None else []
        self.alarm_active = False
        self.heartbeats_dropped = False
        self._next_conn_id = 0
        self._output: dict[ServerConnection, None] = {}

    # -- driver surface -------------------------------------------------------------------

    def connect(self, peer: str = "") -> ServerConnection:
        self._next_conn_id += 1
        conn = ServerConnection(self, self._next_conn_id, peer)
        self.connections[conn.id] = conn
        return conn

    def receive(self, conn: ServerConnection, data: bytes) -> None:
        conn.receive(data)
        self.dispatch()

    def connection_lost(self, conn: ServerConnection) -> None:
        conn.connection_lost()
        self.connections.pop(conn.id, None)
        self._output.pop(conn, None)
        self.dispatch()

    def tick(self) -> None:
        self.timers.run_due(self.now())
        self.dispatch()

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def take_output(self) -> list[tuple[ServerConnection, bytes, bool]]:
        ready = list(self._output)
        self._output.clear()
        result = []
        for conn in ready:
            result.append((conn, conn.take_output(), conn.close_transport))
            if conn.close_transport:
                self.connections.pop(conn.id, None)
        return result

    def mark_output(self, conn: ServerConnection) -> None:
        self._output[conn] = None

    def dispatch(self) -> None:
        """Deliver from every queue that became deliverable during the last input."""
        for vhost in self.vhosts.values():
            while vhost.dirty:
                queues = list(vhost.dirty)
                vhost.dirty.clear()
                for queue in queues:
                    if not queue.deleted:
                        queue.dispatch()
        for conn in list(self.connections.values()):
            if conn.confirm_channels:
                conn._flush_confirms()

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
        if self.alarm_active:
            self._send_blocked(conn)

    def server_cancel(self, consumer: Consumer, queue: ClassicQueue) -> None:
        consumer.channel.server_cancel(consumer)

    def generate_name(self, prefix: str) -> str:
        """RabbitMQ's rabbit_guid style names (``amq.gen-``/``amq.ctag-`` + 22 chars)."""
        raw = self.rng.getrandbits(128).to_bytes(16, "big")
        return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def log_event(self, kind: str, **details) -> None:
        self.events.append(Event(self.now(), kind, self.name, details))

    # -- admin (rabbitmqctl equivalents) --------------------------------------------------

    def add_user(self, name: str, password: str, tags: tuple[str, ...] = ()) -> None:
        self.users.add(name, password, tags)

    def delete_user(self, name: str) -> None:
        self.users.delete(name)

    def add_vhost(self, name: str) -> None:
        if name in self.vhosts:
            raise ValueError(f"vhost '{name}' already exists")
        self.vhosts[name] = VHost(name, self)

    def delete_vhost(self, name: str) -> None:
        vhost = self.vhosts.pop(name, None)
        if vhost is None:
            raise KeyError(f"no vhost '{name}'")
        code, text = reply_text("forced", reason=f"vhost '{name}' is deleted")
        for conn in list(self.connections.values()):
            if conn.vhost is vhost:
                conn.server_close(code, text)
        for key in [k for k in self.users.permissions if k[1] == name]:
            del self.users.permissions[key]

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
        """Raise/clear a memory alarm: connection.blocked / unblocked (RabbitMQ 3.x)."""
        if active == self.alarm_active:
            return
        self.alarm_active = active
        self.log_event("alarm-set" if active else "alarm-cleared", resource="memory")
        for conn in list(self.connections.values()):
            if conn.state != "open":
                continue
            if active:
                self._send_blocked(conn)
            else:
                if conn.blocked_sent:
                    conn.blocked_sent = False
                    conn.send_method(0, C.Connection.Unblocked())
                conn.unblock()
        self.dispatch()

    def _send_blocked(self, conn: ServerConnection) -> None:
        if conn.client_capability("connection.blocked") and not conn.blocked_sent:
            conn.blocked_sent = True
            conn.send_method(0, C.Connection.Blocked(reason="low on memory"))

    def shutdown(self) -> None:
        """Graceful stop: every client gets 320 CONNECTION_FORCED (rabbit_networking)."""
        code, text = reply_text("shutdown")
        assert code == Code.CONNECTION_FORCED
        for conn in list(self.connections.values()):
            if conn.state == "open":
                conn.server_close(code, text)
            else:
                conn._drop()
