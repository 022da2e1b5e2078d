"""Toxiproxy-style network faults on a client link (node1's proxy: the publisher's link)."""

from __future__ import annotations

from scenarios.catalog.kombu_notes import CONFIRM_THEN_CLOSE
from scenarios.catalog.pika_notes import SLOW_HEARTBEAT_CHECK
from scenarios.model import Fault, Publisher, pipeline


def _toxic(kind: str, attributes: dict, until: float = 20.0) -> tuple[Fault, ...]:
    return (
        Fault("add_toxic", ("node1", kind), attributes, at=3.0),
        Fault("remove_toxic", ("node1", f"{kind}_downstream"), at=until),
    )


SCENARIOS = (
    pipeline(
        "network.latency-jitter",
        "200 ms latency with 100 ms jitter on the publisher's link",
        "confirms slow down but nothing times out or is lost",
        _toxic("latency", {"latency": 200, "jitter": 100}),
    ),
    pipeline(
        "network.bandwidth",
        "the publisher's link is throttled to 1 KB/s",
        "a slow link is slow, not dead: no spurious failover, nothing lost",
        _toxic("bandwidth", {"rate": 1}),
        publisher=Publisher(messages=40),
    ),
    pipeline(
        "network.slicer",
        "the broker's bytes reach the publisher in 1-20 byte slices",
        "the client's frame reader reassembles everything",
        _toxic("slicer", {"average_size": 10, "size_variation": 9, "delay": 100}),
    ),
    pipeline(
        "network.reset-peer",
        "the publisher's link is reset (RST) 2 s after the toxic goes on",
        "a reset is a connection error: reconnect, republish, nothing lost",
        _toxic("reset_peer", {"timeout": 2000}, until=6.0),
        publisher=Publisher(heartbeat=4),
    ),
    pipeline(
        "network.blackhole",
        "the publisher's link swallows everything (Toxiproxy timeout 0) for 30 s",
        "heartbeats or the confirm timeout find the dead link; the publisher fails over",
        _toxic("timeout", {"timeout": 0}, until=33.0),
        publisher=Publisher(heartbeat=4),
        expect={"max_publish_recovery": "<= 15"},
        kombu_weakness=CONFIRM_THEN_CLOSE,
        pika_weakness=SLOW_HEARTBEAT_CHECK,
    ),
    pipeline(
        "network.isolated-publisher",
        "the publisher's cable is pulled for 12 s (no FIN, no RST) and plugged back",
        "the publisher detects it, reconnects after the rejoin, nothing confirmed is lost",
        (Fault("isolate", ("publisher",), at=3.0), Fault("rejoin", ("publisher",), at=15.0)),
        publisher=Publisher(heartbeat=4),
    ),
)
