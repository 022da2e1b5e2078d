"""The live driver: real TCP listeners on loopback, real time, asyncio in a background thread.

Any AMQP 0-9-1 client (kombu, pika, aio-pika, a Java client in another process) connects to
``cluster.urls`` unmodified. Every call into the sans-IO :class:`~broker_sim.node.Node`
happens on the driver's event-loop thread; test code calls the admin helpers of
:class:`LiveNode`, which hop onto that thread and wait for the result.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from broker_sim.auth import Users
from broker_sim.node import Node, NodeConfig

LOOPBACK = "127.0.0.1"


class _AMQPProtocol(asyncio.Protocol):
    def __init__(self, live: LiveNode) -> None:
        self.live = live
        self.conn = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.conn = self.live.node.connect(f"{peer[0]}:{peer[1]}" if peer else "")
        self.live.transports[self.conn] = transport
        self.live.after_io()

    def data_received(self, data: bytes) -> None:
        self.live.node.receive(self.conn, data)
        self.live.after_io()

    def connection_lost(self, exc) -> None:
        self.live.transports.pop(self.conn, None)
        self.live.node.connection_lost(self.conn)
        self.live.after_io()

    def pause_writing(self) -> None:
        self.conn.set_writable(False)

    def resume_writing(self) -> None:
        self.conn.set_writable(True)
        self.live.node.dispatch()
        self.live.after_io()


class LiveNode:
    """One simulated node behind a TCP listener; offers the tests' admin surface."""

    kind = "sim"

    def __init__(self, cluster: SimCluster, node: Node, host: str, port: int) -> None:
        self.cluster = cluster
        self.node = node
        self.name = node.name
        self.host = host
        self.port = port
        self.server: asyncio.base_events.Server | None = None
        self.transports: dict[Any, asyncio.Transport] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None

    # -- URLs -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.amqp_url()

    def amqp_url(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> str:
        quote = urllib.parse.quote
        return (
            f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/"
            f"{quote(vhost, safe='')}"
        )

    # -- loop-thread plumbing -------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _AMQPProtocol(self), self.host, self.port, reuse_address=True
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def after_io(self) -> None:
        """Write what the node produced and re-arm the timer for its next deadline."""
        for conn, data, close in self.node.take_output():
            transport = self.transports.get(conn)
            if transport is None or transport.is_closing():
                continue
            if data:
                transport.write(data)
            if close:
                transport.close()
        self._arm_timer()

    def _arm_timer(self) -> None:
        deadline = self.node.next_deadline()
        if deadline == self._timer_when:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = deadline
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = None
        self.node.tick()
        self.after_io()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the loop thread (then flush output) and return its result."""

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self.after_io()

        return self.cluster.run_in_loop(run)

    # -- admin surface (scenarios.backends.base.BrokerAdmin) ------------------------------

    def add_user(self, name: str, password: str, tags: tuple[str, ...] = ()) -> None:
        self.call(self.node.add_user, name, password, tags)

    def delete_user(self, name: str) -> None:
        self.call(self.node.delete_user, name)

    def add_vhost(self, name: str) -> None:
        self.call(self.node.add_vhost, name)

    def delete_vhost(self, name: str) -> None:
        self.call(self.node.delete_vhost, name)

    def set_permissions(self, user, vhost, configure=".*", write=".*", read=".*") -> None:
        self.call(self.node.set_permissions, user, vhost, configure, write, read)

    def clear_permissions(self, user: str, vhost: str) -> None:
        self.call(self.node.clear_permissions, user, vhost)

    def set_memory_alarm(self, active: bool) -> None:
        self.call(self.node.set_memory_alarm, active)

    def queue_depth(self, name: str, vhost: str = "/") -> int:
        return self.call(lambda: self.node.vhosts[vhost].queue(name).message_count)

    def connection_count(self) -> int:
        return self.call(lambda: len(self.node.connections))


class SimCluster:
    """Simulated RabbitMQ nodes on loopback TCP; ``with SimCluster(nodes=1) as c: c.urls``.

    ``port`` is the first node's port (0 = ephemeral; later nodes take port+i).
    ``seed`` seeds the RNG behind server-generated names.
    """

    def __init__(
        self,
        nodes: int = 1,
        host: str = LOOPBACK,
        port: int = 0,
        seed: int | None = None,
        config: NodeConfig | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError(f"nodes must be >= 1, got {nodes}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(32)
        rng = random.Random(self.seed)
        users = Users.with_guest()
        self.nodes: list[LiveNode] = []
        for i in range(nodes):
            node = Node(f"rabbit@node{i + 1}", time.time, rng, users=users, config=config)
            self.nodes.append(LiveNode(self, node, host, port + i if port else 0))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self) -> SimCluster:
        ready: Future = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), daemon=True, name="warren-live-driver"
        )
        self._thread.start()
        ready.result(timeout=10)
        return self

    def _run(self, ready: Future) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            for node in self.nodes:
                loop.run_until_complete(node.start())
        except BaseException as exc:  # a port in use, for example
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._close_all())
            loop.close()

    async def _close_all(self) -> None:
        for node in self.nodes:
            if node.server is not None:
                node.server.close()
            for transport in list(node.transports.values()):
                transport.abort()
            if node.server is not None:
                await node.server.wait_closed()

    def run_in_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        if self._loop is None:
            raise RuntimeError("SimCluster is not started")
        result: Future = Future()

        def run() -> None:
            try:
                result.set_result(fn())
            except BaseException as exc:
                result.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return result.result(timeout=timeout)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
