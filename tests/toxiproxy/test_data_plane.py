"""Toxics on live TCP connections through ``warren proxy``: effects measured with bounds,
toxics added and removed mid-stream without losing or reordering bytes, populate and PATCH
shaped like the Go client's and chaostoolkit-toxiproxy's requests."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from broker_sim.drivers.proxy import ToxiproxyServer
from tests.toxiproxy.support import call, roundtrip


@pytest.fixture
def server():
    with ToxiproxyServer(port=0, seed=11) as srv:
        yield srv


def make_proxy(server, upstream_port: int, name: str = "p") -> int:
    status, _, raw = call(
        server, "POST", "/proxies", {"name": name, "upstream": f"127.0.0.1:{upstream_port}"}
    )
    assert status == 201
    return int(json.loads(raw)["listen"].rsplit(":", 1)[1])


def toxic(server, body: dict, proxy: str = "p") -> None:
    status, _, raw = call(server, "POST", f"/proxies/{proxy}/toxics", body)
    assert status == 200, raw


def test_toxics_come_and_go_mid_stream_without_loss_or_reordering(server, echo):
    port = make_proxy(server, echo)
    expected = b"".join(i.to_bytes(4, "big") for i in range(20000))
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:

        def reader():
            while len(received) < len(expected):
                data = sock.recv(65536)
                if not data:
                    return
                received.extend(data)

        thread = threading.Thread(target=reader)
        thread.start()
        for i in range(0, len(expected), 4000):
            sock.sendall(expected[i : i + 4000])
            if i == 16000:
                toxic(server, {"type": "latency", "attributes": {"latency": 30, "jitter": 20}})
                toxic(
                    server,
                    {
                        "type": "slicer",
                        "stream": "upstream",
                        "attributes": {"average_size": 100, "size_variation": 50},
                    },
                )
            if i == 48000:
                call(server, "DELETE", "/proxies/p/toxics/latency_downstream")
            time.sleep(0.001)
        thread.join(timeout=15)
    assert bytes(received) == expected


def test_bandwidth_limits_the_rate(server, echo):
    port = make_proxy(server, echo)
    toxic(server, {"type": "bandwidth", "attributes": {"rate": 100}})  # 100 KB/s
    started = time.monotonic()
    assert roundtrip(port, b"x" * 50_000) == b"x" * 50_000
    assert 0.4 <= time.monotonic() - started < 2.0


def test_limit_data_closes_after_the_byte_budget(server, echo):
    port = make_proxy(server, echo)
    toxic(server, {"type": "limit_data", "attributes": {"bytes": 10}})
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"0123456789abcdef")
        got = b""
        while chunk := sock.recv(100):
            got += chunk
    assert got == b"0123456789"


def test_slow_close_delays_the_eof(server, echo):
    port = make_proxy(server, echo)
    toxic(server, {"type": "slow_close", "stream": "upstream", "attributes": {"delay": 300}})
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"bye")
        assert sock.recv(3) == b"bye"
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b""
        assert time.monotonic() - started >= 0.25


def test_removing_a_timeout_toxic_closes_its_connections(server, echo):
    port = make_proxy(server, echo)
    toxic(server, {"type": "timeout", "attributes": {"timeout": 0}})
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"x")
        time.sleep(0.2)
        call(server, "DELETE", "/proxies/p/toxics/timeout_downstream")
        assert sock.recv(10) == b""


def test_populate_and_patch_like_the_go_client(server, echo):
    status, _, raw = call(
        server,
        "POST",
        "/populate",
        [
            {"name": "a", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo}"},
            {
                "name": "b",
                "listen": "127.0.0.1:0",
                "upstream": f"127.0.0.1:{echo}",
                "enabled": False,
            },
        ],
    )
    assert status == 201
    body = json.loads(raw)["proxies"]
    assert [(p["name"], p["enabled"]) for p in body] == [("a", True), ("b", False)]
    status, _, raw = call(server, "PATCH", "/proxies/b", {"enabled": True})
    assert status == 200 and json.loads(raw)["enabled"] is True
    status, _, raw = call(server, "POST", "/populate", {"name": "not-a-list"})
    assert status == 400 and json.loads(raw)["error"].startswith("bad request body")


def test_the_same_seed_draws_the_same_toxicity(echo):
    def decisions(seed: int) -> list[bool]:
        with ToxiproxyServer(port=0, seed=seed) as srv:
            port = make_proxy(srv, echo)
            toxic(srv, {"type": "timeout", "toxicity": 0.5, "attributes": {"timeout": 0}})
            out = []
            for _ in range(12):
                with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                    sock.settimeout(0.3)
                    sock.sendall(b"?")
                    try:
                        out.append(sock.recv(1) == b"?")
                    except TimeoutError:
                        out.append(False)
            return out

    first = decisions(21)
    assert first == decisions(21)
    assert 0 < sum(first) < 12
