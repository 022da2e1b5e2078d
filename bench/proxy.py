"""``warren proxy`` (Toxiproxy-compatible, no toxics) against a direct connection, in one run:
bulk throughput through an echo server (MB/s and ratio) and the added round-trip latency
of 64-byte messages (p50/p99). Goals: p50 added <= 300 µs, bulk >= 100 MB/s.

    python bench/proxy.py [--megabytes 200] [--roundtrips 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ECHO = """
import asyncio
async def echo(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except ConnectionError:
        pass
    w.close()
async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bulk(port: int, megabytes: int) -> float:
    total = megabytes * 1024 * 1024
    chunk = b"x" * 65536
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received = [0]

        def reader() -> None:
            while received[0] < total:
                data = sock.recv(262144)
                if not data:
                    break
                received[0] += len(data)

        thread = threading.Thread(target=reader)
        started = time.perf_counter()
        thread.start()
        sent = 0
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
        thread.join(timeout=120)
        elapsed = time.perf_counter() - started
    if received[0] < total:
        raise RuntimeError(f"echo returned {received[0]} of {total} bytes")
    return total / elapsed / 1e6


def roundtrips(port: int, count: int) -> list[float]:
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = b"p" * 64
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(payload)
            got = 0
            while got < len(payload):
                got += len(sock.recv(4096))
            times.append(time.perf_counter() - started)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--roundtrips", type=int, default=3000)
    args = parser.parse_args()
    if args.megabytes < 1 or args.roundtrips < 10:
        parser.error("--megabytes >= 1 and --roundtrips >= 10")
    echo = subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    api_port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "proxy", "--port", str(api_port), "--seed", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        echo_port = int(echo.stdout.readline())
        proxy.stdout.readline()
        body = json.dumps({"name": "bench", "upstream": f"127.0.0.1:{echo_port}"}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/proxies", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            proxied_port = int(json.loads(response.read())["listen"].rsplit(":", 1)[1])
        direct_mb, proxied_mb = bulk(echo_port, args.megabytes), bulk(proxied_port, args.megabytes)
        direct_rt = roundtrips(echo_port, args.roundtrips)
        proxied_rt = roundtrips(proxied_port, args.roundtrips)
    finally:
        for proc in (proxy, echo):
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    p50 = (statistics.median(proxied_rt) - statistics.median(direct_rt)) * 1e6
    p99 = (pct(proxied_rt, 0.99) - pct(direct_rt, 0.99)) * 1e6
    print(
        f"warren proxy vs direct, echo upstream, {args.megabytes} MB bulk, "
        f"{args.roundtrips} x 64-byte round trips"
    )
    print(
        f"bulk throughput: direct {direct_mb:,.0f} MB/s, through proxy {proxied_mb:,.0f} MB/s, "
        f"ratio {proxied_mb / direct_mb:.2f}"
    )
    print(
        f"round trip p50: direct {statistics.median(direct_rt) * 1e6:.0f} µs, proxied "
        f"{statistics.median(proxied_rt) * 1e6:.0f} µs, added {p50:.0f} µs"
    )
    print(
        f"round trip p99: direct {pct(direct_rt, 0.99) * 1e6:.0f} µs, proxied "
        f"{pct(proxied_rt, 0.99) * 1e6:.0f} µs, added {p99:.0f} µs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
