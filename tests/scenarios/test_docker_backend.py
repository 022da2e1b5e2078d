"""The docker backend against real RabbitMQ containers (scenarios/backends/docker.py).

One 3-node :class:`DockerCluster` serves the whole module (~20 s to start with the images
cached). Outside CI the module is skipped, in one line, when no Docker engine can be had
(the SDK, dockerd or root is missing); under ``CI=true`` it runs or fails. Every wait below
is bounded in count and time; traffic stays on 127.0.0.1 and the project's own network.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest

from scenarios.backends import docker as backend
from scenarios.backends.docker import LABEL, DockerCluster, DockerUnavailable

pytestmark = [pytest.mark.real, pytest.mark.timeout(300)]  # a cold image build takes ~2 min

CI = os.environ.get("CI") == "true"
RETRY = {"retry": True, "retry_policy": {"max_retries": 5, "interval_start": 0.2}}  # bounded


def _missing() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker Python SDK is not installed (pip install docker)"
    try:
        docker.from_env(timeout=5).ping()
        return None
    except Exception:
        pass
    if shutil.which("dockerd") is None:
        return "no Docker engine answers and dockerd is not installed (apt-get install docker.io)"
    if os.geteuid() != 0:
        return "no Docker engine answers and starting dockerd needs root"
    return None


MISSING = _missing()
if MISSING and not CI:  # one skip line for the module; under CI=true the fixture fails instead
    pytest.skip(f"docker backend: {MISSING}", allow_module_level=True)


@pytest.fixture(scope="module")
def cluster():
    c = DockerCluster(nodes=3, project=f"warren-test-{uuid.uuid4().hex[:6]}")
    c.start()  # DockerUnavailable (one line, nothing left running) fails the module
    yield c
    c.close()


def _kombu(url: str, **kw):
    import kombu

    return kombu.Connection(
        url, connect_timeout=5, transport_options={"confirm_publish": True}, **kw
    )


def _quorum(name: str):
    import kombu

    return kombu.Queue(
        name, durable=True, auto_delete=False, queue_arguments={"x-queue-type": "quorum"}
    )


def _round_trip(url: str, n: int = 20) -> list[str]:
    """Publish ``n`` confirmed messages to a fresh quorum queue and consume them back."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    with _kombu(url) as conn:
        queue = _quorum(name)
        producer = conn.Producer()
        for k in range(n):
            producer.publish(str(k), routing_key=name, declare=[queue], **RETRY)
        simple = conn.SimpleQueue(queue)
        got: list[str] = []
        for _ in range(n):
            message = simple.get(timeout=10)
            message.ack()
            got.append(message.payload)
        simple.close()
        conn.default_channel.queue_delete(name)
    return got


def _seen_error_within(conn, limit: float) -> float:
    """Seconds until ``conn`` raises anything but a read timeout (draining, heartbeating).
    The connection is then abandoned (``collect``): a close handshake on a cut link would
    wait for a close-ok forever."""
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < limit:
            try:
                conn.drain_events(timeout=0.25)
            except TimeoutError:
                pass
            except Exception:
                return time.monotonic() - t0
            try:
                conn.heartbeat_check()
            except Exception:
                return time.monotonic() - t0
        raise AssertionError(f"the client saw nothing within {limit} s")
    finally:
        conn.collect()


def test_cluster_has_three_running_nodes(cluster):
    status = cluster.cluster_status(0)
    assert sorted(status["running_nodes"]) == sorted(cluster.nodes)
    assert not status["partitions"]
    for c in cluster.containers:
        c.reload()
        assert c.status == "running"


def test_kombu_quorum_queue_through_the_proxy(cluster):
    assert _round_trip(cluster.urls[1], 50) == [str(k) for k in range(50)]


def test_pika_quorum_queue_through_the_proxy(cluster):
    import pika

    name = f"q-{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(cluster.urls[0]))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
        for k in range(50):
            ch.basic_publish("", name, str(k).encode())  # raises if nacked
        got = []
        for _ in range(200):  # bounded: a quorum queue's first get can come back empty
            method, _props, body = ch.basic_get(name, auto_ack=True)
            if method is not None:
                got.append(body.decode())
            if len(got) == 50:
                break
        assert got == [str(k) for k in range(50)]
        ch.queue_delete(name)
    finally:
        conn.close()


def test_kill_then_start_seen_by_a_client_of_that_node(cluster):
    with _kombu(cluster.urls[2]) as conn:
        conn.connect()
        cluster.kill(2)
        assert _seen_error_within(conn, 5) < 5
    cluster.start(2)
    assert len(_round_trip(cluster.urls[2], 5)) == 5


def test_stop_then_start_seen_by_a_client_of_that_node(cluster):
    with _kombu(cluster.urls[2]) as conn:
        conn.connect()
        t0 = time.monotonic()
        cluster.stop(2)
        assert time.monotonic() - t0 < 15
        assert _seen_error_within(conn, 5) < 5
    cluster.start(2)
    assert len(_round_trip(cluster.urls[2], 5)) == 5


def test_pause_of_another_node_leaves_the_client_working(cluster):
    name = f"q-{uuid.uuid4().hex[:8]}"
    with _kombu(cluster.urls[0]) as conn:
        queue = _quorum(name)
        queue(conn.default_channel).declare()  # before the pause: declaring needs every member
        producer = conn.Producer()
        t0 = time.monotonic()
        cluster.pause(2)
        try:
            for k in range(20):  # confirmed by the 2 running members of the quorum
                producer.publish(str(k), routing_key=name, **RETRY)
        finally:
            cluster.resume(2)
        assert time.monotonic() - t0 < 5  # well inside one net tick (10 s): not seen down
        simple = conn.SimpleQueue(queue)
        got = []
        for _ in range(20):
            message = simple.get(timeout=10)
            message.ack()
            got.append(message.payload)
        assert got == [str(k) for k in range(20)]
        simple.close()
        conn.default_channel.queue_delete(name)
    assert sorted(cluster.cluster_status(2)["running_nodes"]) == sorted(cluster.nodes)


def test_partition_then_heal_seen_by_a_client_of_the_minority(cluster):
    with _kombu(cluster.urls[2], heartbeat=2) as conn:
        conn.connect()
        t0 = time.monotonic()
        cluster.partition([[0, 1], [2]])
        assert time.monotonic() - t0 < 5
        assert _seen_error_within(conn, 12) < 12  # missed heartbeats through the proxy
    cluster.heal()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # pause_minority: node 3 rejoins by itself
        status = cluster.cluster_status(0)
        if status and len(status["running_nodes"]) == 3 and not status["partitions"]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the partition did not heal within 60 s")
    cluster.reset()
    assert len(_round_trip(cluster.urls[2], 5)) == 5


def test_toxics_down_and_latency_on_the_proxy(cluster):
    cluster.down(0)
    conn = _kombu(cluster.urls[0])
    with pytest.raises(Exception):  # noqa: B017 (kombu wraps the refusal differently by version)
        conn.connect()
    conn.release()
    cluster.up(0)
    body = {"type": "latency", "stream": "downstream", "attributes": {"latency": 1000}}
    cluster.toxiproxy("POST", "/proxies/node2/toxics", body)
    t0 = time.monotonic()
    with _kombu(cluster.urls[1]) as conn:
        conn.connect()
    assert time.monotonic() - t0 >= 1.0
    cluster.toxiproxy("POST", "/reset")


def test_memory_alarm_blocks_publishers(cluster):
    import pika
    import pika.exceptions

    cluster.set_memory_alarm(1, True)
    params = pika.URLParameters(cluster.urls[1])
    params.blocked_connection_timeout = 2
    conn = pika.BlockingConnection(params)
    try:
        with pytest.raises(pika.exceptions.ConnectionBlockedTimeout):
            ch = conn.channel()
            for _ in range(100):  # bounded: the broker blocks at the first publish
                ch.basic_publish("", "nowhere", b"x")
                conn.process_data_events(time_limit=0.1)
    finally:
        if conn.is_open:
            conn.close()
        cluster.set_memory_alarm(1, False)


def test_reset_undoes_every_fault(cluster):
    cluster.pause(1)  # long enough to be seen down: pause_minority keeps it out until restarted
    cluster.stop(2)
    cluster.down(0)
    cluster.set_memory_alarm(0, True)
    time.sleep(14)
    cluster.resume(1)
    t0 = time.monotonic()
    cluster.reset()
    assert time.monotonic() - t0 < 90
    for i in range(3):
        status = cluster.cluster_status(i)
        assert sorted(status["running_nodes"]) == sorted(cluster.nodes)
        assert not status["partitions"]
    proxies = cluster.toxiproxy("GET", "/proxies")
    assert all(p["enabled"] and not p["toxics"] for p in proxies.values())
    for url in cluster.urls:
        assert len(_round_trip(url, 3)) == 3


def test_vhosts(cluster):
    cluster.add_vhost("warren-v1")
    assert len(_round_trip(cluster.url(2, vhost="warren-v1"), 3)) == 3
    cluster.delete_vhost("warren-v1")


def _leftovers(client, project: str) -> list:
    label = f"{LABEL}={project}"
    return [
        *client.containers.list(all=True, filters={"label": label}),
        *client.networks.list(filters={"label": label}),
    ]


def test_a_node_that_never_gets_ready_is_one_line_and_leaves_nothing(cluster):
    bad = DockerCluster(nodes=1)
    bad.cookie = ""  # entry.sh refuses to start without one
    with pytest.raises(DockerUnavailable, match=r"did not answer AMQP .*set COOKIE") as exc:
        bad.start()
    assert "\n" not in str(exc.value)
    assert _leftovers(cluster.client, bad.project) == []


def test_a_docker_api_error_is_one_line(cluster):
    bad = DockerCluster(nodes=1, rabbitmq_image="warren/bookworm:base", build=False)
    with pytest.raises(DockerUnavailable, match=r"^docker: .*/etc/rabbitmq"):
        bad.start()  # the base image has no /etc/rabbitmq to write the config into
    assert _leftovers(cluster.client, bad.project) == []


def test_a_failing_image_build_shows_its_log_tail(cluster, tmp_path, monkeypatch):
    (tmp_path / "offline").mkdir()
    (tmp_path / "offline" / "build.sh").write_text("echo step one; echo apt failed >&2; exit 3\n")
    monkeypatch.setenv("WARREN_COMPOSE_DIR", str(tmp_path))
    bad = DockerCluster(nodes=1)
    with pytest.raises(DockerUnavailable, match=r"exit 3\): step one \| apt failed"):
        bad.start()
    assert _leftovers(cluster.client, bad.project) == []


def test_no_engine_and_no_dockerd_is_one_line(cluster, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # nothing listens on port 1
    monkeypatch.setattr(backend.shutil, "which", lambda name: None)
    with pytest.raises(DockerUnavailable, match="dockerd is not installed: apt-get install"):
        DockerCluster(nodes=1).start()


def test_close_leaves_no_container_or_network(cluster):
    client = cluster.client
    label = f"{LABEL}={cluster.project}"
    assert client.containers.list(all=True, filters={"label": label})
    cluster.close(stop_engine=False)  # the fixture's close() then stops a dockerd we started
    import docker

    client = docker.from_env()
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
    assert not [n for n in client.networks.list() if n.name.startswith(cluster.project)]
    client.close()
