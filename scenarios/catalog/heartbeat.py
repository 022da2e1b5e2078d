"""Heartbeat detection: a dead peer found within two heartbeat intervals, a healthy one
never dropped.

The hung-node cases run with net_ticktime 10. A queue goes on delivering to the hung
node's consumer (it cannot tell) until its peers see the hang: with RabbitMQ's default 60
those prefetched messages are out of reach for a minute whatever the client does
(measured on RabbitMQ 3.10; broker_sim.cluster.delivers_to). The client's part, noticing
by heartbeats and moving on, is what these scenarios measure."""

from __future__ import annotations

from scenarios.catalog.kombu_notes import POLITE_CLOSE
from scenarios.catalog.pika_notes import SLOW_HEARTBEAT_CHECK
from scenarios.model import ConsumerSpec, Fault, Publisher, Setup, pipeline

SCENARIOS = (
    pipeline(
        "heartbeat.idle-consumer-hung-node",
        "the node of an idle consumer (no traffic for 30 s) hangs",
        "the idle consumer notices by heartbeats alone, fails over, and consumes what comes",
        (Fault("pause", ("node3",), at=35.0), Fault("resume", ("node3",), at=90.0)),
        publisher=Publisher(messages=20, interval=3.0),
        consumer=ConsumerSpec(heartbeat=5),
        setup=Setup(net_ticktime=10.0),
        expect={"max_consumer_silence": "<= 20"},
        kombu_weakness=POLITE_CLOSE,
        pika_weakness=SLOW_HEARTBEAT_CHECK,
    ),
    pipeline(
        "heartbeat.busy-consumer",
        "a consumer kept busy by a steady stream while its node hangs",
        "heartbeat detection works while data flows the other way",
        (Fault("pause", ("node3",), at=4.0), Fault("resume", ("node3",), at=60.0)),
        publisher=Publisher(messages=200, interval=0.05),
        consumer=ConsumerSpec(heartbeat=4),
        setup=Setup(net_ticktime=10.0),
        expect={"max_consumer_silence": "<= 15"},
        kombu_weakness=POLITE_CLOSE,
        pika_weakness=SLOW_HEARTBEAT_CHECK,
    ),
    pipeline(
        "heartbeat.long-callback",
        "each message takes 3 s to handle with heartbeat 2 (longer than two intervals)",
        "the broker drops the silent connection; the consumer reconnects and every message "
        "is handled (redeliveries allowed)",
        publisher=Publisher(messages=5, interval=1.0),
        consumer=ConsumerSpec(heartbeat=2, work_seconds=3.0, prefetch=1),
        duration=400,
    ),
    pipeline(
        "heartbeat.dropped-by-broker",
        "node3 keeps serving but sends no heartbeats to an idle consumer",
        "the consumer treats the silent broker as dead and moves to another node",
        (Fault("drop_heartbeats", ("node3",), at=2.0),),
        publisher=Publisher(messages=10, interval=5.0),
        consumer=ConsumerSpec(heartbeat=4),
    ),
)
