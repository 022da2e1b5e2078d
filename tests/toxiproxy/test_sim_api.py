"""The live simulated cluster serves the Toxiproxy API for its own node links."""

from __future__ import annotations

import socket
import time
import urllib.parse

import pika
import pika.exceptions
import pytest
import toxiproxy
from toxiproxy.api import APIConsumer

from broker_sim import SimCluster
from tests.heartbeats import kombu_heartbeat_failure


@pytest.fixture
def cluster():
    with SimCluster(nodes=2, seed=4) as c:
        parts = urllib.parse.urlparse(c.api_url)
        APIConsumer.host, APIConsumer.port = parts.hostname, parts.port
        yield c


def test_every_node_is_a_proxy_on_its_own_address(cluster):
    proxies = toxiproxy.Toxiproxy().proxies()
    assert sorted(proxies) == ["node1", "node2"]
    assert proxies["node1"].listen == f"127.0.0.1:{cluster.nodes[0].port}"
    assert proxies["node1"].upstream == "rabbit@node1"


def timed_get(url: str) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    started = time.monotonic()
    ch.queue_declare("", exclusive=True)
    elapsed = time.monotonic() - started
    conn.close()
    return elapsed


def test_latency_toxic_slows_a_node_link_and_removal_restores_it(cluster):
    proxy = toxiproxy.Toxiproxy().get_proxy("node1")
    proxy.add_toxic(type="latency", attributes={"latency": 150})
    assert timed_get(cluster.urls[0]) >= 0.15
    assert timed_get(cluster.urls[1]) < 0.15, "other nodes are untouched"
    proxy.destroy_toxic("latency_downstream")
    assert timed_get(cluster.urls[0]) < 0.15


def test_timeout_toxic_is_detected_by_kombu_heartbeats(cluster):
    def cut() -> None:
        toxiproxy.Toxiproxy().get_proxy("node1").add_toxic(
            type="timeout", stream="downstream", attributes={"timeout": 0}
        )

    err, _ = kombu_heartbeat_failure(cluster.urls[0], cut)
    assert "Too many heartbeats missed" in str(err)


def test_disabled_node_proxy_drops_and_refuses_connections(cluster):
    conn = pika.BlockingConnection(pika.URLParameters(cluster.urls[1]))
    proxy = toxiproxy.Toxiproxy().get_proxy("node2")
    with proxy.down():
        with pytest.raises(pika.exceptions.AMQPError):
            for _ in range(30):
                conn.process_data_events(time_limit=0.1)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", cluster.nodes[1].port), timeout=2)
    again = pika.BlockingConnection(pika.URLParameters(cluster.urls[1]))
    assert again.is_open
    again.close()
