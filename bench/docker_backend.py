"""Time the docker backend: engine, images, cluster start, each fault's API call, what a
kombu client of the faulted node sees and when, the undo, reset and close.

    python bench/docker_backend.py [--nodes 3]

Prints one Markdown table (the figures in scenarios/backends/docker.py's docstring come from
it). Needs what the backend needs: a Docker engine or dockerd and root, and the docker SDK.
"""

from __future__ import annotations

import argparse
import time

import kombu

from scenarios.backends.docker import DockerCluster


def timed(fn, *args) -> float:
    t0 = time.monotonic()
    fn(*args)
    return time.monotonic() - t0


def seen(url: str, fault, limit: float = 20.0) -> tuple[float, float, str]:
    """(fault API seconds, seconds until a client of that node errors, the error's class)."""
    conn = kombu.Connection(url, connect_timeout=5, heartbeat=2)
    conn.connect()
    api = timed(fault)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < limit:
            try:
                conn.drain_events(timeout=0.1)
                conn.heartbeat_check()
            except TimeoutError:
                try:
                    conn.heartbeat_check()
                except Exception as exc:
                    return api, time.monotonic() - t0, type(exc).__name__
            except Exception as exc:
                return api, time.monotonic() - t0, type(exc).__name__
        return api, float("nan"), "nothing"
    finally:
        conn.collect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    t0 = time.monotonic()
    cluster = DockerCluster(nodes=args.nodes, project="warren-bench")
    cluster.start()
    try:
        started = "started" if cluster.dockerd else "reused"
        rows.append(("engine", f"{cluster.timings['engine']:.2f} s ({started})"))
        rows.append(("images (build.sh)", f"{cluster.timings['images']:.2f} s"))
        rows.append(("node 1 ready", f"{cluster.timings['node1']:.1f} s"))
        rows.append((f"{args.nodes} nodes + proxies ready", f"{cluster.timings['cluster']:.1f} s"))
        rows.append(("start() in all", f"{time.monotonic() - t0:.1f} s"))
        last = args.nodes - 1
        url = cluster.urls[last]
        for name, fault in (("kill", cluster.kill), ("stop", cluster.stop)):
            api, after, what = seen(url, lambda f=fault: f(last))
            back = timed(cluster.start, last)
            rows.append((name, f"call {api:.2f} s; client {what} after {after:.2f} s; "
                               f"start(i) ready in {back:.1f} s"))  # fmt: skip
        api = timed(cluster.pause, last)
        time.sleep(3)
        resume = timed(cluster.resume, last)
        rows.append(("pause 3 s / resume", f"call {api:.3f} s / {resume:.3f} s"))
        api, after, what = seen(url, lambda: cluster.partition([list(range(last)), [last]]))
        heal = timed(cluster.heal)
        rows.append(("partition / heal", f"call {api:.2f} s; client {what} after {after:.2f} s; "
                                         f"heal call {heal:.2f} s"))  # fmt: skip
        rows.append(("reset after the partition", f"{timed(cluster.reset):.1f} s"))
        cluster.pause(last)
        time.sleep(14)
        cluster.resume(last)
        rows.append(("reset after a 14 s pause (restart)", f"{timed(cluster.reset):.1f} s"))
        rows.append(("memory alarm on / off", f"{timed(cluster.set_memory_alarm, 0, True):.2f} s"
                     f" / {timed(cluster.set_memory_alarm, 0, False):.2f} s"))  # fmt: skip
        rows.append(("toxic down / up", f"{timed(cluster.down, 0):.3f} s / "
                                        f"{timed(cluster.up, 0):.3f} s"))  # fmt: skip
        rows.append(("reset with nothing to undo", f"{timed(cluster.reset):.1f} s"))
    finally:
        rows.append(("close", f"{timed(cluster.close):.1f} s"))
    print("| step | measured |\n| --- | --- |")
    for step, value in rows:
        print(f"| {step} | {value} |")


if __name__ == "__main__":
    main()
