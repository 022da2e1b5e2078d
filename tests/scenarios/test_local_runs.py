"""The local backend: catalog scenarios against a real 3-node rabbitmq-server cluster, the
same fault vocabulary, and the verdicts the simulator gives (scenarios.fidelity)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import kombu
import kombu.exceptions
import pytest

from scenarios import adapters, catalog
from scenarios.backends import local_run
from scenarios.backends.local import RabbitMQUnavailable
from scenarios.model import Fault
from scenarios.runner import run_one
from tests.conftest import IN_CI

# a run (~45 s) and the resets around it: one that relaunches a node whose Erlang ``global``
# hung after a heal takes ~2 min more (LocalTarget._restart_outsider)
pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module")
def shared():
    """The process's shared real cluster (net tick 60 as the catalog's), closed after."""
    try:
        local_run.shared_target(3, 60)
    except RabbitMQUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true and the real RabbitMQ cluster could not start: {exc}")
        pytest.skip(f"real rabbitmq-server unavailable: {exc}")
    yield
    local_run.close_shared()


@pytest.fixture
def target(shared):
    """The shared cluster now: a run whose reset failed replaces it with a fresh one."""
    return local_run.shared_target(3, 60)


def running(target) -> list[str]:
    status = json.loads(target.cluster.nodes[0].ctl("cluster_status", "--formatter", "json"))
    return sorted(status["running_nodes"])


def test_the_cluster_has_three_running_nodes_behind_their_proxies(target):
    assert running(target) == sorted(n.name for n in target.cluster.nodes)
    names = sorted(target._api("GET", "/proxies"))
    assert names == ["node1", "node2", "node3"]
    with kombu.Connection(target.url(1)) as conn:  # through node2's proxy
        queue = conn.SimpleQueue("local-probe")
        queue.put({"n": 1})
        assert queue.get(timeout=5).payload == {"n": 1}
        queue.clear()
        queue.close()


@pytest.mark.parametrize(
    "name",
    [
        "publish.no-confirms-kill",  # SIGKILL a node, relaunch it (confirms-kill: see the note)
        "network.reset-peer",  # a Toxiproxy toxic on the node's proxy
        "cluster.resource-alarm",  # a real memory alarm
        "cluster.partition-minority",  # iptables between the nodes' network namespaces
    ],
)
def test_catalog_scenario_passes_on_real_rabbitmq_as_on_the_simulator(target, name):
    scenario = catalog.find(name)
    adapter = adapters.load("bundled")
    sim = run_one(scenario, 1, adapter, "virtual")
    real = run_one(scenario, 1, adapter, "local")
    assert real.backend == "local"
    assert (sim.verdict, real.verdict) == ("pass", "pass"), (real.misses, real.error)
    assert real.figures["lost"] == 0 and real.figures["delivered"] > 0
    assert running(target) == sorted(n.name for n in target.cluster.nodes)  # reset after


def test_a_scenario_with_a_fault_real_nodes_cannot_take_is_an_error_naming_it(target):
    scenario = catalog.find("heartbeat.dropped-by-broker")
    result = run_one(scenario, 1, adapters.load("bundled"), "local")
    assert result.verdict == "error"
    assert "drop_heartbeats" in result.error and "local backend" in result.error


def test_a_bad_node_name_names_the_nodes(target):
    with pytest.raises(ValueError, match=r"no node named 'node9' \(nodes: node1, node2, node3\)"):
        target.apply(Fault("kill", ("node9",), {}, at=0.0))


def test_reset_brings_back_a_node_left_killed_and_a_proxy_left_down(target):
    target.apply(Fault("kill", ("node3",), {}, at=0.0))
    target.apply(Fault("down", ("node2",), {}, at=0.0))
    refused = (OSError, kombu.exceptions.OperationalError)
    with pytest.raises(refused), kombu.Connection(target.url(1), connect_timeout=2) as conn:
        conn.connect()
    target.reset()
    assert running(target) == sorted(n.name for n in target.cluster.nodes)
    with kombu.Connection(target.url(1), connect_timeout=5) as conn:
        conn.connect()
        assert conn.connected


def app_running(node) -> bool:
    return node.ctl("eval", "rabbit:is_running().", timeout=15).strip() == "true"


def test_a_partition_pauses_the_minority_at_once_and_heal_brings_it_back(target):
    """pause_minority on real nodes: node1 cut off stops serving, the majority goes on."""
    nodes = target.cluster.nodes
    assert target.cluster.lan is not None, "as root the local cluster runs in namespaces"
    target.apply(Fault("partition", ([["node1"], ["node2", "node3"]],), {}, at=0.0))
    try:
        assert not app_running(nodes[0])
        assert app_running(nodes[1]) and app_running(nodes[2])
        with kombu.Connection(target.url(2), connect_timeout=5) as conn:  # the majority serves
            conn.ensure_connection(max_retries=1)
    finally:
        target.apply(Fault("heal", (), {}, at=0.0))
    target.reset()
    assert running(target) == sorted(n.name for n in nodes)


def test_the_warren_fixture_runs_a_users_kombu_worker_on_the_real_cluster(target):
    """The harness the plugin's fixture yields, on ``--warren-backend local``: a kombu
    publisher in the test's own vhost through the proxies, a real SIGKILL of its node (the
    quorum queue leads on node1: kombu does not retry the nacks a leader's death brings,
    publish.confirms-kill), the history's
    figures; the vhost and user are gone afterwards and the cluster is whole again."""
    from scenarios.harness import Settings, open_harness

    harness = open_harness(Settings(backend="local", users={"app": "pw"}))
    sent = []
    work = kombu.Queue("work", durable=True, queue_arguments={"x-queue-type": "quorum"})

    def publisher():
        urls = ";".join([harness.urls[1], harness.urls[2]])  # node2, then node3
        with kombu.Connection(urls, transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            publish = conn.ensure(producer, producer.publish, max_retries=20)
            for n in range(20):
                publish({"n": n}, routing_key="work", declare=[work])
                sent.append(n)
                harness.sleep(0.1)

    try:
        assert harness.vhost in harness.urls[0]
        assert harness.vhost in harness.amqp_url(1, "app", "pw")
        with kombu.Connection(harness.urls[0]) as first:  # the queue leads on node1
            work(first.default_channel).declare()
        harness.spawn("publisher", publisher)
        harness.at(0.5, "kill", "node2")
        harness.run(until=60)
        assert sent == list(range(20))
        assert any(e[1] == "fault" for e in harness.history)
        with kombu.Connection(harness.amqp_url(2, "app", "pw")) as conn:  # the marker's user
            declared = conn.default_channel.queue_declare("work", passive=True)
            assert declared.message_count == 20
    finally:
        vhost = harness.vhost
        harness.close()
    vhosts = target.cluster.nodes[0].ctl("list_vhosts", "--quiet").split()
    users = target.cluster.nodes[0].ctl("list_users", "--quiet")
    assert vhost not in vhosts and "app" not in users.split()
    assert running(target) == sorted(n.name for n in target.cluster.nodes)


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "celery"


@pytest.fixture
def shop(monkeypatch):
    """examples/celery's apps importable here and in the worker processes."""
    pytest.importorskip("celery")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    path = os.pathsep.join(p for p in (str(EXAMPLE), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)


@pytest.mark.parametrize(("app", "verdict"), [("worker", "fail"), ("hardened", "pass")])
def test_celery_delayed_delivery_stalls_on_real_rabbitmq_as_on_the_simulator(
    target, shop, app, verdict
):
    """Finding 1 of README "Testing a Celery app": with a 4 s heartbeat the worker cycles
    connect / delayed-delivery stall / dropped for as long as node3 is down; with 20 s it
    outlasts the stall. Measured the same on the live simulated cluster (examples/celery)."""
    adapter = adapters.load(f"celery:shop.{app}:app")
    result = run_one(catalog.find("cluster.node-stays-down"), 1, adapter, "local")
    assert result.verdict == verdict, (result.misses, result.error, result.escaped)
    if verdict == "fail":
        assert result.figures["reconnects"] >= 3 and result.figures["lost"] > 100


def test_a_hung_real_node_hangs_the_celery_worker_until_it_resumes(target, shop):
    """Finding 2: the worker fails over from the SIGSTOPped node, then waits for close-ok on
    its old events connection there; tasks flow again only after the resume (at 90 s)."""
    adapter = adapters.load("celery:shop.worker:app")
    result = run_one(catalog.find("heartbeat.idle-consumer-hung-node"), 1, adapter, "local")
    assert result.verdict == "fail", (result.misses, result.error)
    assert result.figures["max_consumer_silence"] >= 40 and result.figures["reconnects"] >= 1
