"""Publishers under node faults: with confirms nothing confirmed may be lost; without
confirms the publisher must at least keep going (what it loses is counted, not judged)."""

from __future__ import annotations

from scenarios.catalog.kombu_notes import CONFIRM_THEN_CLOSE
from scenarios.catalog.pika_notes import SLOW_HEARTBEAT_CHECK
from scenarios.model import Fault, Publisher, Setup, pipeline

_TOXIC_BLACKHOLE = Fault("add_toxic", ("node1", "timeout"), {"timeout": 0}, at=3.0)
_FAULTS = {
    "kill": (Fault("kill", ("node1",), at=3.0), Fault("start", ("node1",), at=10.0)),
    "graceful-stop": (Fault("stop", ("node1",), at=3.0), Fault("start", ("node1",), at=10.0)),
    "hung-node": (Fault("pause", ("node1",), at=3.0), Fault("resume", ("node1",), at=40.0)),
    "dead-link": (
        _TOXIC_BLACKHOLE,
        Fault("remove_toxic", ("node1", "timeout_downstream"), at=40.0),
    ),
}
_KOMBU = {"hung-node": CONFIRM_THEN_CLOSE, "dead-link": CONFIRM_THEN_CLOSE}
_WHAT = {
    "kill": "node1, the publisher's node, is killed (sockets reset) and restarted",
    "graceful-stop": "node1 is stopped gracefully (320 CONNECTION_FORCED) and restarted",
    "hung-node": "node1 hangs (sockets open, silence) past two heartbeats; the quorum "
    "queue's leader is node2 (a hung leader stalls its queue: cluster.quorum-leader-hung)",
    "dead-link": "the publisher's link to node1 becomes a black hole (Toxiproxy timeout 0)",
}

SCENARIOS = tuple(
    pipeline(
        f"publish.confirms-{fault}",
        _WHAT[fault],
        "a confirming publisher with retry fails over, republishes unconfirmed messages with "
        "their message_id, and nothing confirmed is lost",
        faults,
        publisher=Publisher(heartbeat=4),
        expect={"max_publish_recovery": "<= 15"},
        setup=Setup(leader=1 if fault == "hung-node" else 0),
        kombu_weakness=_KOMBU.get(fault),
        pika_weakness=_KOMBU.get(fault) and SLOW_HEARTBEAT_CHECK,
    )
    for fault, faults in _FAULTS.items()
) + (
    pipeline(
        "publish.no-confirms-kill",
        "a publisher without confirms while its node is killed and restarted",
        "the publisher keeps going after the failover (its silent losses are counted in "
        "lost_unconfirmed, not judged)",
        _FAULTS["kill"],
        publisher=Publisher(confirms=False),
        expect={"max_publish_recovery": "<= 10", "failed": "<= 2"},
    ),
    pipeline(
        "publish.conditional-kill",
        "node1 is killed right after the 50th confirmed publish",
        "faults on conditions: the failover happens mid-stream and loses nothing",
        (Fault("kill", ("node1",), when="confirmed >= 50"),),
        expect={"max_publish_recovery": "<= 10"},
    ),
)
