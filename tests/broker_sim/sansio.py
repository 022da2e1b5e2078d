"""A minimal in-memory peer for driving a sans-IO :class:`Node` in tests: no sockets, a
manual clock, frames built with pamqp."""

from __future__ import annotations

import random

from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

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
        while node is not None:
            deadline = node.next_deadline()
            if deadline is None or deadline > end:
                break
            self.t = max(self.t, deadline)
            node.tick()
        self.t = end


def make_node(seed: int = 1) -> tuple[Node, ManualClock]:
    clock = ManualClock()
    return Node("rabbit@test", clock, random.Random(seed)), clock


class Peer:
    """One client connection: send frames, collect decoded frames the node wrote."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.conn = node.connect("test:1")
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
        for conn, data, close in self.node.take_output():
            if conn is not self.conn:
                continue
            self.buffer += data
            self.closed = self.closed or close
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
