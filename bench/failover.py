"""The bundled client's failover figures (issue 10's "figures to keep"), measured on the live
simulated cluster over real TCP, each against its goal:

- kill -> next confirmed publish (ms) with a confirming, retrying publisher on a quorum
  queue, and the confirmed messages lost (goal <= 1,000 ms, 0 lost);
- a hung node (paused) and a black-holed link (Toxiproxy ``timeout`` 0) detected by a
  draining consumer, and a hung node detected by an app that only calls
  ``heartbeat_check()`` at heartbeat/2 (goal: 2 x heartbeat after the broker's last byte,
  plus the step at which the client looks: 0.5 s for a drain, heartbeat/2 for the polls);
- an idle ``drain_events(timeout=T)`` returns at T +- 10 %;
- a publish with ``max_retries=None`` through a single node's outage completes once the
  node is back (goal: within the backoff's interval_max of the restart).

    python bench/failover.py [--runs 5] [--heartbeat 2] [--drain 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toxiproxy import Toxiproxy  # noqa: E402
from toxiproxy.api import APIConsumer  # noqa: E402

from broker_sim import SimCluster  # noqa: E402
from client import Connection, Producer, Queue  # noqa: E402

FOREVER = {"max_retries": None, "interval_start": 0.05, "interval_step": 0.1, "interval_max": 0.5}


def kill_to_next_confirm(seed: int) -> tuple[float, int]:
    """(ms from the kill to the next confirmed publish, confirmed messages lost)."""
    with SimCluster(nodes=3, seed=seed, election_timeout=0.3) as cluster:
        queue = Queue("fo", routing_key="fo", queue_arguments={"x-queue-type": "quorum"})
        conn = Connection(
            ";".join(cluster.urls[:2]),
            transport_options={"confirm_publish": True, "confirm_timeout": 2},
        )
        producer = Producer(conn)
        producer.publish("warm", routing_key="fo", declare=[queue], message_id="warm")
        confirmed: list[tuple[float, str]] = []
        killed_at = None
        for n in range(100_000):  # bounded: stops 1 s after the kill, or after 100,000
            if killed_at is None and n == 200:
                cluster.kill("node1")
                killed_at = time.monotonic()
            producer.publish(
                n, routing_key="fo", message_id=str(n), retry=True, retry_policy=FOREVER
            )
            confirmed.append((time.monotonic(), str(n)))
            if killed_at is not None and time.monotonic() - killed_at > 1.0:
                break
        after = [t for t, _ in confirmed if killed_at is not None and t > killed_at]
        gap_ms = (after[0] - killed_at) * 1000 if after else float("inf")
        conn.collect()
        with Connection(cluster.urls[2]) as reader:
            seen = set()
            channel = reader.default_channel
            while (message := queue(channel).get(no_ack=True)) is not None:
                seen.add(message.properties.get("message_id"))
        lost = sum(1 for _, mid in confirmed if mid not in seen)
        return gap_ms, lost


def detection(fault: str, heartbeat: int, poll_only: bool = False) -> float:
    """Seconds from the fault until the client raises a connection error."""
    step = heartbeat / 2 if poll_only else 0.2
    with SimCluster(nodes=1) as cluster:
        conn = Connection(cluster.urls[0], heartbeat=heartbeat)
        conn.connect()
        if fault == "hung":
            cluster.pause("node1")
        else:
            parts = urllib.parse.urlparse(cluster.api_url)
            APIConsumer.host, APIConsumer.port = parts.hostname, parts.port
            Toxiproxy().get_proxy("node1").add_toxic(type="timeout", attributes={"timeout": 0})
        started = time.monotonic()
        try:
            while time.monotonic() - started < 10 * heartbeat:
                if poll_only:
                    conn.heartbeat_check()
                    time.sleep(step)
                else:
                    try:
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass
        except conn.connection_errors:
            return time.monotonic() - started
        finally:
            conn.collect()
            if fault == "hung":
                cluster.resume("node1")
        return float("inf")


def idle_drain(seconds: float) -> float:
    with SimCluster(nodes=1) as cluster, Connection(cluster.urls[0], heartbeat=2) as conn:
        conn.connect()
        started = time.monotonic()
        try:
            conn.drain_events(timeout=seconds)
        except TimeoutError:
            pass
        return time.monotonic() - started


def outage_publish(outage: float) -> float:
    """Seconds from the node's restart to the end of a publish made during the outage."""
    with SimCluster(nodes=1) as cluster:
        conn = Connection(cluster.urls[0], transport_options={"confirm_publish": True})
        producer = Producer(conn)
        queue = Queue("out", routing_key="out")
        producer.publish("first", routing_key="out", declare=[queue])
        cluster.stop_node("node1")
        restarted: list[float] = []
        timer = threading.Timer(
            outage, lambda: (cluster.start_node("node1"), restarted.append(time.monotonic()))
        )
        timer.start()
        policy = {**FOREVER, "interval_max": 1}
        producer.publish("second", routing_key="out", retry=True, retry_policy=policy)
        done = time.monotonic()
        timer.join()
        conn.collect()
        return done - restarted[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--heartbeat", type=int, default=2)
    parser.add_argument("--drain", type=float, default=10.0)
    args = parser.parse_args()
    if args.runs < 1 or args.heartbeat < 1 or args.drain <= 0:
        parser.error("--runs and --heartbeat must be >= 1, --drain > 0")
    hb = args.heartbeat
    kills = [kill_to_next_confirm(seed) for seed in range(args.runs)]
    gaps = [gap for gap, _ in kills]
    rows = [
        (
            "kill -> next confirmed publish (ms)",
            f"median {statistics.median(gaps):,.0f}, worst {max(gaps):,.0f}",
            "<= 1,000",
            max(gaps) <= 1000,
        ),
        (
            "confirmed messages lost",
            str(sum(lost for _, lost in kills)),
            "0",
            not any(lost for _, lost in kills),
        ),
    ]
    for label, fault, poll in (
        ("hung node, draining consumer: fault -> error (s)", "hung", False),
        ("black-holed link, draining consumer: fault -> error (s)", "blackhole", False),
        ("hung node, heartbeat_check() only: fault -> error (s)", "hung", True),
    ):
        bound = 2 * hb + (hb / 2 if poll else 0.5)
        took = [detection(fault, hb, poll) for _ in range(max(1, args.runs // 2))]
        rows.append(
            (label, f"worst {max(took):.2f}", f"<= {bound:g} (2 x hb + step)", max(took) <= bound)
        )
    drained = idle_drain(args.drain)
    rows.append(
        (
            f"idle drain_events(timeout={args.drain:g}) (s)",
            f"{drained:.2f}",
            f"{args.drain:g} +- 10 %",
            abs(drained - args.drain) <= 0.1 * args.drain,
        )
    )
    late = outage_publish(3.0)
    rows.append(
        (
            "max_retries=None publish after a 3 s outage: done after restart (s)",
            f"{late:.2f}",
            "<= 1 (interval_max)",
            late <= 1.0 + 0.2,
        )
    )
    print(f"bundled client failover figures, live simulated cluster ({args.runs} kill runs)")
    print(f"{'figure':<70}{'measured':>26}{'goal':>28}  met")
    for label, value, goal, met in rows:
        print(f"{label:<70}{value:>26}{goal:>28}  {'yes' if met else 'NO'}")
    return 0 if all(met for *_, met in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
