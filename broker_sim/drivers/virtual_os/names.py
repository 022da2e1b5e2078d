"""Name resolution for actors: the world's DNS.

``world`` (and :data:`~broker_sim.drivers.world_links.WORLD_IP`) on port 50000+i is node i,
on 51000+ the proxies made through the world's Toxiproxy API; a proxy's name (``node1``, or
an API proxy's name) on port 5672 or its own port is that proxy, and so is any name
``world.hosts`` maps to it (``world.hosts["broker1"] = "node1"``, an /etc/hosts line, so a
recipe's URLs run as written). ``localhost`` and address literals resolve as the OS
resolves them. Any other name would need real DNS: :class:`~.scope.WorldViolation`.
"""

from __future__ import annotations

import ipaddress
import socket

from broker_sim.drivers.virtual_os.scope import actor_world, violation
from broker_sim.drivers.world_links import HOST, WORLD_IP

_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(world, host: str, port: int, call: str) -> tuple[str, int]:
    """(address, port) for ``host`` as the world's DNS answers it."""
    if host == "localhost":
        return "127.0.0.1", port
    proxy = world.proxies.lookup(host, port)
    if proxy is not None:
        return WORLD_IP, int(proxy.listen.rsplit(":", 1)[1])
    if host == HOST or _is_address(host):
        return (WORLD_IP if host == HOST else host), port
    if world.hosts.get(host, host) in world.toxiproxy.proxies:
        return WORLD_IP, port  # a proxy's name on a port it does not listen on: refused
    raise violation(world, call, f"the name {host!r} is not in the world (real DNS)")


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    world = actor_world()
    if world is None:
        return _real_getaddrinfo(host, port, family, type, proto, flags)
    if isinstance(host, bytes):
        host = host.decode()
    port = _port_number(port)
    address, port = resolve(world, host or "localhost", port, "socket.getaddrinfo")
    if family == socket.AF_INET6 or ":" in address:
        raise violation(world, "socket.getaddrinfo", "the world has no IPv6 addresses")
    kinds = [type] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW]
    protos = {socket.SOCK_STREAM: socket.IPPROTO_TCP, socket.SOCK_DGRAM: socket.IPPROTO_UDP}
    return [
        (socket.AF_INET, kind, proto or protos.get(kind, 0), "", (address, port)) for kind in kinds
    ]


def _port_number(port) -> int:
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        try:
            return int(port)
        except ValueError:
            return socket.getservbyname(port, "tcp")
    return int(port)


def gethostbyname(host: str) -> str:
    world = actor_world()
    if world is None:
        return _real_gethostbyname(host)
    return resolve(world, host, 0, "socket.gethostbyname")[0]


def replacements() -> dict[object, object]:
    return {_real_getaddrinfo: getaddrinfo, _real_gethostbyname: gethostbyname}
