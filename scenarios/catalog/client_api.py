"""The client API's own promises: ensure's retry accounting, irrecoverable errors, bad
configuration, pools under failover."""

from __future__ import annotations

from scenarios.model import ConsumerSpec, Fault, Probe, Scenario

_all_stopped = tuple(Fault("stop", (f"node{i}",), at=1.0) for i in (1, 2, 3))
_all_back = tuple(Fault("start", (f"node{i}",), at=12.0) for i in (1, 2, 3))


def _accounting(name: str, params: dict, expect: dict, faults=_all_stopped, **kw) -> Scenario:
    return Scenario(
        name=f"ensure.{name}",
        family="client_api",
        description="every node stops under a connection that ensure() then uses",
        checks=kw.pop("checks"),
        probe=Probe("ensure-accounting", params),
        faults=faults,
        expect=expect,
        duration=120,
        **kw,
    )


SCENARIOS = (
    _accounting(
        "max-retries-0",
        {"max_retries": 0},
        {"probe.raised": "== 1", "probe.retries": "== 0"},
        checks="max_retries=0: no retry at all, OperationalError at once",
    ),
    _accounting(
        "max-retries-1",
        {"max_retries": 1},
        {"probe.raised": "== 1", "probe.retries": "== 1"},
        checks="max_retries=1: exactly one retry, then OperationalError",
    ),
    _accounting(
        "max-retries-5",
        {"max_retries": 5},
        {"probe.raised": "== 1", "probe.retries": "== 5"},
        checks="max_retries=N: N retries (reconnect attempts count), then OperationalError",
    ),
    _accounting(
        "max-retries-none",
        {"max_retries": None},
        {"probe.raised": "== 0", "probe.elapsed": ">= 10"},
        faults=_all_stopped + _all_back,
        checks="max_retries=None retries until the nodes are back (11 s), then succeeds",
    ),
    _accounting(
        "deadline",
        {"max_retries": None, "timeout": 5},
        {"probe.raised": "== 1", "probe.elapsed": "<= 5"},
        checks="a timeout bounds a max_retries=None retry: gives up within 5 s",
        kombu_weakness="kombu's ensure() has no overall deadline",
    ),
    Scenario(
        name="ensure.irrecoverable-404",
        family="client_api",
        description="the wrapped call declares a queue passively that does not exist",
        checks="404 NOT_FOUND is raised at once, unchanged, not retried forever",
        probe=Probe("irrecoverable", {"code": 404}),
        expect={"probe.calls": "== 1", "probe.raised_unchanged": "== 1"},
        duration=60,
    ),
    Scenario(
        name="ensure.irrecoverable-406",
        family="client_api",
        description="the wrapped call redeclares a queue with other arguments",
        checks="406 PRECONDITION_FAILED is raised at once, unchanged, not retried",
        probe=Probe("irrecoverable", {"code": 406}),
        expect={"probe.calls": "== 1", "probe.raised_unchanged": "== 1"},
        duration=60,
    ),
    Scenario(
        name="config.refused",
        family="client_api",
        description="bad URLs, strategies, intervals and timeouts in the client configuration",
        checks="each is refused when the Connection is built, naming the bad part",
        probe=Probe("bad-config"),
        expect={"probe.named": "== 6"},
        duration=30,
        kombu_weakness="kombu accepts negative or busy-looping intervals and unknown URLs",
    ),
    Scenario(
        name="pool.through-an-outage",
        family="client_api",
        description="a producer pool publishes while node1, where its connections are, dies",
        checks="every publish lands, every producer and connection goes back to its pool",
        probe=Probe("pool"),
        consumers=(ConsumerSpec(),),
        faults=(Fault("kill", ("node1",), at=2.0), Fault("start", ("node1",), at=6.0)),
        expect={"probe.leased": "== 0", "probe.connections_leased": "== 0", "lost": "== 0"},
        duration=120,
    ),
)
