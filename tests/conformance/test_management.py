"""The management HTTP API: one test body against the simulated node and a real RabbitMQ.

The real node is its own session fixture (``RealRabbitNode(management=True)``: the
``rabbitmq_management`` plugin on a free port, statistics every 250 ms), so the shared
``real_node`` stays plugin-free. RabbitMQ's management figures lag behind the broker by a
statistics interval, so every read that follows an AMQP action polls.

The simulator follows RabbitMQ 3.13; Debian's 3.10.8 differs in places this test therefore
does not pin down: bad credentials are ``{"error":"not_authorized","reason":"Login failed"}``
with a ``www-authenticate`` header on 3.10 and ``"reason":"Not_Authorized"`` without it on
3.13 (only the status and the ``error`` are compared), and ``queue_totals`` is ``{}`` on
3.10 until a queue has reported statistics (its fields are not compared).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pika
import pika.exceptions
import pytest

from broker_sim import SimCluster
from tests.conftest import running_real_node

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}
FORCED = "CONNECTION_FORCED - Closed via management plugin"


@pytest.fixture(scope="session")
def managed_sim():
    with SimCluster(nodes=1) as cluster:
        yield cluster.nodes[0]


@pytest.fixture(scope="session")
def managed_real(tmp_path_factory):
    yield from running_real_node(tmp_path_factory, "rabbitmq-mgmt", management=True)


@pytest.fixture(params=["sim", "real"], scope="session")
def managed(request):
    """A broker with its management API: the simulated node or a real rabbitmq-server."""
    return request.getfixturevalue(f"managed_{request.param}")


def http(broker, method: str, path: str, user="guest", password="guest", headers=None):
    """(status, decoded JSON body or None, headers) from the broker's management API."""
    req = urllib.request.Request(broker.management_url + path, method=method)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, body, out = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        status, body, out = err.code, err.read(), err.headers
    return status, (json.loads(body) if body else None), out


def poll(fetch, until, timeout: float = 15.0):
    """Call ``fetch()`` until ``until(result)`` holds; return the last result."""
    deadline = time.monotonic() + timeout
    result = fetch()
    while not until(result) and time.monotonic() < deadline:
        time.sleep(0.1)
        result = fetch()
    return result


def pika_connection(broker, vhost: str = "/"):
    params = pika.URLParameters(broker.amqp_url(vhost=vhost))
    params.socket_timeout = 10
    params.heartbeat = 0
    return pika.BlockingConnection(params)


def connection_name(conn, broker) -> str:
    """RabbitMQ's name for a client connection: ``"client ip:port -> server ip:port"``."""
    host, port = conn._impl._transport._sock.getsockname()[:2]
    return f"{host}:{port} -> {broker.host}:{broker.port}"


def closed_by_broker(conn) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
    return info.value.reply_code, info.value.reply_text


def test_management_api(managed, uid):
    broker = managed
    # overview and nodes
    status, overview, _ = http(broker, "GET", "/api/overview")
    assert status == 200
    assert overview["node"] == broker.name
    assert overview["management_version"] == overview["rabbitmq_version"]
    assert isinstance(overview["cluster_name"], str) and overview["cluster_name"]
    assert set(overview["object_totals"]) >= {
        "connections",
        "channels",
        "queues",
        "exchanges",
        "consumers",
    }
    status, nodes, _ = http(broker, "GET", "/api/nodes")
    assert status == 200
    [me] = [n for n in nodes if n["name"] == broker.name]
    assert (me["running"], me["type"]) == (True, "disc")

    # credentials and unknown objects
    status, body, headers = http(broker, "GET", "/api/overview", user=None)
    assert (status, body) == (401, None)
    assert headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'
    status, body, _ = http(broker, "GET", "/api/overview", password="wrong")
    assert status == 401 and body["error"] == "not_authorized"  # reason: see the module doc
    for path in (f"/api/queues/%2F/nope-{uid}", f"/api/queues/nope-{uid}", "/api/nope"):
        assert http(broker, "GET", path)[:2] == (404, NOT_FOUND), path
    assert http(broker, "DELETE", f"/api/connections/nope-{uid}")[:2] == (404, NOT_FOUND)

    # queue depth: N published, then some delivered and not acked
    queue, count = f"mgmt-{uid}", 7
    conn = pika_connection(broker)
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    for i in range(count):
        ch.basic_publish("", queue, f"m{i}".encode())
    path = f"/api/queues/%2F/{quote(queue, safe='')}"
    status, q, _ = poll(lambda: http(broker, "GET", path), lambda r: r[1].get("messages") == count)
    assert status == 200
    assert (q["name"], q["vhost"], q["type"], q["node"], q["state"]) == (
        queue,
        "/",
        "classic",
        broker.name,
        "running",
    )
    assert (q["durable"], q["auto_delete"], q["exclusive"], q["arguments"]) == (
        True,
        False,
        False,
        {},
    )
    assert (q["messages_ready"], q["messages_unacknowledged"]) == (count, 0)
    ch.basic_qos(prefetch_count=3)
    ch.basic_consume(queue, lambda *args: None)
    conn.process_data_events(time_limit=0.3)
    _, q, _ = poll(
        lambda: http(broker, "GET", path), lambda r: r[1].get("messages_unacknowledged") == 3
    )
    assert (q["messages"], q["messages_ready"], q["messages_unacknowledged"]) == (count, 4, 3)
    assert q["consumers"] == 1
    listed = [x for x in http(broker, "GET", "/api/queues/%2F")[1] if x["name"] == queue]
    assert [(x["messages"], x["consumers"]) for x in listed] == [(count, 1)]

    # exchanges and bindings
    status, default, _ = http(broker, "GET", "/api/exchanges/%2F/amq.default")
    assert status == 200 and (default["name"], default["type"]) == ("", "direct")
    names = [x["name"] for x in http(broker, "GET", "/api/exchanges/%2F")[1]]
    assert {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers"} <= set(names)
    bindings = http(broker, "GET", "/api/bindings/%2F")[1]
    implicit = {
        "source": "",
        "vhost": "/",
        "destination": queue,
        "destination_type": "queue",
        "routing_key": queue,
        "arguments": {},
        "properties_key": queue,
    }
    assert implicit in bindings

    # connections: find ours, read it, force-close it
    name = connection_name(conn, broker)
    conns = poll(
        lambda: http(broker, "GET", "/api/connections")[1],
        lambda r: any(c["name"] == name for c in r),
    )
    [mine] = [c for c in conns if c["name"] == name]
    assert (mine["user"], mine["vhost"], mine["node"], mine["protocol"]) == (
        "guest",
        "/",
        broker.name,
        "AMQP 0-9-1",
    )
    assert (mine["peer_host"], mine["port"], mine["type"]) == ("127.0.0.1", broker.port, "network")
    status, one, _ = http(broker, "GET", f"/api/connections/{quote(name, safe='')}")
    assert status == 200 and one["name"] == name
    status, body, _ = http(broker, "DELETE", f"/api/connections/{quote(name, safe='')}")
    assert (status, body) == (204, None)
    assert closed_by_broker(conn) == (320, FORCED)
    _, q, _ = poll(lambda: http(broker, "GET", path), lambda r: r[1].get("messages_ready") == count)
    assert (q["messages_ready"], q["messages_unacknowledged"]) == (count, 0)  # requeued

    # X-Reason gives the close its text
    other = pika_connection(broker)
    other_name = connection_name(other, broker)
    poll(
        lambda: http(broker, "GET", f"/api/connections/{quote(other_name, safe='')}")[0],
        lambda status: status == 200,
    )
    status, _, _ = http(
        broker,
        "DELETE",
        f"/api/connections/{quote(other_name, safe='')}",
        headers={"X-Reason": f"rolling restart {uid}"},
    )
    assert status == 204
    assert closed_by_broker(other) == (320, f"CONNECTION_FORCED - rolling restart {uid}")
    gone = poll(
        lambda: http(broker, "GET", f"/api/connections/{quote(other_name, safe='')}")[:2],
        lambda r: r[0] == 404,
    )
    assert gone == (404, NOT_FOUND)

    cleanup = pika_connection(broker)
    cleanup.channel().queue_delete(queue)
    cleanup.close()


def test_url_encoded_vhost(managed, uid):
    broker = managed
    vhost = f"mgmt/{uid}"
    broker.add_vhost(vhost)
    try:
        broker.set_permissions("guest", vhost)
        conn = pika_connection(broker, vhost)
        ch = conn.channel()
        ch.queue_declare("in/vhost")
        ch.basic_publish("", "in/vhost", b"x")
        path = f"/api/queues/{quote(vhost, safe='')}/in%2Fvhost"
        status, q, _ = poll(lambda: http(broker, "GET", path), lambda r: r[1].get("messages") == 1)
        assert status == 200 and (q["vhost"], q["name"], q["messages"]) == (vhost, "in/vhost", 1)
        listed = http(broker, "GET", f"/api/queues/{quote(vhost, safe='')}")[1]
        assert [x["name"] for x in listed] == ["in/vhost"]
        conn.close()
    finally:
        broker.delete_vhost(vhost)
    assert http(broker, "GET", f"/api/queues/{quote(vhost, safe='')}")[:2] == (404, NOT_FOUND)
