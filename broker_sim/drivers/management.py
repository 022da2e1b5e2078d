"""The management plugin's HTTP listener of one live simulated node.

RabbitMQ's ``rabbitmq_management`` listener runs inside the node, so it shares the node's
fate, and :meth:`ManagementServer.sync` (called whenever the live driver syncs the node's
AMQP listener) makes it do so: ``running`` and ``paused`` nodes listen, on the same port
every time; a ``stopped`` or ``minority`` node (killed, stopped, or paused by
pause_minority: its rabbit app is down) closes the listener and drops every HTTP client;
a ``paused`` (hung) node accepts and reads requests but answers none until it resumes,
when the held requests are answered in order. Toxiproxy toxics and disabled proxies act on
AMQP client links only, not on this listener.

The answers come from the sans-IO :class:`~broker_sim.management.api.ManagementAPI`; each
request runs on the driver's loop thread like every other call into the cluster, and the
output it causes (a force-closed connection's connection.close) is flushed after it.
"""

from __future__ import annotations

import asyncio
import contextlib

from broker_sim.drivers.http import serve_http
from broker_sim.drivers.sockets import listening_socket
from broker_sim.management import ManagementAPI

LISTENING_STATES = ("running", "paused")


class ManagementServer:
    def __init__(self, live, port: int = 0) -> None:
        self.live = live
        self.host = live.host
        self.port = port
        self.server: asyncio.base_events.Server | None = None
        self.api: ManagementAPI | None = None
        self.clients: set[asyncio.StreamWriter] = set()
        self._generation = 0  # bumped when the listener closes: held requests are dropped
        self._wake: asyncio.Event | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def listeners(self) -> dict[str, dict[str, tuple[str, int]]]:
        """Every node's AMQP and HTTP listener (connection names, the overview)."""
        out = {}
        for live in self.live.sim.nodes:
            out[live.name] = {"amqp": (live.host, live.port)}
            if live.management is not None:
                out[live.name]["http"] = (live.host, live.management.port)
        return out

    # -- lifecycle (on the loop thread) ---------------------------------------------------

    async def sync(self) -> None:
        """Open or close the listener to match the node's state; wake held requests."""
        if self.live.node.state in LISTENING_STATES:
            if self.server is None:
                await self._listen()
        else:
            self.close()
        if self.live.node.state != "paused" and self._wake is not None:
            self._wake.set()
            self._wake = None

    async def _listen(self) -> None:
        sock = listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        if self.api is None:
            self.api = ManagementAPI(self.live.sim.cluster, self.live.name, self.listeners)
        self.server = await asyncio.start_server(self._client, sock=sock)

    def close(self) -> None:
        """The node is gone: no listener, every HTTP client dropped, held requests too."""
        if self.server is not None:
            self.server.close()
            self.server = None
            self._generation += 1
        for writer in list(self.clients):
            writer.transport.abort()
        self.clients.clear()
        if self._wake is not None:
            self._wake.set()
            self._wake = None

    # -- requests -------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients.add(writer)
        try:
            await serve_http(reader, writer, self._handle)
        finally:
            self.clients.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, method: str, target: str, headers: dict, body: bytes):
        generation = self._generation
        while self.live.node.state == "paused" and generation == self._generation:
            if self._wake is None:
                self._wake = asyncio.Event()
            await self._wake.wait()
        if generation != self._generation or self.server is None:
            return None  # the node died while the request waited
        answer = self.api.handle(method, target, headers, body)
        self.live.sim.after_io()
        return answer
