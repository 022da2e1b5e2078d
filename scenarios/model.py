"""Scenarios as data (DESIGN section 5): cluster setup, workload, fault schedule and
expectations, written once for every backend and every client adapter.

A :class:`Scenario` is a frozen dataclass; the catalog (``scenarios/catalog/``) holds the
built-in ones, a user adds theirs from a Python module (a ``SCENARIOS`` list) or a TOML file
(:func:`scenarios.catalog.load_toml`). Nothing here runs anything: the runner turns a
scenario and a seed into a history, the checker turns the history into figures, and the
expectations are thresholds on those figures.

Faults use DESIGN section 3's vocabulary by name (``kill``, ``stop``, ``start``, ``restart``,
``pause``, ``resume``, ``partition``, ``heal``, ``drop_heartbeats``, ``isolate``, ``rejoin``,
``add_toxic``, ``remove_toxic``, ``down``, ``up``, plus ``alarm``/``clear_alarm``), at a
time (seconds from the start) or on a condition over the history so far
(``"confirmed >= 50"``, ``"unacked > 0"``; see :data:`CONDITION_COUNTERS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from broker_sim.drivers.virtual import FAULTS as WORLD_FAULTS

#: Counters a fault condition can name, each computed from the history so far.
CONDITION_COUNTERS = ("published", "confirmed", "delivered", "acked", "unacked", "reconnects")
_CONDITION = re.compile(r"^\s*(\w+)\s*(>=|<=|==|>|<)\s*(\d+)\s*$")


class ScenarioError(ValueError):
    """A scenario definition is wrong: the message names the scenario and the bad part."""


@dataclass(frozen=True)
class Setup:
    """The cluster: node count, the work queue, the quorum election timeout and the
    Erlang net tick after which the peers of a hung node see it down."""

    nodes: int = 3
    queue: str = "orders"
    queue_type: str = "quorum"  # classic | quorum
    queue_arguments: dict = field(default_factory=dict)
    election_timeout: float = 1.0
    net_ticktime: float = 60.0
    # the node (index) that declares the work queue before any role starts: RabbitMQ makes
    # the declaring connection's node a classic queue's home and a quorum queue's first
    # leader, and on real nodes the roles would race for it
    leader: int = 0


@dataclass(frozen=True)
class Publisher:
    """A publisher: ``messages`` publishes, ``interval`` seconds apart, through ``nodes``
    (indexes into the cluster, the failover order of its URL list)."""

    name: str = "publisher"
    messages: int = 100
    interval: float = 0.1
    confirms: bool = True
    retry: bool = True
    retry_policy: dict = field(
        default_factory=lambda: {
            "max_retries": None,
            "interval_start": 0.2,
            "interval_step": 0.2,
            "interval_max": 1.0,
        }
    )
    confirm_timeout: float = 5.0
    timeout: float | None = None  # Producer.publish(timeout=...)
    heartbeat: int = 10
    nodes: tuple[int, ...] = (0, 1, 2)
    failover_strategy: str = "round-robin"


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer in one of the styles users write (the seeds' recipes):

    ``ensure`` — ``conn.ensure(conn, drain_loop)`` around ``drain_events`` (seed 001);
    ``mixin`` — a ``ConsumerMixin`` worker; ``simple`` — ``SimpleQueue.get`` in a loop that
    reconnects on connection errors; ``autoretry`` — ``conn.autoretry`` around ``basic.get``
    polling."""

    name: str = "consumer"
    style: str = "ensure"
    prefetch: int = 10
    heartbeat: int = 10
    nodes: tuple[int, ...] = (2, 1, 0)
    work_seconds: float = 0.0  # time the callback takes per message
    ack: bool = True


@dataclass(frozen=True)
class Fault:
    action: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    at: float | None = None  # seconds from the start
    when: str | None = None  # or a condition, e.g. "confirmed >= 50"

    def describe(self) -> str:
        what = " ".join([self.action, *map(str, self.args)])
        what += "".join(f" {k}={v}" for k, v in self.kwargs.items())
        return f"{what} at {self.at:g}s" if self.at is not None else f"{what} when {self.when}"


@dataclass(frozen=True)
class Probe:
    """A client-API check that is not a publish/consume pipeline (retry accounting, bad
    configuration, irrecoverable errors, connect-time failover): run by the adapter's
    ``probe(name, params)``, which records ``probe`` events whose values become figures
    ``probe.<key>``."""

    name: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    family: str
    description: str  # the failure it models
    checks: str  # the client behaviour it checks
    setup: Setup = field(default_factory=Setup)
    publishers: tuple[Publisher, ...] = ()
    consumers: tuple[ConsumerSpec, ...] = ()
    probe: Probe | None = None
    faults: tuple[Fault, ...] = ()
    expect: dict = field(default_factory=dict)  # figure -> "<= 10", "== 0", ...
    duration: float = 300.0  # virtual seconds before the run is cut short
    kombu_weakness: str | None = None  # why kombu fails it, in one line (for the comparison)
    pika_weakness: str | None = None  # why pika fails it, in one line

    def __post_init__(self) -> None:
        validate(self)

    @property
    def expectations(self) -> dict:
        """The scenario's thresholds over the defaults every pipeline scenario has."""
        base = {} if self.probe is not None else dict(PIPELINE_DEFAULTS)
        return {**base, **self.expect}


def pipeline(
    name: str,
    description: str,
    checks: str,
    faults: tuple[Fault, ...] = (),
    publisher: Publisher | None = None,
    consumer: ConsumerSpec | None = None,
    **kwargs,
) -> Scenario:
    """A publish/consume scenario: one publisher and one consumer (defaults unless given);
    the family is the name's first part."""
    return Scenario(
        name=name,
        family=name.split(".", 1)[0],
        description=description,
        checks=checks,
        publishers=(publisher or Publisher(),),
        consumers=(consumer or ConsumerSpec(),),
        faults=faults,
        **kwargs,
    )


#: What every publish/consume scenario must show unless it says otherwise.
PIPELINE_DEFAULTS = {"lost": "== 0", "unexpected": "== 0", "escaped": "== 0", "unprocessed": "== 0"}

CONSUMER_STYLES = ("ensure", "mixin", "simple", "autoretry")
#: the world's fault vocabulary (DESIGN section 3) plus a node's resource alarm
FAULT_ACTIONS = (*WORLD_FAULTS, "alarm", "clear_alarm")


def parse_condition(text: str) -> tuple[str, str, int]:
    match = _CONDITION.match(text or "")
    if match is None or match.group(1) not in CONDITION_COUNTERS:
        raise ScenarioError(
            f"condition {text!r}: expected '<counter> <op> <n>' with a counter from "
            f"{', '.join(CONDITION_COUNTERS)}"
        )
    return match.group(1), match.group(2), int(match.group(3))


def validate(scenario: Scenario) -> None:
    """Refuse a definition that cannot run, naming the scenario and the bad part."""
    where = f"scenario {scenario.name!r}"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", scenario.name or ""):
        raise ScenarioError(f"{where}: a name is lowercase letters, digits, '.' and '-'")
    if scenario.setup.nodes < 1:
        raise ScenarioError(f"{where}: setup.nodes must be >= 1")
    if scenario.setup.queue_type not in ("classic", "quorum"):
        raise ScenarioError(f"{where}: queue_type must be classic or quorum")
    for consumer in scenario.consumers:
        if consumer.style not in CONSUMER_STYLES:
            raise ScenarioError(
                f"{where}: consumer style {consumer.style!r} is not one of "
                f"{', '.join(CONSUMER_STYLES)}"
            )
    for role in (*scenario.publishers, *scenario.consumers):
        bad = [n for n in role.nodes if not 0 <= n < scenario.setup.nodes]
        if bad:
            raise ScenarioError(
                f"{where}: {role.name} names nodes {bad} of a {scenario.setup.nodes}-node cluster"
            )
    for fault in scenario.faults:
        if fault.action not in FAULT_ACTIONS:
            raise ScenarioError(
                f"{where}: unknown fault {fault.action!r} (one of {', '.join(FAULT_ACTIONS)})"
            )
        if (fault.at is None) == (fault.when is None):
            raise ScenarioError(f"{where}: fault {fault.action!r} needs one of at= or when=")
        if fault.when is not None:
            parse_condition(fault.when)
        if fault.at is not None and fault.at < 0:
            raise ScenarioError(f"{where}: fault {fault.action!r} at {fault.at} s is in the past")
    from scenarios.checker import parse_threshold  # the checker owns the figure names

    for figure, threshold in scenario.expect.items():
        try:
            parse_threshold(figure, threshold)
        except ValueError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
