"""The management API's listener on the live driver: it lives and dies with its node."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request

import pytest

from broker_sim import SimCluster

AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def overview(url: str, timeout: float = 5.0) -> dict:
    req = urllib.request.Request(f"{url}/api/overview", headers={"Authorization": AUTH})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def refused(url: str) -> bool:
    try:
        overview(url, timeout=2)
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, ConnectionRefusedError)
    return False


@pytest.fixture
def cluster():
    with SimCluster(nodes=3, seed=7) as sim:
        yield sim


def test_every_node_serves_its_own_api(cluster):
    urls = [n.management_url for n in cluster.nodes]
    assert len(set(urls)) == 3 and all(u.startswith("http://127.0.0.1:") for u in urls)
    assert [overview(u)["node"] for u in urls] == [n.name for n in cluster.nodes]
    listeners = overview(urls[0])["listeners"]
    http = sorted((li["node"], li["port"]) for li in listeners if li["protocol"] == "http")
    assert http == [(n.name, int(n.management_url.rsplit(":", 1)[1])) for n in cluster.nodes]


def test_killed_and_stopped_nodes_refuse_and_come_back_on_the_same_port(cluster):
    node1, node2 = cluster.nodes[0], cluster.nodes[1]
    url = node1.management_url
    cluster.kill("node1")
    assert refused(url)
    assert overview(node2.management_url)["node"] == node2.name
    cluster.start_node("node1")
    assert node1.management_url == url and overview(url)["node"] == node1.name
    cluster.stop_node("node2")
    assert refused(node2.management_url)


def test_minority_node_refuses(cluster):
    cluster.partition([["node1", "node2"], ["node3"]])
    assert refused(cluster.nodes[2].management_url)
    assert overview(cluster.nodes[0].management_url)["node"] == cluster.nodes[0].name
    cluster.heal()
    assert overview(cluster.nodes[2].management_url)["node"] == cluster.nodes[2].name


def test_a_hung_node_answers_only_after_it_resumes(cluster):
    url = cluster.nodes[0].management_url
    cluster.pause("node1")
    with pytest.raises(TimeoutError):
        overview(url, timeout=0.5)
    answers: list = []
    waiting = threading.Thread(target=lambda: answers.append(overview(url, timeout=10)))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and not answers  # accepted, held
    cluster.resume("node1")
    waiting.join(5)
    assert [a["node"] for a in answers] == ["rabbit@node1"]


def test_a_request_held_by_a_hung_node_that_dies_gets_no_answer(cluster):
    url = cluster.nodes[0].management_url
    cluster.pause("node1")
    errors: list = []

    def ask() -> None:
        try:
            overview(url, timeout=10)
        except Exception as exc:
            errors.append(exc)

    waiting = threading.Thread(target=ask)
    waiting.start()
    waiting.join(0.5)
    cluster.kill("node1")
    waiting.join(5)
    assert not waiting.is_alive() and len(errors) == 1
    assert not isinstance(errors[0], TimeoutError)


def test_management_can_be_off_and_ports_are_checked():
    with SimCluster(nodes=1, management_port=None) as sim:
        assert sim.nodes[0].management_url is None
    with pytest.raises(ValueError, match="management_port"):
        SimCluster(nodes=2, management_port=65535)
