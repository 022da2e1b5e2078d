"""The simulated broker's own cost per message, sans-IO: no client, no sockets, no world.

A publisher connection sends pre-encoded basic.publish + header + body frames (what the
bundled client sends) into a 3-node cluster; a consumer connection on another node acks
each delivery. Only ``Node.receive`` and the taking of output are timed. This is the number
to push down for ``bench/virtual.py``'s traffic figure.

    python bench/sim_path.py [--messages 20000] [--queue quorum|classic] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pamqp import commands as C  # noqa: E402

from broker_sim.cluster import Cluster  # noqa: E402
from broker_sim.framing import content_frames, header_payload, method_frame  # noqa: E402
from client.protocol import ClientProtocol  # noqa: E402

START = 1_700_000_000.0


class Clock:
    t = START

    def __call__(self) -> float:
        return self.t


def open_connection(node, clock) -> tuple:
    """Handshake a ClientProtocol with ``node`` in memory; return (conn, proto)."""
    proto = ClientProtocol("guest", "guest", clock=clock, heartbeat=0)
    conn = node.connect("bench:1")
    proto.initiate()
    for _ in range(20):
        node.receive(conn, proto.data_to_send())
        back = b"".join(d for c, d, _ in node.take_output() if c is conn)
        if back:
            proto.receive(back)
    proto.send_method(1, C.Channel.Open())
    node.receive(conn, proto.data_to_send())
    node.take_output()
    return conn, proto


def run(messages: int, queue_type: str, profile: bool) -> float:
    clock = Clock()
    cluster = Cluster(3, clock, random.Random(1))
    node1, node2 = cluster.nodes["rabbit@node1"], cluster.nodes["rabbit@node2"]
    pub, pub_proto = open_connection(node1, clock)
    con, con_proto = open_connection(node2, clock)
    args = {"x-queue-type": queue_type}
    declare = C.Queue.Declare(queue="bench", durable=True, arguments=args)
    node1.receive(pub, method_frame(1, declare))
    node2.receive(con, method_frame(1, C.Basic.Qos(prefetch_count=100)))
    node2.receive(con, method_frame(1, C.Basic.Consume(queue="bench", consumer_tag="c")))
    for node in cluster.nodes.values():
        node.take_output()
    props = C.Basic.Properties(
        content_type="application/octet-stream", delivery_mode=2, message_id="0" * 32
    )
    body = b"x" * 100
    publish = method_frame(1, C.Basic.Publish(exchange="", routing_key="bench")) + (
        content_frames(1, header_payload(props, len(body)), body, 131072)
    )

    def loop() -> int:
        delivered = 0
        for tag in range(1, messages + 1):
            node1.receive(pub, publish)
            node1.take_output()
            out = node2.take_output()
            if out:
                delivered += 1
            node2.receive(con, method_frame(1, C.Basic.Ack(tag)))
            node2.take_output()
        return delivered

    started = time.process_time()
    if profile:
        profiler = cProfile.Profile()
        delivered = profiler.runcall(loop)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    else:
        delivered = loop()
    spent = time.process_time() - started
    assert delivered == messages, f"{delivered} of {messages} delivered"
    return spent / messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--queue", choices=["quorum", "classic"], default="quorum")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    opts = parser.parse_args()
    costs = [run(opts.messages, opts.queue, opts.profile) for _ in range(opts.repeat)]
    print(
        f"simulated broker, {opts.queue} queue: {min(costs) * 1e6:.1f} us of CPU a message "
        f"(publish + deliver + ack; best of {opts.repeat}, {opts.messages:,} messages)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
