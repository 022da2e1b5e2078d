"""``isolate`` / ``rejoin`` on the live backend: a role's cable pulled and plugged back.

In the virtual world (:meth:`broker_sim.drivers.virtual.World.isolate`) an isolated actor's
links go silent, with no FIN and no RST, and its new connections time out. On real sockets
the same is built from Toxiproxy, as a user would build it: every role of the scenario
reaches each node through a proxy of its own (``<role>-<node>`` on a Warren Toxiproxy
server), and ``isolate ROLE`` puts a ``timeout`` toxic with timeout 0 on both streams of
that role's proxies (Toxiproxy: the data is held, the connection stays open, until the
toxic goes); new connections are accepted by the proxy and then hear nothing, as a
handshake over a pulled cable. ``rejoin ROLE`` removes the toxics.

A role is the thread an adapter's method runs in (the live backend names it after the
role), so a role's URLs are its proxies' whatever the client library; a connection opened
from another thread (a user's own pool thread) goes direct and is not isolated.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from broker_sim.drivers.live import LOOPBACK
from broker_sim.drivers.proxy import ToxiproxyServer

TOXIC = "isolated"


class RoleLinks:
    """One proxy per (role, node) in front of ``node_ports``; ``url_of(i)`` per thread."""

    def __init__(self, roles: list[str], node_ports: list[int], seed: int) -> None:
        self.server = ToxiproxyServer(port=0, seed=seed).start_background()
        self.roles = roles
        self.ports: dict[tuple[str, int], int] = {}
        for role in roles:
            for i, port in enumerate(node_ports):
                upstream = f"{LOOPBACK}:{port}"
                body = {"name": f"{role}-{i}", "listen": f"{LOOPBACK}:0", "upstream": upstream}
                answer = self._request("POST", "/proxies", body)
                self.ports[(role, i)] = int(answer["listen"].rpartition(":")[2])

    def port_for(self, i: int) -> int | None:
        """The calling role's proxy port to node ``i`` (None outside a role's thread)."""
        return self.ports.get((threading.current_thread().name, i))

    def isolate(self, role: str) -> None:
        for i in self._indexes(role):
            for stream in ("upstream", "downstream"):
                body = {"name": f"{TOXIC}_{stream}", "type": "timeout", "stream": stream,
                        "toxicity": 1.0, "attributes": {"timeout": 0}}  # fmt: skip
                self._request("POST", f"/proxies/{role}-{i}/toxics", body)

    def rejoin(self, role: str) -> None:
        for i in self._indexes(role):
            for stream in ("upstream", "downstream"):
                self._request("DELETE", f"/proxies/{role}-{i}/toxics/{TOXIC}_{stream}")

    def close(self) -> None:
        self.server.stop_background()

    def _indexes(self, role: str) -> list[int]:
        indexes = [i for (r, i) in self.ports if r == role]
        if not indexes:
            raise ValueError(f"no role named {role!r} (roles: {', '.join(self.roles)})")
        return indexes

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        return toxiproxy_api(self.server.url, method, path, body)


def toxiproxy_api(base_url: str, method: str, path: str, body: dict | None = None):
    """One call of a Toxiproxy HTTP API; a 4xx/5xx is a ValueError naming the status and body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base_url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            raw = reply.read()
    except urllib.error.HTTPError as exc:
        raise ValueError(f"{method} {path}: HTTP {exc.code} {exc.read().decode()}") from exc
    return json.loads(raw) if raw else {}
