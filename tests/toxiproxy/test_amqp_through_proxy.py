"""AMQP through the Toxiproxy-compatible proxy: what kombu sees for network toxics."""

from __future__ import annotations

import json
import urllib.request

import kombu
import pytest

from broker_sim import SimCluster
from broker_sim.drivers.proxy import ToxiproxyServer
from tests.heartbeats import kombu_heartbeat_failure


@pytest.fixture
def proxied_url():
    with SimCluster(nodes=1) as cluster, ToxiproxyServer(port=0, seed=3) as proxy:
        node = cluster.nodes[0]
        body = json.dumps({"name": "rabbit", "upstream": f"127.0.0.1:{node.port}"}).encode()
        request = urllib.request.Request(proxy.url + "/proxies", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            listen = json.loads(response.read())["listen"]
        yield f"amqp://guest:guest@{listen}/%2F", proxy


def add_toxic(proxy, toxic: dict) -> None:
    request = urllib.request.Request(
        proxy.url + "/proxies/rabbit/toxics", data=json.dumps(toxic).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_kombu_behind_a_timeout_toxic_detects_the_dead_link_by_heartbeat(proxied_url):
    url, proxy = proxied_url
    err, elapsed = kombu_heartbeat_failure(
        url, lambda: add_toxic(proxy, {"type": "timeout", "attributes": {"timeout": 0}})
    )
    assert "Too many heartbeats missed" in str(err)
    assert elapsed < 9


def test_reset_peer_gives_kombu_a_connection_reset(proxied_url):
    url, proxy = proxied_url
    conn = kombu.Connection(url)
    try:
        conn.connect()
        add_toxic(proxy, {"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}})
        with pytest.raises(conn.connection_errors) as info:
            conn.default_channel.queue_declare("through-proxy", auto_delete=True)
            conn.drain_events(timeout=2)
        assert (
            isinstance(info.value, (ConnectionResetError, OSError))
            or "reset" in str(info.value).lower()
        )
    finally:
        conn.collect()
