"""Consumers in each style users write, under node faults: every confirmed message is
consumed, the consumer comes back."""

from __future__ import annotations

from scenarios.catalog.kombu_notes import POLITE_CLOSE, REBIND_WAITS
from scenarios.catalog.pika_notes import SLOW_HEARTBEAT_CHECK
from scenarios.model import ConsumerSpec, Fault, pipeline

_ON_CONSUMER_NODE = {  # the consumer's first node is node3
    "kill": (Fault("kill", ("node3",), at=4.0), Fault("start", ("node3",), at=12.0)),
    "hung-node": (Fault("pause", ("node3",), at=4.0), Fault("resume", ("node3",), at=40.0)),
}

SCENARIOS = tuple(
    pipeline(
        f"consume.{style}-{fault}",
        f"node3, where a {style}-style consumer reads, is "
        + ("killed and restarted" if fault == "kill" else "hung past two heartbeats"),
        f"the {style} consumer reconnects to another node, gets its consumer back and "
        "consumes every confirmed message",
        faults,
        consumer=ConsumerSpec(style=style, heartbeat=4),
        expect={"max_consumer_silence": "<= 30"},
        kombu_weakness=(REBIND_WAITS if style == "simple" else POLITE_CLOSE)
        if fault == "hung-node"
        else None,
        pika_weakness=SLOW_HEARTBEAT_CHECK if fault == "hung-node" else None,
    )
    for style in ("ensure", "mixin", "simple")
    for fault, faults in _ON_CONSUMER_NODE.items()
) + (
    pipeline(
        "consume.autoretry-kill",
        "node3 is killed under a consumer polling with autoretry(basic.get)",
        "autoretry revives the channel on another node and the polling goes on",
        _ON_CONSUMER_NODE["kill"],
        consumer=ConsumerSpec(style="autoretry", heartbeat=4),
    ),
    pipeline(
        "consume.kill-with-unacked",
        "node3 is killed while the consumer holds unacked deliveries (slow callback)",
        "unacked deliveries come back redelivered; stale acks are fenced, nothing is lost",
        (Fault("kill", ("node3",), when="unacked > 0"), Fault("start", ("node3",), at=30.0)),
        consumer=ConsumerSpec(work_seconds=0.3, heartbeat=4),
    ),
)
