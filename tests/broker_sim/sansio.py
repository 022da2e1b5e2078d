"""A minimal in-memory peer for driving a sans-IO :class:`Node` in tests: no sockets, a
manual clock, frames built with pamqp."""

from __future__ import annotations

import random

from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

from broker_sim.cluster import Cluster
from broker_sim.framing import PROTOCOL_HEADER
from broker_sim.node import Node


class ManualClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float, node: Node | None = None) -> None:
        """Move time forward, firing the node's timers in order as they fall due."""
        end = self.t + seconds
        cluster = node.cluster if node is not None else None
        while cluster is not None:
            deadline = cluster.next_deadline()
            if deadline is None or deadline > end:
                break
            self.t = max(self.t, deadline)
            cluster.tick()
        self.t = end


def make_cluster(nodes: int = 3, seed: int = 1) -> tuple[Cluster, ManualClock]:
    clock = ManualClock()
    return Cluster(nodes, clock, random.Random(seed)), clock


def make_node(seed: int = 1) -> tuple[Node, ManualClock]:
    cluster, clock = make_cluster(1, seed)
    return cluster.first_node, clock


class Peer:
    """One client connection: send frames, collect decoded frames the node wrote."""

    by_conn: dict = {}  # noqa: RUF012  (every peer, so output for others is not lost)

    def __init__(self, node: Node) -> None:
        self.node = node
        self.conn = node.connect("test:1")
        Peer.by_conn[self.conn] = self
        self.reset = False
        self.buffer = b""
        self.closed = False
        self.frames: list = []

    def send_bytes(self, data: bytes) -> None:
        self.node.receive(self.conn, data)
        self.pump()

    def send(self, channel: int, *frames) -> None:
        self.send_bytes(b"".join(pframe.marshal(f, channel) for f in frames))

    def publish(self, channel: int, exchange: str, key: str, body: bytes, **props) -> None:
        self.send(
            channel,
            C.Basic.Publish(exchange=exchange, routing_key=key),
            pheader.ContentHeader(0, len(body), C.Basic.Properties(**props)),
            *([pframe.body.ContentBody(body)] if body else []),
        )

    def pump(self) -> None:
        for node in self.node.cluster.nodes.values():
            for conn, data, action in node.take_output():
                if conn is self.conn:
                    self.buffer += data
                    self.closed = self.closed or action is not None
                    self.reset = action == "reset"
                else:
                    peer = Peer.by_conn.get(conn)
                    if peer is not None:
                        peer.buffer += data
                        peer.closed = peer.closed or action is not None
        while self.buffer:
            if self.buffer.startswith(b"AMQP"):
                self.frames.append(("header", self.buffer[:8]))
                self.buffer = self.buffer[8:]
                continue
            try:
                used, channel, value = pframe.unmarshal(self.buffer)
            except Exception:
                break
            self.buffer = self.buffer[used:]
            self.frames.append((channel, value))

    def take(self) -> list:
        self.pump()
        frames, self.frames = self.frames, []
        return frames

    def methods(self) -> list:
        return [f for _, f in self.take() if not isinstance(f, (tuple, str))]

    def handshake(
        self,
        heartbeat: int = 0,
        vhost: str = "/",
        user: str = "guest",
        password: str = "guest",
        capabilities: dict | None = None,
    ) -> list:
        caps = (
            capabilities
            if capabilities is not None
            else {
                "consumer_cancel_notify": True,
                "connection.blocked": True,
                "authentication_failure_close": True,
            }
        )
        self.send_bytes(PROTOCOL_HEADER)
        self.send(
            0,
            C.Connection.StartOk(
                client_properties={"capabilities": caps},
                mechanism="PLAIN",
                response=f"\0{user}\0{password}",
            ),
        )
        self.send(
            0, C.Connection.TuneOk(2047, 131072, heartbeat), C.Connection.Open(virtual_host=vhost)
        )
        return self.methods()

    def open_channel(self, number: int = 1) -> None:
        self.send(number, C.Channel.Open())
        assert isinstance(self.methods()[-1], C.Channel.OpenOk)


def is_heartbeat(value) -> bool:
    return isinstance(value, pheartbeat.Heartbeat)
