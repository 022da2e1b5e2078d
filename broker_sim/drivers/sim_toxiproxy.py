"""The Toxiproxy API of a live simulated cluster: one proxy per node, no extra hop.

Each node appears as a proxy named after it (``node1`` ...) whose ``listen`` is the node's
own AMQP address: toxics act inside the driver, between the client's socket and the node,
so the same client code injects faults into the simulator and (through ``warren proxy`` or
a real Toxiproxy) into real brokers. Disabling a node's proxy drops its client connections
and closes its listener, like Toxiproxy's ``down``. Other proxies created through the API are
ordinary TCP proxies.
"""

from __future__ import annotations

import asyncio
import random

from broker_sim.drivers.proxy import ToxiproxyServer
from broker_sim.toxics import Toxic
from broker_sim.toxiproxy.api import Proxy


class SimToxiproxy(ToxiproxyServer):
    def __init__(self, sim, host: str, port: int, seed: int) -> None:
        super().__init__(host, port, seed=seed)
        self.sim = sim
        self.rng = random.Random(seed)
        self.node_proxies: dict[str, object] = {}

    def install_nodes(self) -> None:
        for live in self.sim.nodes:
            short = live.name.split("@", 1)[-1]
            self.node_proxies[short] = live
            self.api.proxies[short] = Proxy(short, f"{live.host}:{live.port}", live.name)

    def _live(self, proxy: Proxy):
        return self.node_proxies.get(proxy.name)

    def start(self, proxy: Proxy) -> str:
        live = self._live(proxy)
        if live is None:
            return super().start(proxy)
        live.proxy_enabled = True
        if live.node.state in ("running", "paused"):
            live.bind_listener()  # accepting before the API answers
        asyncio.get_running_loop().create_task(live.sync_listener())
        return f"{live.host}:{live.port}"

    def stop(self, proxy: Proxy) -> None:
        live = self._live(proxy)
        if live is None:
            super().stop(proxy)
            return
        live.proxy_enabled = False
        live.close_listener()  # refuse at once: the API answers only after this
        for link in list(live.links.values()):
            link.down.push_close()
            link.transport.close()

    def toxic_added(self, proxy: Proxy, toxic: Toxic) -> None:
        live = self._live(proxy)
        if live is None:
            super().toxic_added(proxy, toxic)
            return
        for link in live.links.values():
            link.pipe(toxic.stream).add(toxic.name, toxic.new_state(self.rng))

    def toxic_removed(self, proxy: Proxy, toxic: Toxic) -> None:
        live = self._live(proxy)
        if live is None:
            super().toxic_removed(proxy, toxic)
            return
        for link in list(live.links.values()):
            link.pipe(toxic.stream).remove(toxic.name)

    def shutdown(self) -> None:
        """Close the API and the ordinary proxies; node listeners belong to the cluster."""
        for proxy in list(self.api.proxies.values()):
            if proxy.enabled and self._live(proxy) is None:
                super().stop(proxy)
        if self._http is not None:
            self._http.close()
