"""Cluster-level failures: rolling restarts, leader loss, partitions, resource alarms, a
queue missing where the client fails over to."""

from __future__ import annotations

from scenarios.catalog.kombu_notes import CONFIRM_THEN_CLOSE, REDECLARE_404
from scenarios.catalog.pika_notes import SLOW_HEARTBEAT_CHECK
from scenarios.model import ConsumerSpec, Fault, Publisher, Setup, pipeline

_rolling = tuple(
    fault
    for i, name in enumerate(("node1", "node2", "node3"))
    for fault in (Fault("stop", (name,), at=3.0 + 8 * i), Fault("start", (name,), at=6.0 + 8 * i))
)

SCENARIOS = (
    pipeline(
        "cluster.rolling-restart",
        "every node is stopped and started in turn, 8 s apart",
        "publisher and consumer follow the restarts; nothing confirmed is lost",
        _rolling,
        publisher=Publisher(messages=300),
    ),
    pipeline(
        "cluster.quorum-leader-loss",
        "the quorum queue's leader node (node1, where it was declared) is killed",
        "a new leader is elected; publishes held meanwhile are confirmed and delivered",
        (Fault("kill", ("node1",), at=3.0),),
        publisher=Publisher(nodes=(1, 2, 0)),
        consumer=ConsumerSpec(nodes=(2, 1, 0)),
    ),
    pipeline(
        "cluster.quorum-leader-hung",
        "the quorum queue's leader node (node1) hangs for 37 s, net_ticktime 60",
        "no new leader before the peers see the hang (RabbitMQ 3.10: Ra does not replace a "
        "hung leader by itself), so publishes stall until the resume; nothing confirmed is "
        "lost",
        (Fault("pause", ("node1",), at=3.0), Fault("resume", ("node1",), at=40.0)),
        publisher=Publisher(heartbeat=4, confirm_timeout=5.0),
        expect={"max_publish_recovery": ">= 30"},
    ),
    pipeline(
        "cluster.quorum-leader-hung-short-tick",
        "the quorum queue's leader node (node1) hangs, net_ticktime 10",
        "the peers see the hang after the tick and elect a new leader: publishes flow again "
        "within ~15 s; nothing confirmed is lost",
        (Fault("pause", ("node1",), at=3.0), Fault("resume", ("node1",), at=40.0)),
        publisher=Publisher(heartbeat=4, confirm_timeout=5.0),
        setup=Setup(net_ticktime=10.0),
        expect={"max_publish_recovery": "<= 20"},
        kombu_weakness=CONFIRM_THEN_CLOSE,  # the publisher's node hangs, as publish.*-hung-node
        pika_weakness=SLOW_HEARTBEAT_CHECK,
    ),
    pipeline(
        "cluster.partition-minority",
        "node1 is cut off from the others (pause_minority: it stops serving)",
        "clients on node1 move to the majority side; nothing confirmed is lost",
        (Fault("partition", ([["node1"], ["node2", "node3"]],), at=3.0), Fault("heal", at=20.0)),
    ),
    pipeline(
        "cluster.partition-majority-side",
        "the consumer's node stays in the majority while node1 is cut off",
        "the consumer is undisturbed; the publisher on node1 fails over",
        (Fault("partition", ([["node1"], ["node2", "node3"]],), at=3.0), Fault("heal", at=20.0)),
        consumer=ConsumerSpec(nodes=(1, 2, 0)),
    ),
    pipeline(
        "cluster.partition-flapping",
        "node1 is partitioned and healed every 4 s, four times",
        "repeated failovers back and forth converge; nothing confirmed is lost",
        tuple(
            fault
            for k in range(4)
            for fault in (
                Fault("partition", ([["node1"], ["node2", "node3"]],), at=3.0 + 8 * k),
                Fault("heal", at=7.0 + 8 * k),
            )
        ),
        publisher=Publisher(messages=400),
    ),
    pipeline(
        "cluster.majority-killed",
        "two of three nodes are killed; pause_minority stops the third until one is back",
        "nothing is served while a single node is up (it is a minority); the clients recover "
        "when node1 returns, and nothing confirmed is lost",
        (
            Fault("kill", ("node1",), at=3.0),
            Fault("kill", ("node2",), at=3.0),
            Fault("start", ("node1",), at=15.0),
        ),  # fmt: skip
        publisher=Publisher(confirm_timeout=30.0),
    ),
    pipeline(
        "cluster.resource-alarm",
        "a memory alarm blocks publishers for 10 s",
        "publishes wait (connection.blocked), are confirmed after the clear, nothing lost",
        (Fault("alarm", ("node1",), at=3.0), Fault("clear_alarm", ("node1",), at=13.0)),
        publisher=Publisher(confirm_timeout=30.0),
        expect={"max_publish_latency": "<= 12"},
    ),
    pipeline(
        "cluster.queue-node-down",
        "a classic queue's home node dies while its consumer holds deliveries, and returns",
        "the consumer fails over, waits for the queue (404 on the other nodes) and resumes "
        "when its node is back; durable messages survive",
        (Fault("kill", ("node1",), at=5.0), Fault("start", ("node1",), at=20.0)),
        setup=Setup(queue_type="classic"),
        publisher=Publisher(messages=30, interval=0.1),
        consumer=ConsumerSpec(nodes=(0, 1, 2), work_seconds=0.3),
        kombu_weakness=REDECLARE_404,
    ),
    pipeline(
        "cluster.node-stays-down",
        "node3, where the consumer reads, is killed and stays down; the queue is a quorum "
        "queue on the two nodes left",
        "the consumer fails over once and keeps consuming; nothing it does on reconnect waits "
        "on the dead node's URL for longer than its heartbeat allows (Celery's delayed "
        "delivery setup tries every URL of the list)",
        (Fault("kill", ("node3",), at=4.0),),
        publisher=Publisher(messages=200, interval=0.2),
        consumer=ConsumerSpec(heartbeat=4),
        expect={"max_consumer_silence": "<= 30"},
        duration=90.0,
    ),
)
