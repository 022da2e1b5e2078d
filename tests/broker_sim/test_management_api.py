"""The management API's sans-IO core against sans-IO clusters: no sockets, a manual clock."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from pamqp import commands as C

from broker_sim.management import ManagementAPI
from broker_sim.management.api import FORCE_CLOSE_REASON
from broker_sim.management.views import properties_key
from tests.broker_sim.sansio import Peer, make_cluster
from tests.broker_sim.test_sans_io import FORBIDDEN, core_modules, imported_roots

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}
LISTENERS = {
    "rabbit@node1": {"amqp": ("127.0.0.1", 5672), "http": ("127.0.0.1", 15672)},
    "rabbit@node2": {"amqp": ("127.0.0.1", 5673), "http": ("127.0.0.1", 15673)},
    "rabbit@node3": {"amqp": ("127.0.0.1", 5674), "http": ("127.0.0.1", 15674)},
}


def auth(user: str = "guest", password: str = "guest") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def call(api, method: str, path: str, headers: dict | None = None, user=("guest", "guest")):
    """(status, decoded JSON or None, response headers)."""
    sent = {**(auth(*user) if user else {}), **(headers or {})}
    status, out_headers, body = api.handle(method, path, sent, b"")
    return status, (json.loads(body) if body else None), out_headers


def get(api, path: str, **kw):
    status, data, _ = call(api, "GET", path, **kw)
    return status, data


@pytest.fixture
def world():
    cluster, clock = make_cluster(3)
    apis = {name: ManagementAPI(cluster, name, lambda: LISTENERS) for name in cluster.nodes}
    return cluster, clock, apis


def client(cluster, node: str = "rabbit@node1", port: int = 50001, **handshake) -> Peer:
    peer = Peer(cluster.node(node))
    peer.conn.peer = f"127.0.0.1:{port}"
    peer.handshake(**handshake)
    peer.open_channel()
    return peer


def publish(peer: Peer, queue: str, count: int, body: bytes = b"hello") -> None:
    for _ in range(count):
        peer.publish(1, "", queue, body)
    peer.take()


# -- the rule every core module follows -------------------------------------------------------


def test_the_package_is_sans_io_core():
    management = [p for p in core_modules() if p.parent.name == "management"]
    assert {p.stem for p in management} >= {"__init__", "api", "views"}
    assert all(not imported_roots(p) & FORBIDDEN for p in management)


# -- overview and nodes -----------------------------------------------------------------------


def test_overview_counts_objects_and_messages(world):
    cluster, _, apis = world
    peer = client(cluster)
    peer.send(1, C.Queue.Declare(queue="q"), C.Exchange.Declare(exchange="ex"))
    publish(peer, "q", 5)
    peer.send(1, C.Basic.Qos(prefetch_count=2), C.Basic.Consume(queue="q"))
    peer.take()
    status, view = get(apis["rabbit@node2"], "/api/overview")
    assert status == 200
    assert view["management_version"] == view["rabbitmq_version"] == "3.13.7"
    assert view["cluster_name"] == "warren" and view["node"] == "rabbit@node2"
    assert view["object_totals"] == {
        "channels": 1,
        "connections": 1,
        "consumers": 1,
        "exchanges": 8,  # the 7 every vhost has, and "ex"
        "queues": 1,
    }
    totals = view["queue_totals"]
    assert (totals["messages"], totals["messages_ready"], totals["messages_unacknowledged"]) == (
        5,
        3,
        2,
    )
    assert totals["messages_details"] == {"rate": 0.0}
    amqp = [(li["node"], li["port"]) for li in view["listeners"] if li["protocol"] == "amqp"]
    assert amqp == [("rabbit@node1", 5672), ("rabbit@node2", 5673), ("rabbit@node3", 5674)]
    assert [t["name"] for t in view["exchange_types"]] == ["direct", "fanout", "headers", "topic"]


def test_nodes_as_one_node_sees_them(world):
    cluster, _, apis = world
    cluster.kill("node3")
    status, nodes = get(apis["rabbit@node1"], "/api/nodes")
    assert status == 200
    assert [(n["name"], n["type"], n["running"]) for n in nodes] == [
        ("rabbit@node1", "disc", True),
        ("rabbit@node2", "disc", True),
        ("rabbit@node3", "disc", False),
    ]
    assert nodes[0]["partitions"] == [] and nodes[0]["mem_alarm"] is False
    assert "mem_alarm" not in nodes[2]  # no figures for a node that is not running
    cluster.node("node2").set_memory_alarm(True)
    status, one = get(apis["rabbit@node1"], "/api/nodes/rabbit@node2")
    assert status == 200 and one["mem_alarm"] is True
    assert get(apis["rabbit@node1"], "/api/nodes/rabbit@nope") == (404, NOT_FOUND)


def test_unreachable_nodes_are_not_running_and_hide_their_connections(world):
    cluster, _, apis = world
    client(cluster, "rabbit@node2", 50002)
    client(cluster, "rabbit@node3", 50003)
    cluster.pause("node3")  # hung: its sockets stay open, nobody reaches it
    _, nodes = get(apis["rabbit@node1"], "/api/nodes")
    assert [n["running"] for n in nodes] == [True, True, False]
    _, conns = get(apis["rabbit@node1"], "/api/connections")
    assert [c["node"] for c in conns] == ["rabbit@node2"]
    cluster.resume("node3")
    cluster.partition([["node1", "node2"], ["node3"]])
    _, nodes = get(apis["rabbit@node1"], "/api/nodes")
    assert [n["running"] for n in nodes] == [True, True, False]


# -- queues -----------------------------------------------------------------------------------


def test_queue_depth_after_publishes_unacked_deliveries_and_acks(world):
    cluster, _, apis = world
    peer = client(cluster)
    peer.send(1, C.Queue.Declare(queue="q", durable=True, arguments={"x-max-length": 100}))
    publish(peer, "q", 7, b"12345")
    api = apis["rabbit@node1"]
    status, q = get(api, "/api/queues/%2F/q")
    assert status == 200
    assert (q["name"], q["vhost"], q["type"], q["state"], q["node"]) == (
        "q",
        "/",
        "classic",
        "running",
        "rabbit@node1",
    )
    assert (q["durable"], q["auto_delete"], q["exclusive"]) == (True, False, False)
    assert q["arguments"] == {"x-max-length": 100}
    assert (q["messages"], q["messages_ready"], q["messages_unacknowledged"]) == (7, 7, 0)
    assert q["message_bytes"] == 35 and q["consumers"] == 0
    peer.send(1, C.Basic.Qos(prefetch_count=3), C.Basic.Consume(queue="q", consumer_tag="c1"))
    peer.take()
    _, q = get(api, "/api/queues/%2F/q")
    assert (q["messages"], q["messages_ready"], q["messages_unacknowledged"]) == (7, 4, 3)
    assert q["message_bytes_unacknowledged"] == 15 and q["consumers"] == 1
    [consumer] = q["consumer_details"]
    assert consumer["consumer_tag"] == "c1" and consumer["prefetch_count"] == 3
    assert consumer["ack_required"] is True
    assert consumer["channel_details"]["name"] == "127.0.0.1:50001 -> 127.0.0.1:5672 (1)"
    peer.send(1, C.Basic.Ack(delivery_tag=3, multiple=True))
    peer.take()  # the next three go out at once
    _, q = get(api, "/api/queues/%2F/q")
    assert (q["messages"], q["messages_ready"], q["messages_unacknowledged"]) == (4, 1, 3)


def test_queue_lists_per_vhost_and_url_encoded_names(world):
    cluster, _, apis = world
    cluster.add_vhost("a/b")
    cluster.first_node.set_permissions("guest", "a/b")
    peer = client(cluster)
    peer.send(1, C.Queue.Declare(queue="z"), C.Queue.Declare(queue="a b"))
    other = client(cluster, port=50002, vhost="a/b")
    other.send(1, C.Queue.Declare(queue="in/b"))
    publish(other, "in/b", 2)
    api = apis["rabbit@node1"]
    _, every = get(api, "/api/queues")
    assert [(q["vhost"], q["name"]) for q in every] == [("/", "a b"), ("/", "z"), ("a/b", "in/b")]
    _, listed = get(api, "/api/queues/a%2Fb")
    assert [q["name"] for q in listed] == ["in/b"]
    status, q = get(api, "/api/queues/a%2Fb/in%2Fb")
    assert status == 200 and q["messages"] == 2 and q["vhost"] == "a/b"
    assert get(api, "/api/queues/%2F/a%20b")[1]["name"] == "a b"


def test_a_classic_queue_whose_node_is_down(world):
    cluster, _, apis = world
    peer = client(cluster)
    peer.send(1, C.Queue.Declare(queue="home", durable=True))
    publish(peer, "home", 3)
    cluster.kill("node1")
    status, q = get(apis["rabbit@node2"], "/api/queues/%2F/home")
    assert status == 200 and (q["state"], q["node"]) == ("down", "rabbit@node1")
    assert "messages" not in q  # RabbitMQ lists it without figures
    _, view = get(apis["rabbit@node2"], "/api/overview")
    assert view["queue_totals"]["messages"] == 0 and view["object_totals"]["queues"] == 1


def test_quorum_queue_leader_members_and_election(world):
    cluster, clock, apis = world
    peer = client(cluster)
    peer.send(1, C.Queue.Declare(queue="qq", durable=True, arguments={"x-queue-type": "quorum"}))
    publish(peer, "qq", 4)
    api = apis["rabbit@node2"]
    _, q = get(api, "/api/queues/%2F/qq")
    assert (q["type"], q["state"], q["leader"], q["node"]) == (
        "quorum",
        "running",
        "rabbit@node1",
        "rabbit@node1",
    )
    assert q["members"] == q["online"] == ["rabbit@node1", "rabbit@node2", "rabbit@node3"]
    assert q["messages"] == 4
    cluster.kill("node1")
    _, q = get(api, "/api/queues/%2F/qq")
    assert (q["state"], q["leader"], q["online"]) == (
        "down",
        None,
        ["rabbit@node2", "rabbit@node3"],
    )
    clock.advance(cluster.election_timeout + 0.1, cluster.node("node2"))
    _, q = get(api, "/api/queues/%2F/qq")
    assert q["state"] == "running" and q["leader"] in ("rabbit@node2", "rabbit@node3")
    assert q["messages"] == 4
    # stop_app, not kill: two nodes killed would pause the third too (pause_minority)
    cluster.stop("node3" if q["leader"] == "rabbit@node2" else "node2")
    _, q = get(api if q["leader"] == "rabbit@node2" else apis["rabbit@node3"], "/api/queues/%2F/qq")
    assert q["state"] == "minority" and len(q["online"]) == 1


# -- connections ------------------------------------------------------------------------------


def test_connections_named_as_rabbitmq_names_them(world):
    cluster, _, apis = world
    client(cluster, "rabbit@node1", 50001, heartbeat=30)
    second = Peer(cluster.node("node2"))
    second.conn.peer = "10.0.0.7:40000"
    second.handshake()
    api = apis["rabbit@node3"]
    status, conns = get(api, "/api/connections")
    assert status == 200
    assert [(c["name"], c["node"]) for c in conns] == [
        ("10.0.0.7:40000 -> 127.0.0.1:5673", "rabbit@node2"),
        ("127.0.0.1:50001 -> 127.0.0.1:5672", "rabbit@node1"),
    ]
    one = conns[1]
    assert (one["peer_host"], one["peer_port"], one["host"], one["port"]) == (
        "127.0.0.1",
        50001,
        "127.0.0.1",
        5672,
    )
    assert (one["user"], one["vhost"], one["protocol"], one["type"]) == (
        "guest",
        "/",
        "AMQP 0-9-1",
        "network",
    )
    assert (one["state"], one["channels"], one["timeout"], one["ssl"]) == ("running", 1, 30, False)
    assert one["connected_at"] == int(cluster.now() * 1000)
    assert one["client_properties"]["capabilities"]["connection.blocked"] is True
    status, same = get(api, "/api/connections/" + quote(one["name"], safe=""))
    assert status == 200 and same == one
    assert get(api, "/api/connections/" + quote("1.2.3.4:1 -> 127.0.0.1:5672"))[0] == 404


def test_force_close_sends_320_and_requeues(world):
    cluster, _, apis = world
    peer = client(cluster)
    peer.send(1, C.Queue.Declare(queue="q"))
    publish(peer, "q", 3)
    peer.send(1, C.Basic.Consume(queue="q"))
    peer.take()
    api = apis["rabbit@node2"]
    name = quote("127.0.0.1:50001 -> 127.0.0.1:5672", safe="")
    status, body, _ = call(api, "DELETE", f"/api/connections/{name}")
    assert (status, body) == (204, None)
    [close] = [m for m in peer.methods() if isinstance(m, C.Connection.Close)]
    assert close.reply_code == 320
    assert close.reply_text == f"CONNECTION_FORCED - {FORCE_CLOSE_REASON}"
    assert FORCE_CLOSE_REASON == "Closed via management plugin"
    _, q = get(api, "/api/queues/%2F/q")
    assert (q["messages_ready"], q["messages_unacknowledged"], q["consumers"]) == (3, 0, 0)
    assert get(api, f"/api/connections/{name}")[1]["state"] == "closing"
    other = client(cluster, "rabbit@node2", 50002)
    other.send(1, C.Basic.Consume(queue="q"))
    assert sum(isinstance(m, C.Basic.Deliver) and m.redelivered for m in other.methods()) == 3
    peer.send(0, C.Connection.CloseOk())
    assert get(api, f"/api/connections/{name}") == (404, NOT_FOUND)


def test_force_close_hands_the_unacked_to_a_waiting_consumer(world):
    cluster, _, apis = world
    first = client(cluster)
    first.send(1, C.Queue.Declare(queue="q"), C.Basic.Qos(prefetch_count=2))
    first.send(1, C.Basic.Consume(queue="q"))
    waiting = client(cluster, "rabbit@node2", 50002)
    waiting.send(1, C.Basic.Qos(prefetch_count=10), C.Basic.Consume(queue="q"))
    publish(first, "q", 2)  # round-robin: one each
    first.take()
    waiting.take()
    name = quote("127.0.0.1:50001 -> 127.0.0.1:5672", safe="")
    assert call(apis["rabbit@node1"], "DELETE", f"/api/connections/{name}")[0] == 204
    redelivered = [m for m in waiting.methods() if isinstance(m, C.Basic.Deliver)]
    assert [m.redelivered for m in redelivered] == [True]


def test_force_close_with_x_reason(world):
    cluster, _, apis = world
    peer = client(cluster)
    name = quote("127.0.0.1:50001 -> 127.0.0.1:5672", safe="")
    status, _, _ = call(
        apis["rabbit@node1"], "DELETE", f"/api/connections/{name}", {"x-reason": "maintenance"}
    )
    assert status == 204
    [close] = [m for m in peer.methods() if isinstance(m, C.Connection.Close)]
    assert (close.reply_code, close.reply_text) == (320, "CONNECTION_FORCED - maintenance")
    assert call(apis["rabbit@node1"], "DELETE", "/api/connections/nope")[:2] == (404, NOT_FOUND)


def test_users_see_and_close_only_their_own_connections(world):
    cluster, _, apis = world
    node = cluster.first_node
    node.add_user("ann", "pw", ("management",))
    node.set_permissions("ann", "/")
    client(cluster, port=50001)
    client(cluster, port=50002, user="ann", password="pw")
    api = apis["rabbit@node1"]
    _, seen = get(api, "/api/connections", user=("ann", "pw"))
    assert [c["user"] for c in seen] == ["ann"]
    guest = quote("127.0.0.1:50001 -> 127.0.0.1:5672", safe="")
    denied = (401, {"error": "not_authorised", "reason": "User not authorised to access object"})
    assert get(api, f"/api/connections/{guest}", user=("ann", "pw")) == denied
    assert call(api, "DELETE", f"/api/connections/{guest}", user=("ann", "pw"))[:2] == denied
    own = quote("127.0.0.1:50002 -> 127.0.0.1:5672", safe="")
    assert call(api, "DELETE", f"/api/connections/{own}", user=("ann", "pw"))[0] == 204


# -- exchanges and bindings -------------------------------------------------------------------


def test_exchanges(world):
    cluster, _, apis = world
    peer = client(cluster)
    peer.send(1, C.Exchange.Declare(exchange="events", exchange_type="topic", durable=True))
    api = apis["rabbit@node1"]
    status, listed = get(api, "/api/exchanges/%2F")
    assert status == 200
    assert [x["name"] for x in listed] == [
        "",
        "amq.direct",
        "amq.fanout",
        "amq.headers",
        "amq.match",
        "amq.rabbitmq.trace",
        "amq.topic",
        "events",
    ]
    _, default = get(api, "/api/exchanges/%2F/amq.default")
    assert (default["name"], default["type"], default["durable"]) == ("", "direct", True)
    _, events = get(api, "/api/exchanges/%2F/events")
    assert (events["type"], events["durable"], events["internal"], events["vhost"]) == (
        "topic",
        True,
        False,
        "/",
    )
    assert get(api, "/api/exchanges/%2F/missing") == (404, NOT_FOUND)
    assert len(get(api, "/api/exchanges")[1]) == 8


def test_bindings_include_the_default_exchange(world):
    cluster, _, apis = world
    peer = client(cluster)
    peer.send(
        1,
        C.Queue.Declare(queue="q"),
        C.Exchange.Declare(exchange="ex", exchange_type="topic"),
        C.Exchange.Declare(exchange="ex2", exchange_type="fanout"),
        C.Queue.Bind(queue="q", exchange="ex", routing_key="a.#", arguments={"k": 1}),
        C.Exchange.Bind(destination="ex2", source="ex", routing_key=""),
    )
    status, bindings = get(apis["rabbit@node1"], "/api/bindings/%2F")
    assert status == 200
    assert [
        (b["source"], b["destination"], b["destination_type"], b["routing_key"]) for b in bindings
    ] == [
        ("", "q", "queue", "q"),
        ("ex", "ex2", "exchange", ""),
        ("ex", "q", "queue", "a.#"),
    ]
    assert [b["properties_key"] for b in bindings[:2]] == ["q", "~"]
    assert bindings[2]["properties_key"].startswith("a.%23~")
    assert bindings[2]["arguments"] == {"k": 1}
    assert properties_key("a.#", {"k": 1}) != properties_key("a.#", {"k": 2})
    assert get(apis["rabbit@node1"], "/api/bindings")[1] == bindings


# -- authentication, authorisation, errors ----------------------------------------------------


def test_credentials(world):
    cluster, _, apis = world
    api = apis["rabbit@node1"]
    status, body, headers = call(api, "GET", "/api/overview", user=None)
    assert (status, body, headers) == (
        401,
        None,
        {"www-authenticate": 'Basic realm="RabbitMQ Management"'},
    )
    bad = (401, {"error": "not_authorized", "reason": "Not_Authorized"})
    assert get(api, "/api/overview", user=("guest", "wrong")) == bad
    assert get(api, "/api/overview", user=("nobody", "guest")) == bad
    assert call(api, "GET", "/api/overview", {"authorization": "Basic !!!"}, user=None)[0] == 401
    cluster.first_node.add_user("plain", "pw")  # no tags: AMQP only
    assert get(api, "/api/overview", user=("plain", "pw")) == (
        401,
        {"error": "not_authorised", "reason": "Not management user"},
    )


def test_authorisation_by_tag_and_vhost(world):
    cluster, _, apis = world
    node = cluster.first_node
    node.add_vhost("private")
    node.add_user("ann", "pw", ("management",))
    node.set_permissions("ann", "/")
    client(cluster).send(1, C.Queue.Declare(queue="q"))
    api = apis["rabbit@node1"]
    ann = ("ann", "pw")
    assert get(api, "/api/nodes", user=ann) == (
        401,
        {"error": "not_authorised", "reason": "Not monitor user"},
    )
    denied = (
        401,
        {"error": "not_authorised", "reason": "User not authorised to access virtual host"},
    )
    assert get(api, "/api/queues/private", user=ann) == denied
    assert get(api, "/api/exchanges/private", user=ann) == denied
    assert get(api, "/api/queues/%2F/q", user=ann)[0] == 200
    assert {x["vhost"] for x in get(api, "/api/exchanges", user=ann)[1]} == {"/"}
    assert {x["vhost"] for x in get(api, "/api/exchanges")[1]} == {"/", "private"}
    view = get(api, "/api/overview", user=ann)[1]
    assert "node" not in view and "consumers" not in view["object_totals"]
    assert view["object_totals"]["exchanges"] == 7


def test_not_found_and_method_not_allowed(world):
    _, _, apis = world
    api = apis["rabbit@node1"]
    for path in (
        "/api/queues/nope",
        "/api/queues/%2F/nope",
        "/api/exchanges/nope/x",
        "/api/bindings/nope",
        "/api/nope",
        "/api/queues/%2F/q/extra/segments",
    ):
        status, body, headers = call(api, "GET", path)
        assert (status, body) == (404, NOT_FOUND), path
        assert headers["content-type"] == "application/json"
    assert get(api, "/api/nope", user=None) == (404, NOT_FOUND)  # routing comes first
    assert call(api, "PUT", "/api/overview", user=None) == (405, None, {"allow": "GET"})
    assert call(api, "POST", "/api/connections/x")[2] == {"allow": "GET, DELETE"}
    assert get(api, "/api/overview?columns=node")[0] == 200


def test_a_simulator_bug_is_a_500_not_a_dead_server(world, monkeypatch):
    _, _, apis = world
    api = apis["rabbit@node1"]
    monkeypatch.setattr(api.views, "overview", lambda *a: 1 / 0)
    assert get(api, "/api/overview") == (
        500,
        {"error": "internal_server_error", "reason": "ZeroDivisionError: division by zero"},
    )
    assert get(api, "/api/nodes")[0] == 200
