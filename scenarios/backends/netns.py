"""A private LAN of network namespaces: how real RabbitMQ nodes get partitioned here.

Theory of operation (measured recipe: ../shared/notes/real-rabbitmq.md, "Partitions between
real nodes"). Nodes on one loopback cannot be cut from each other, so for partitions each
node runs in a network namespace of its own, attached by a veth pair to a bridge on the
host. The host holds the bridge's address (``.1``), so the host's Toxiproxy server and CLI
calls reach every node; node ``i`` holds ``.{i + 2}``. A partition is a set of iptables
DROP rules inside each node's namespace against the addresses of the nodes on the other
side (both INPUT and OUTPUT, so neither side sees the other's packets; RabbitMQ notices at
``net_ticktime``); ``heal`` flushes them. Client traffic from the host is never cut.

Everything here needs root (``ip netns``, ``iptables``); :func:`available` says why not
otherwise. Names carry a random suffix so that two runs never share a bridge or namespace,
and :meth:`Lan.destroy` removes exactly what :meth:`Lan.create` made (deleting a namespace
deletes its veth end; the bridge goes last).

Only the bridge's addresses are used (10.213.X.0/24, X random): traffic stays in namespaces
that Warren creates.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess

from scenarios.backends.base import BackendUnavailable

SUBNET = "10.213.{}.0/24"


class NetnsUnavailable(BackendUnavailable):
    """Network namespaces or iptables cannot be used here (not root, tools missing)."""


def available() -> str | None:
    """None when namespaces and iptables can be used, else what is missing."""
    if os.geteuid() != 0:
        return "partitions between real nodes need root (ip netns, iptables)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} not on PATH: apt-get install iproute2 iptables"
    return None


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise NetnsUnavailable(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return done


class Lan:
    """A bridge on the host and one namespace per node (``warren-<suffix>-<i>``)."""

    def __init__(self, count: int) -> None:
        suffix = "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=5))
        self.count = count
        self.bridge = f"wbr{suffix}"  # interface names: 15 characters at most
        self.namespaces = [f"warren-{suffix}-{i + 1}" for i in range(count)]
        self._veths = [f"wv{suffix}{i + 1}" for i in range(count)]
        self.octet = random.randrange(10, 250)
        self.host_ip = f"10.213.{self.octet}.1"
        self.ips = [f"10.213.{self.octet}.{i + 2}" for i in range(count)]
        self.created = False

    def create(self) -> Lan:
        reason = available()
        if reason:
            raise NetnsUnavailable(reason)
        self.created = True
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            # Bridged packets pass the host's FORWARD chain when br_netfilter is loaded, and
            # dockerd leaves its policy at DROP: let this bridge's own traffic through
            _run("iptables", *self._forward_rule("-I"))
            for ns, veth, ip in zip(self.namespaces, self._veths, self.ips, strict=True):
                _run("ip", "netns", "add", ns)
                _run("ip", "link", "add", f"{veth}h", "type", "veth", "peer", "name", f"{veth}n")
                _run("ip", "link", "set", f"{veth}n", "netns", ns)
                _run("ip", "link", "set", f"{veth}h", "master", self.bridge, "up")
                self.ns_run(ns, "ip", "addr", "add", f"{ip}/24", "dev", f"{veth}n")
                self.ns_run(ns, "ip", "link", "set", f"{veth}n", "up")
                self.ns_run(ns, "ip", "link", "set", "lo", "up")
        except BaseException:
            self.destroy()
            raise
        return self

    def prefix(self, i: int) -> list[str]:
        """The command prefix that runs a program inside node ``i``'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[i]]

    def ns_run(self, ns: str, *cmd: str) -> None:
        _run("ip", "netns", "exec", ns, *cmd)

    def cut(self, groups: list[list[int]]) -> list[tuple[int, int]]:
        """Partition: every node drops the packets of every node outside its group (a node
        in no group is cut from all). Returns the (node, peer) pairs cut, so that the
        caller can also close the links already open between them (a dropped packet alone
        is noticed only after ``net_ticktime``)."""
        self.heal()
        side = {i: set(group) for group in groups for i in group}
        pairs = []
        for i, ns in enumerate(self.namespaces):
            for j, ip in enumerate(self.ips):
                if j != i and j not in side.get(i, {i}):
                    self.ns_run(ns, "iptables", "-A", "INPUT", "-s", ip, "-j", "DROP")
                    self.ns_run(ns, "iptables", "-A", "OUTPUT", "-d", ip, "-j", "DROP")
                    pairs.append((i, j))
        return pairs

    def heal(self) -> None:
        for ns in self.namespaces:
            self.ns_run(ns, "iptables", "-F", "INPUT")
            self.ns_run(ns, "iptables", "-F", "OUTPUT")

    def destroy(self) -> None:
        """Remove the namespaces (and with them their veth ends) and the bridge; idempotent."""
        if not self.created:
            return
        for ns, veth in zip(self.namespaces, self._veths, strict=True):
            _run("ip", "netns", "del", ns, check=False)
            _run("ip", "link", "del", f"{veth}h", check=False)
        _run("iptables", *self._forward_rule("-D"), check=False)
        _run("ip", "link", "del", self.bridge, check=False)
        self.created = False

    def _forward_rule(self, verb: str) -> list[str]:
        return [verb, "FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]

    def __enter__(self) -> Lan:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
