"""Client links inside the virtual world, and the world's Toxiproxy (``World.toxiproxy``).

A :class:`WorldTransport` is the bundled client's socket in the world: bytes the client
sends go through the link's ``upstream`` :class:`~broker_sim.toxics.pipe.ToxicPipe` to the
node, what the node writes comes back through the ``downstream`` pipe (after the world's
seeded network jitter). With no toxics both pipes are transparent. A close or reset coming
out of either pipe cuts the link at both ends, as Toxiproxy closes the client and the
upstream connection together.

:class:`WorldProxies` is the world's :class:`~broker_sim.toxiproxy.api.ProxyBackend`: one
proxy per node named after it (``node1`` ...) listening on the node's own world address (no
extra hop, as the live sim), plus any proxy created through the API whose upstream is a
node's world address. Disabling a proxy (Toxiproxy's ``down``) closes its links and refuses
new connections; every toxic state draws from the world's seeded RNG.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from broker_sim.toxics import DATA, RESET, Toxic
from broker_sim.toxics.pipe import ToxicPipe
from broker_sim.toxiproxy.api import Proxy

if TYPE_CHECKING:
    from broker_sim.drivers.virtual import World

HOST = "world"
WORLD_IP = "127.254.0.1"  # the world's address for actors' sockets; loopback, so a leak is refused
AMQP_PORT = 5672
NODE_PORT = 50000  # node i listens on world:50000+i
EXTRA_PORT = 51000  # proxies created through the API get world:51000, 51001, ...
Held = tuple[bool, bytes, str | None]  # (upstream?, data, close action)


class WorldTransport:
    """One client connection: the client's side of a link into a node."""

    def __init__(self, world: World, proxy: Proxy, actor: str) -> None:
        node = world.proxies.node_of(proxy)
        if node is None or node.state not in ("running", "paused") or not proxy.enabled:
            why = "proxy disabled" if not proxy.enabled else "node not running"
            world.cluster.log("connection-refused", node.name if node else "", peer=actor,
                              address=proxy.listen, reason=why)  # fmt: skip
            raise refused()
        self.world, self.node, self.proxy, self.actor = world, node, proxy, actor
        self.conn = node.connect(f"{actor}:{proxy.name}")
        self.up, self.down = ToxicPipe(), ToxicPipe()
        now = world.clock.t
        for toxic in proxy.toxics.values():
            self.pipe(toxic.stream).add(toxic.name, toxic.new_state(world.rng), now)
        self.inbox = bytearray()
        self.closed: str | None = None  # "close" or "reset" once the client's side is cut
        self.waiter = None  # the actor blocked in recv on this link
        self.held: list[Held] = []  # what was sent while isolated, both ways, in order
        world.links[self.conn] = self
        if proxy.toxics:
            world.busy[self] = None
        world.route()

    def pipe(self, stream: str) -> ToxicPipe:
        return self.up if stream == "upstream" else self.down

    # -- the world's side ---------------------------------------------------------------------

    def from_node(self, data: bytes, action: str | None, at: float) -> None:
        """What the node wrote, arriving at the client's side at ``at`` (plus toxics)."""
        if self.actor in self.world.isolated:
            self.held.append((False, data, action))  # TCP retransmits it after the rejoin
            return
        if data:
            self.down.push(data, at)
        if action is not None:
            self.down.push_close(action == "reset", at)
        self.world.busy[self] = None

    def rejoin(self, now: float) -> None:
        """The cable is back: what both sides sent meanwhile arrives now, in order (TCP
        retransmission); a side that gave up meanwhile has its close delivered too."""
        held, self.held = self.held, []
        for upstream, data, action in held:
            if upstream:
                self.node.receive(self.conn, data)
            else:
                self.from_node(data, action, now)
        self.world.route()

    def pump(self, now: float) -> None:
        """Apply what both pipes hold that is due by ``now``; wake the reader if it got any."""
        up, down = self.up, self.down
        if up.queue or up.chain.states:
            for event in up.due(now):
                if event.kind == DATA:
                    self.node.receive(self.conn, event.data)
                else:
                    self.cut(event.kind == RESET)
        if down.queue or down.chain.states:
            for event in down.due(now):
                if event.kind == DATA:
                    self.inbox += event.data
                else:
                    self.cut(event.kind == RESET)
            if self.waiter is not None and (self.inbox or self.closed is not None):
                self.waiter.woken = True
        if not (up.queue or down.queue or up.chain.states or down.chain.states):
            self.world.busy.pop(self, None)

    def next_time(self) -> float | None:
        up, down = self.up.next_time(), self.down.next_time()
        if up is None or (down is not None and down < up):
            return down
        return up

    def cut(self, reset: bool) -> None:
        """Both ends closed: the client sees EOF (or a reset), the node loses the connection."""
        if self.closed is None:
            self.closed = "reset" if reset else "close"
        self.up.closed = self.down.closed = True
        self.world.links.pop(self.conn, None)
        if self.waiter is not None:
            self.waiter.woken = True
        self.node.connection_lost(self.conn)

    # -- the client's side (client.transport's interface) ------------------------------------

    def _arrived(self) -> bool:
        if self.inbox or self.closed is not None:
            return True
        self.pump(self.world.clock.t)
        return bool(self.inbox) or self.closed is not None

    def send(self, data: bytes, timeout: float = 10.0) -> None:
        self._arrived()  # a reset that has reached the client fails the next send, as EPIPE
        if self.closed == "reset":
            raise os_error(ConnectionResetError, errno.ECONNRESET)
        if self.closed:
            raise os_error(BrokenPipeError, errno.EPIPE)
        if self.actor in self.world.isolated:
            self.held.append((True, data, None))  # in the kernel's send queue until rejoin
            return
        if not self.up.chain.states and not self.up.queue:  # transparent: straight through
            self.node.receive(self.conn, data)
        else:
            self.up.push(data, self.world.clock.t)
            self.world.busy[self] = None
            self.pump(self.world.clock.t)
        self.world.route()

    def recv(self, timeout: float) -> bytes | None:
        if not self._arrived():
            self.waiter = self.world.current
            try:
                self.world.block("recv", timeout)
            finally:
                self.waiter = None
        if self.inbox:
            data = bytes(self.inbox)
            self.inbox.clear()
            return data
        if self.closed == "reset":
            raise os_error(ConnectionResetError, errno.ECONNRESET)
        return b"" if self.closed else None

    def readable(self) -> bool:
        """Data or the end of the stream has reached the client (no pumping: the world's
        scheduler pumps the links that have events due before it asks)."""
        return bool(self.inbox) or self.closed is not None

    def take(self, limit: int) -> bytes:
        data = bytes(self.inbox[:limit])
        del self.inbox[:limit]
        return data

    def close(self) -> None:
        if self.closed is None:
            self.closed = "close"
            if self.up.transparent:
                self.cut(False)
            else:
                self.up.push_close(False, self.world.clock.t)
                self.world.busy[self] = None
            self.world.route()

    abort = close


def os_error(kind: type[OSError], code: int) -> OSError:
    """The exception the OS raises for ``code``: the clients' handlers check the errno."""
    return kind(code, os.strerror(code))


def refused() -> ConnectionRefusedError:
    return os_error(ConnectionRefusedError, errno.ECONNREFUSED)


class WorldProxies:
    """The world's Toxiproxy backend (see the module docstring)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.nodes = {
            f"{HOST}:{NODE_PORT + i}": n for i, n in enumerate(world.cluster.nodes.values())
        }
        self.listening: dict[int, Proxy] = {}  # port -> proxy
        self._next_port = EXTRA_PORT

    def install_nodes(self) -> None:
        for address, node in self.nodes.items():
            name = node.name.split("@", 1)[-1]
            proxy = Proxy(name, address, address)
            self.world.toxiproxy.proxies[name] = proxy
            self.listening[int(address.rsplit(":", 1)[1])] = proxy

    def node_of(self, proxy: Proxy):
        return self.nodes.get(proxy.upstream)

    def links_of(self, proxy: Proxy) -> list[WorldTransport]:
        return [link for link in self.world.links.values() if link.proxy is proxy]

    def start(self, proxy: Proxy) -> str:
        if proxy.upstream not in self.nodes:
            raise OSError(f"upstream {proxy.upstream} is not a node of the world")
        port = int(proxy.listen.rsplit(":", 1)[1]) if ":" in proxy.listen else 0
        if port == 0:
            port, self._next_port = self._next_port, self._next_port + 1
        other = self.listening.get(port)
        if other is not None and other is not proxy:
            raise OSError(f"address {HOST}:{port} already in use")
        self.listening[port] = proxy
        return f"{HOST}:{port}"

    def stop(self, proxy: Proxy) -> None:
        port = int(proxy.listen.rsplit(":", 1)[1])
        if proxy.upstream != proxy.listen:  # a node's own proxy keeps its address
            self.listening.pop(port, None)
        for link in self.links_of(proxy):
            link.cut(False)
        self.world.route()

    def toxic_added(self, proxy: Proxy, toxic: Toxic) -> None:
        now = self.world.clock.t
        for link in self.links_of(proxy):
            link.pipe(toxic.stream).add(toxic.name, toxic.new_state(self.world.rng), now)
            self.world.busy[link] = None

    def toxic_removed(self, proxy: Proxy, toxic: Toxic) -> None:
        now = self.world.clock.t
        for link in self.links_of(proxy):
            link.pipe(toxic.stream).remove(toxic.name, now)
            link.pump(now)
        self.world.route()

    def toxic_updated(self, proxy: Proxy, toxic: Toxic) -> None:
        self.toxic_removed(proxy, toxic)
        self.toxic_added(proxy, toxic)

    def proxy_at(self, port: int) -> Proxy | None:
        return self.listening.get(port)

    def lookup(self, host: str, port: int) -> Proxy | None:
        """The proxy ``host:port`` names: the world's address and a port, or a proxy's name
        (or a ``world.hosts`` alias of it) with port 5672 or the proxy's own port."""
        if host in (HOST, WORLD_IP):
            return self.proxy_at(port)
        proxy = self.world.toxiproxy.proxies.get(self.world.hosts.get(host, host))
        if proxy is None:
            return None
        own = int(proxy.listen.rsplit(":", 1)[1])
        return proxy if port in (AMQP_PORT, own) else None
