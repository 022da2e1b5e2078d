"""Toxiproxy API compatibility: toxiproxy-python and raw HTTP shaped like other clients."""

from __future__ import annotations

import json
import socket
import time

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer

from broker_sim.drivers.proxy import ToxiproxyServer
from tests.toxiproxy.support import call, roundtrip


@pytest.fixture
def server():
    with ToxiproxyServer(port=0, seed=5) as srv:
        yield srv


def test_toxiproxy_python_drives_the_server(server, echo):
    APIConsumer.host, APIConsumer.port = "127.0.0.1", server.port
    client = toxiproxy.Toxiproxy()
    assert client.running()
    proxy = client.create(upstream=f"127.0.0.1:{echo}", name="echo")
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    assert set(proxy.toxics()) == {"latency_downstream"}
    with pytest.raises(toxiproxy.exceptions.ProxyExists):
        client.create(upstream=f"127.0.0.1:{echo}", name="echo")
    proxy.destroy_toxic("latency_downstream")
    proxy.disable()
    assert client.get_proxy("echo").enabled is False
    proxy.enable()
    client.reset()
    client.destroy(proxy)
    assert client.proxies() == {}


def test_status_codes_bodies_and_defaults(server, echo):
    status, headers, body = call(
        server, "POST", "/proxies", {"name": "p", "upstream": f"127.0.0.1:{echo}"}
    )
    assert status == 201 and headers["X-Toxiproxy-Request-Id"]
    created = json.loads(body)
    assert created["enabled"] is True and created["toxics"] == []
    status, _, body = call(
        server, "POST", "/proxies/p/toxics", {"type": "latency", "attributes": {"latency": 10}}
    )
    assert status == 200
    assert json.loads(body) == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 10, "jitter": 0},
    }
    status, _, body = call(
        server, "PATCH", "/proxies/p/toxics/latency_downstream", {"attributes": {"jitter": 5}}
    )
    assert status == 200 and json.loads(body)["attributes"] == {"latency": 10, "jitter": 5}
    assert call(server, "DELETE", "/proxies/p/toxics/latency_downstream")[0] == 204
    assert call(server, "POST", "/reset")[0] == 204
    status, _, body = call(server, "GET", "/version")
    assert status == 200 and "version" in json.loads(body)
    assert call(server, "DELETE", "/proxies/p")[0] == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "/proxies", b"{not json", 400, "bad request body"),
        ("POST", "/proxies", {"upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
        ("POST", "/proxies", {"name": "x"}, 400, "missing required field: upstream"),
        ("GET", "/proxies/nope", None, 404, "proxy not found"),
        ("DELETE", "/proxies/nope", None, 404, "proxy not found"),
        ("POST", "/proxies/p/toxics", {"type": "nonsense"}, 400, "invalid toxic type"),
        (
            "POST",
            "/proxies/p/toxics",
            {"type": "latency", "stream": "sideways"},
            400,
            "stream was invalid, can be either upstream or downstream",
        ),
        (
            "POST",
            "/proxies/p/toxics",
            {"type": "latency", "attributes": {"latency": "x"}},
            400,
            "bad request body: attribute 'latency' must be an integer, got 'x'",
        ),
        ("GET", "/proxies/p/toxics/ghost", None, 404, "toxic not found"),
    ],
)
def test_bad_input_gets_toxiproxys_errors(server, echo, method, path, body, status, error):
    call(server, "POST", "/proxies", {"name": "p", "upstream": f"127.0.0.1:{echo}"})
    before = call(server, "GET", "/proxies")[2]
    got_status, headers, raw = call(server, method, path, body)
    payload = json.loads(raw)
    assert (got_status, payload["status"]) == (status, status)
    assert payload["error"].startswith(error)
    assert headers["Content-Type"] == "application/json"
    assert call(server, "GET", "/proxies")[2] == before, "nothing else changed"


def test_duplicates_browsers_and_busy_ports(server, echo):
    call(server, "POST", "/proxies", {"name": "p", "upstream": f"127.0.0.1:{echo}"})
    call(server, "POST", "/proxies/p/toxics", {"type": "timeout"})
    status, _, raw = call(server, "POST", "/proxies/p/toxics", {"type": "timeout"})
    assert (status, json.loads(raw)["error"]) == (409, "toxic already exists")
    status, _, raw = call(server, "POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:1"})
    assert (status, json.loads(raw)["error"]) == (409, "proxy already exists")
    status, _, raw = call(server, "GET", "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert (status, raw) == (403, b"User agent not allowed\n")
    busy = socket.create_server(("127.0.0.1", 0))
    try:
        port = busy.getsockname()[1]
        status, _, raw = call(
            server,
            "POST",
            "/proxies",
            {"name": "q", "listen": f"127.0.0.1:{port}", "upstream": "x:1"},
        )
        assert status == 500 and "address already in use" in json.loads(raw)["error"].lower()
    finally:
        busy.close()


def proxied(server, echo, name="p") -> int:
    _, _, raw = call(server, "POST", "/proxies", {"name": name, "upstream": f"127.0.0.1:{echo}"})
    return int(json.loads(raw)["listen"].rsplit(":", 1)[1])


def test_bytes_pass_intact_including_a_megabyte(server, echo):
    port = proxied(server, echo)
    assert roundtrip(port, b"hello") == b"hello"
    big = bytes(range(256)) * 4096
    assert roundtrip(port, big) == big


def test_latency_toxic_delays_and_removal_restores(server, echo):
    port = proxied(server, echo)
    call(server, "POST", "/proxies/p/toxics", {"type": "latency", "attributes": {"latency": 200}})
    started = time.monotonic()
    assert roundtrip(port, b"ping") == b"ping"
    assert 0.2 <= time.monotonic() - started < 1.0
    call(server, "DELETE", "/proxies/p/toxics/latency_downstream")
    started = time.monotonic()
    assert roundtrip(port, b"ping") == b"ping"
    assert time.monotonic() - started < 0.2


def test_timeout_toxic_blackholes_then_closes(server, echo):
    port = proxied(server, echo)
    call(server, "POST", "/proxies/p/toxics", {"type": "timeout", "attributes": {"timeout": 300}})
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(b"lost")
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert 0.25 <= time.monotonic() - started < 2


def test_reset_peer_resets_the_connection(server, echo):
    port = proxied(server, echo)
    call(
        server,
        "POST",
        "/proxies/p/toxics",
        {"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}},
    )
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(b"x")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
            sock.recv(10)


def test_disabled_proxy_refuses_and_dead_upstream_gives_eof(server):
    _, _, raw = call(server, "POST", "/proxies", {"name": "dead", "upstream": "127.0.0.1:1"})
    port = int(json.loads(raw)["listen"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        assert sock.recv(10) == b""
    call(server, "POST", "/proxies/dead", {"enabled": False})
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=3)
