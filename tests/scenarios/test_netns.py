"""scenarios.backends.netns: a private LAN of namespaces, cut and healed with iptables, and
removed without a trace."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scenarios import catalog
from scenarios.backends import local_run, netns
from tests.conftest import IN_CI

# Under CI=true these run (CI is root); elsewhere a non-root user skips them with the reason.
needs_root = pytest.mark.skipif(
    netns.available() is not None and not IN_CI, reason=str(netns.available())
)

PROBE = (
    "import socket, sys\n"
    "s = socket.socket(); s.settimeout(1.0)\n"
    "try:\n    s.connect((sys.argv[1], 9)); print('open')\n"
    "except ConnectionRefusedError:\n    print('reached')\n"  # something answered: a link
    "except OSError:\n    print('cut')\n"
)


def probe(lan: netns.Lan, i: int, ip: str) -> str:
    done = subprocess.run([*lan.prefix(i), sys.executable, "-c", PROBE, ip],
                          capture_output=True, text=True, timeout=20)  # fmt: skip
    return done.stdout.strip()


def host_links() -> str:
    return subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout


@needs_root
def test_nodes_reach_each_other_and_the_host_until_cut_then_again_after_heal():
    with netns.Lan(3) as lan:
        assert probe(lan, 0, lan.ips[1]) == "reached"
        assert probe(lan, 0, lan.host_ip) == "reached"
        assert lan.cut([[0], [1, 2]]) == [(0, 1), (0, 2), (1, 0), (2, 0)]
        assert probe(lan, 0, lan.ips[1]) == "cut"
        assert probe(lan, 2, lan.ips[0]) == "cut"
        assert probe(lan, 1, lan.ips[2]) == "reached"  # the same side
        assert probe(lan, 0, lan.host_ip) == "reached"  # clients on the host are never cut
        lan.heal()
        assert probe(lan, 0, lan.ips[1]) == "reached"


@needs_root
def test_destroy_removes_the_namespaces_the_bridge_and_the_forward_rule():
    lan = netns.Lan(2).create()
    assert lan.bridge in host_links()
    lan.destroy()
    lan.destroy()  # idempotent
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(ns in names for ns in lan.namespaces)
    assert lan.bridge not in host_links()
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    assert lan.bridge not in rules


@needs_root
def test_a_failing_step_leaves_nothing_behind(monkeypatch):
    lan = netns.Lan(2)
    lan.namespaces[1] = "bad/name"  # ip netns add refuses a name with a slash
    with pytest.raises(netns.NetnsUnavailable, match="ip netns add bad/name failed"):
        lan.create()
    assert lan.bridge not in host_links()


def test_not_root_says_what_is_missing_and_partition_scenarios_are_unsupported(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "need root" in netns.available()
    with pytest.raises(netns.NetnsUnavailable, match="need root"):
        netns.Lan(2).create()
    reason = local_run.unsupported(catalog.find("cluster.partition-minority"))
    assert reason == "partition: partitions between real nodes need root (ip netns, iptables)"
    assert local_run.unsupported(catalog.find("publish.confirms-kill")) is None
