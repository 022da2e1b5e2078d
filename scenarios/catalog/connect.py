"""Connect-time failover: which host a client reaches when the first ones are down."""

from __future__ import annotations

from scenarios.model import ConsumerSpec, Fault, Probe, Publisher, Scenario

_first_down = (Fault("kill", ("node1",), at=1.0),)
# stopped (stop_app), not killed: with two of three Erlang nodes gone, pause_minority would
# stop the third as well (cluster.majority-killed shows that)
_two_down = (Fault("stop", ("node1",), at=1.0), Fault("stop", ("node2",), at=1.0))

SCENARIOS = (
    Scenario(
        name="connect.round-robin",
        family="connect",
        description="the first URL's node is dead when the client connects",
        checks="round-robin tries the next host within one connect() and lands on node2",
        probe=Probe("connect", {"strategy": "round-robin"}),
        faults=_first_down,
        expect={"probe.raised": "== 0", "probe.node": "== 1"},
        duration=60,
    ),
    Scenario(
        name="connect.round-robin-two-down",
        family="connect",
        description="two of three nodes are stopped when the client connects",
        checks="one connect() walks the whole list and reaches the one live node",
        probe=Probe("connect", {"strategy": "round-robin"}),
        faults=_two_down,
        expect={"probe.raised": "== 0", "probe.node": "== 2"},
        duration=60,
    ),
    Scenario(
        name="connect.shuffle",
        family="connect",
        description="a node is dead; the client shuffles its hosts",
        checks="the shuffle strategy (seeded) still reaches a live node, never the dead one",
        probe=Probe("connect", {"strategy": "shuffle"}),
        faults=_first_down,
        expect={"probe.raised": "== 0", "probe.node": ">= 1"},
        duration=60,
    ),
    Scenario(
        name="connect.finite-strategy",
        family="connect",
        description="a custom failover strategy yields only the dead first host",
        checks="running out of hosts is a connection error naming the strategy, no StopIteration",
        probe=Probe("connect", {"finite": True}),
        faults=_first_down,
        expect={"probe.raised": "== 1", "probe.names_strategy": "== 1"},
        duration=60,
        kombu_weakness="kombu lets StopIteration out of its failover cycle",
    ),
    Scenario(
        name="connect.all-down-then-back",
        family="connect",
        description="every node is stopped for 20 s while a publisher runs",
        checks="a max_retries=None publisher waits the outage out and loses nothing",
        publishers=(Publisher(messages=60, interval=0.5),),
        consumers=(ConsumerSpec(),),  # the family is connect: not pipeline()'s name rule
        faults=(
            Fault("stop", ("node1",), at=5.0),
            Fault("stop", ("node2",), at=5.0),
            Fault("stop", ("node3",), at=5.0),
            Fault("start", ("node1",), at=25.0),
            Fault("start", ("node2",), at=25.0),
            Fault("start", ("node3",), at=25.0),
        ),
        expect={"max_publish_recovery": "<= 25", "failed": "== 0"},
    ),
)
