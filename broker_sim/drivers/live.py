"""The live driver: real TCP listeners on loopback, real time, asyncio in a background thread.

Any AMQP 0-9-1 client (kombu, pika, aio-pika, a Java client in another process) connects to
``cluster.urls`` unmodified. Every call into the sans-IO :class:`~broker_sim.cluster.Cluster`
happens on the driver's event-loop thread; test code calls the admin and fault helpers of
:class:`SimCluster` and :class:`LiveNode`, which hop onto that thread and wait.

What the sockets do for each node state: ``stopped``/``minority`` close the listener
(connection refused) — a crash resets every client socket (RST, via SO_LINGER 0), a
graceful stop sends connection.close 320 first; ``paused`` keeps the listener and the
sockets open but stops reading them, so clients see silence; ``running`` reopens the
listener on the same port. A connection that a resource alarm blocks stops being read
too, until the alarm clears (TCP back-pressure, as rabbit_reader stops reading).

Each node also serves the management HTTP API (``LiveNode.management_url``; off with
``management_port=None``) from :mod:`broker_sim.drivers.management`, whose listener
follows the node's state the same way.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from broker_sim.cluster import Cluster
from broker_sim.drivers.loop_timer import LoopTimer
from broker_sim.drivers.management import ManagementServer
from broker_sim.drivers.pipes import TimedPipe
from broker_sim.drivers.sim_toxiproxy import SimToxiproxy
from broker_sim.drivers.sockets import listening_socket
from broker_sim.node import Node, NodeConfig
from broker_sim.toxics.latency import LatencyToxic
from broker_sim.urls import amqp_url

LOOPBACK = "127.0.0.1"
REPLY_LATENCY = "warren_reply_latency"  # NodeConfig.reply_latency's stage on each link
_LINGER_RESET = struct.pack("ii", 1, 0)


class ClientLink:
    """A client socket of a node and its two toxic pipes (see sim_toxiproxy)."""

    def __init__(self, live: LiveNode, conn, transport: asyncio.Transport) -> None:
        self.live, self.conn, self.transport = live, conn, transport
        self.up = TimedPipe(self._to_node, self._close)
        self.down = TimedPipe(transport.write, self._close)
        latency = live.node.config.reply_latency
        if latency > 0:  # a built-in latency stage ahead of any toxic: replies keep order
            ms = max(1, round(latency * 1000))  # whole milliseconds, as Toxiproxy's latency
            stage = LatencyToxic(name=REPLY_LATENCY, attributes={"latency": ms})
            self.down.add(REPLY_LATENCY, stage.new_state(None))
        api = live.sim.toxiproxy
        proxy = api.api.proxies.get(live.name.split("@", 1)[-1]) if api else None
        for toxic in proxy.toxics.values() if proxy else ():
            self.pipe(toxic.stream).add(toxic.name, toxic.new_state(api.rng))

    def pipe(self, stream: str) -> TimedPipe:
        return self.up if stream == "upstream" else self.down

    def _to_node(self, data: bytes) -> None:
        self.live.node.receive(self.conn, data)
        if self.conn.reading_blocked and self.transport.is_reading():
            self.transport.pause_reading()  # an alarm blocks it: TCP back-pressure
        self.live.sim.after_io()

    def _close(self, reset: bool) -> None:
        if reset:
            _reset(self.transport)
        elif not self.transport.is_closing():
            self.transport.close()


class _AMQPProtocol(asyncio.Protocol):
    def __init__(self, live: LiveNode) -> None:
        self.live = live
        self.conn = None
        self.link: ClientLink | None = None

    def connection_made(self, transport) -> None:
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.conn = self.live.node.connect(f"{peer[0]}:{peer[1]}" if peer else "")
        self.live.transports[self.conn] = transport
        self.link = self.live.links[self.conn] = ClientLink(self.live, self.conn, transport)
        if self.live.node.state == "paused":
            transport.pause_reading()
        self.live.sim.after_io()

    def data_received(self, data: bytes) -> None:
        self.link.up.push(data)
        self.live.sim.after_io()

    def eof_received(self) -> bool:
        self.link.up.push_close()
        return True  # keep the socket until the pipe applies the close

    def connection_lost(self, exc) -> None:
        self.live.transports.pop(self.conn, None)
        self.live.links.pop(self.conn, None)
        self.link.up.closed = self.link.down.closed = True
        self.live.node.connection_lost(self.conn)
        self.live.sim.after_io()

    def pause_writing(self) -> None:
        self.conn.set_writable(False)

    def resume_writing(self) -> None:
        self.conn.set_writable(True)
        self.live.node.cluster.dispatch()
        self.live.sim.after_io()


class LiveNode:
    """One simulated node behind a TCP listener; offers the tests' admin surface."""

    kind = "sim"

    def __init__(self, sim: SimCluster, node: Node, host: str, port: int) -> None:
        self.sim = sim
        self.node = node
        self.name = node.name
        self.host = host
        self.port = port
        self.server: asyncio.base_events.Server | None = None
        self._bound: socket.socket | None = None  # listening, not yet served (bind_listener)
        self.transports: dict[Any, asyncio.Transport] = {}
        self.links: dict[Any, ClientLink] = {}
        self.proxy_enabled = True  # the node's Toxiproxy proxy (disabled = down)
        self.management: ManagementServer | None = None  # set by SimCluster

    # -- URLs -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.amqp_url()

    def amqp_url(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> str:
        return amqp_url(self.host, self.port, user, password, vhost)

    @property
    def management_url(self) -> str | None:
        """The management HTTP API's base URL (``.../api/overview``; guest/guest)."""
        return self.management.url if self.management is not None else None

    # -- loop-thread plumbing -------------------------------------------------------------

    def bind_listener(self) -> None:
        """Listen now: the kernel queues connections at once, before :meth:`listen` runs on
        the loop (so an API call that enables the node answers only when it accepts)."""
        if self.server is not None or self._bound is not None:
            return
        sock = listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._bound = sock

    async def listen(self) -> None:
        self.bind_listener()
        sock, self._bound = self._bound, None
        if sock is None or self.server is not None:  # closed meanwhile, or serving already
            return
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _AMQPProtocol(self), sock=sock)

    def close_listener(self) -> None:
        """Stop accepting at once (open connections are the caller's business)."""
        if self._bound is not None:
            self._bound.close()
            self._bound = None
        if self.server is not None:
            self.server.close()
            self.server = None

    async def sync_listener(self) -> None:
        """Open or close the listener to match the node's state."""
        accepting = self.node.state in ("running", "paused") and self.proxy_enabled
        if accepting and self.server is None:
            await self.listen()
        elif not accepting:
            self.close_listener()
        paused = self.node.state == "paused"
        for conn, transport in list(self.transports.items()):
            reading = not (paused or conn.reading_blocked)  # a hung node, or an alarm
            if reading and not transport.is_reading():
                transport.resume_reading()
            elif not reading and transport.is_reading():
                transport.pause_reading()
        if self.management is not None:
            await self.management.sync()

    def write_output(self) -> None:
        for conn, data, action in self.node.take_output():
            transport = self.transports.get(conn)
            if transport is None or transport.is_closing():
                continue
            link = self.links.get(conn)
            if action == "reset":  # a crash resets at once, whatever the toxics hold
                _reset(transport)
                continue
            if data:
                link.down.push(data) if link else transport.write(data)
            if action == "close":
                link.down.push_close() if link else transport.close()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.sim.call(fn, *args, **kwargs)

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

    def set_vhost_limits(self, vhost: str, **limits: int) -> None:
        self.call(self.node.set_vhost_limits, vhost, **limits)

    def set_policy(self, vhost, name, pattern, definition, priority=0, apply_to="all") -> None:
        self.call(self.node.set_policy, vhost, name, pattern, definition, priority, apply_to)

    def clear_policy(self, vhost: str, name: str) -> None:
        self.call(self.node.clear_policy, vhost, name)

    def queue_depth(self, name: str, vhost: str = "/") -> int:
        return self.sim.queue_depth(name, vhost)

    def connection_count(self) -> int:
        return self.call(lambda: len(self.node.connections))

    @property
    def state(self) -> str:
        return self.node.state


def _reset(transport: asyncio.Transport) -> None:
    """Close with RST, as the kernel does for a killed process's sockets."""
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass
    transport.abort()


class SimCluster:
    """Simulated RabbitMQ nodes on loopback TCP; ``with SimCluster(nodes=3) as c: c.urls``.

    ``port`` is the first node's port (0 = ephemeral; later nodes take port+i);
    ``management_port`` likewise for the management HTTP API (None = no management API).
    ``seed`` seeds every random choice (generated names, leader elections).
    Faults: ``kill``, ``stop``, ``start``, ``restart``, ``pause``, ``resume``,
    ``partition``, ``heal``, ``drop_heartbeats`` (see :mod:`broker_sim.cluster`).
    """

    def __init__(
        self,
        nodes: int = 1,
        host: str = LOOPBACK,
        port: int = 0,
        seed: int | None = None,
        config: NodeConfig | None = None,
        election_timeout: float = 1.0,
        net_ticktime: float = 60.0,
        api_port: int | None = 0,
        management_port: int | None = 0,
    ) -> None:
        if not isinstance(nodes, int) or nodes < 1:
            raise ValueError(f"nodes must be an integer >= 1, got {nodes!r}")
        if not 0 <= port <= 65535 or (port and port + nodes - 1 > 65535):
            raise ValueError(f"port must be 0..65535 for every node, got {port}")
        mport = management_port
        if mport is not None and (not 0 <= mport <= 65535 or (mport and mport + nodes - 1 > 65535)):
            raise ValueError(f"management_port must be 0..65535 for every node, got {mport}")
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(32)
        self.cluster = Cluster(
            nodes,
            time.time,
            random.Random(self.seed),
            config=config,
            election_timeout=election_timeout,
            net_ticktime=net_ticktime,
        )
        self.nodes: list[LiveNode] = [
            LiveNode(self, node, host, port + i if port else 0)
            for i, node in enumerate(self.cluster.nodes.values())
        ]
        for i, live in enumerate(self.nodes if management_port is not None else ()):
            live.management = ManagementServer(live, management_port + i if management_port else 0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._timer = LoopTimer(time.time, self._on_timer)
        self._flush_scheduled = False
        self.toxiproxy = (
            SimToxiproxy(self, host, api_port, seed=self.seed ^ 0x70C1C)
            if api_port is not None
            else None
        )

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def api_url(self) -> str | None:
        """The Toxiproxy-compatible API for this cluster's client links (one proxy a node)."""
        return self.toxiproxy.url if self.toxiproxy is not None else None

    @property
    def events(self):
        return self.cluster.events

    def node(self, name: str) -> LiveNode:
        full = self.cluster.node(name).name
        return next(n for n in self.nodes if n.name == full)

    # -- lifecycle ------------------------------------------------------------------------

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
                loop.run_until_complete(node.listen())
            for node in self.nodes:
                if node.management is not None:
                    loop.run_until_complete(node.management.sync())
            if self.toxiproxy is not None:
                self.toxiproxy.install_nodes()
                loop.run_until_complete(self.toxiproxy.serve())
        except BaseException as exc:  # a port in use, for example
            loop.run_until_complete(self._close_all())
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
        if self.toxiproxy is not None:
            self.toxiproxy.shutdown()
        for node in self.nodes:
            if node.management is not None:
                node.management.close()
            if node.server is not None:
                node.server.close()
            for transport in list(node.transports.values()):
                transport.abort()
        for node in self.nodes:
            if node.server is not None:
                await node.server.wait_closed()

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

    # -- loop-thread plumbing -------------------------------------------------------------

    def after_io(self) -> None:
        """Schedule one flush per event-loop iteration: everything the nodes produced while
        handling this iteration's reads goes out in one write per socket (as RabbitMQ's
        writer process coalesces frames), then the timer is re-armed."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        for node in self.nodes:
            node.write_output()
        self._arm_timer()

    def _arm_timer(self) -> None:
        self._timer.arm(self.cluster.next_deadline())

    def _on_timer(self) -> None:
        self.cluster.tick()
        self.after_io()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0, **kwargs) -> Any:
        """Run ``fn`` on the loop thread, sync listeners, flush output; return its result."""
        if self._loop is None:
            raise RuntimeError("SimCluster is not started")

        async def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                for node in self.nodes:
                    await node.sync_listener()
                self.after_io()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=timeout)

    # -- faults (DESIGN section 3) --------------------------------------------------------

    def kill(self, node: str) -> None:
        self.call(self.cluster.kill, node)

    def stop_node(self, node: str) -> None:
        self.call(self.cluster.stop, node)

    def start_node(self, node: str) -> None:
        self.call(self.cluster.start, node)

    def restart(self, node: str) -> None:
        self.call(self.cluster.restart, node)

    def pause(self, node: str) -> None:
        self.call(self.cluster.pause, node)

    def resume(self, node: str) -> None:
        self.call(self.cluster.resume, node)

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        self.call(self.cluster.partition, groups)

    def heal(self) -> None:
        self.call(self.cluster.heal)

    def drop_heartbeats(self, node: str, dropped: bool = True) -> None:
        self.call(self.cluster.drop_heartbeats, node, dropped)

    # -- inspection -----------------------------------------------------------------------

    def quorum_leader(self, queue: str, vhost: str = "/") -> str | None:
        return self.call(lambda: self.cluster.vhosts[vhost].queue(queue).leader)

    def queue_depth(self, queue: str, vhost: str = "/") -> int:
        return self.call(lambda: self.cluster.vhosts[vhost].queue(queue).message_count)

    def consumer_count(self, queue: str, vhost: str = "/") -> int:
        return self.call(lambda: len(self.cluster.vhosts[vhost].queue(queue).consumers))

    def connections(self) -> dict[str, int]:
        """Open client connections per node."""
        return self.call(lambda: {n.name: len(n.connections) for n in self.cluster.nodes.values()})

    def node_states(self) -> dict[str, str]:
        return self.call(lambda: {n.name: n.state for n in self.cluster.nodes.values()})
