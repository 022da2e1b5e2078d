"""Hypothesis strategies for fault schedules and workloads, and a state machine whose
invariants are the checker's (DESIGN section 6).

On the virtual backend a run is a function of (scenario, seed, client): every example is
deterministic, so Hypothesis shrinks a failure to a minimal fault schedule.

    from hypothesis import given, settings
    from scenarios.strategies import PHASES, fault_schedules, check

    @settings(deadline=None, derandomize=True, database=None, phases=PHASES, max_examples=50)
    @given(fault_schedules(nodes=3, max_faults=3))
    def test_no_confirmed_message_is_lost(schedule):
        check("mypkg.warren:factory", schedule)   # raises with the schedule and replay command

Settings, and why: ``deadline=None`` (a run's wall time depends on the schedule, not on a
bug); ``derandomize=True`` in CI (the same examples every run: a gate, not a lottery);
``database=None`` or a committed directory (a local example database keeps a failure
around between runs, which is what you want locally and not in a clean CI checkout);
``phases=PHASES`` (every phase but ``Phase.explain``: to explain a failure Hypothesis
traces every line the test runs, with ``sys.settrace`` before Python 3.12, which made
finding and shrinking a weakened client's failure 40 times slower here: 64 s against
1.7 s); ``phases`` may also drop ``Phase.shrink`` for a fast smoke run, but keep it to get
the minimal schedule.

A fault *episode* is a fault and its repair: ``kill``/``start``, ``stop``/``start``,
``pause``/``resume``, ``drop_heartbeats`` on and off, a node ``isolate``d from the others
by a partition and ``heal``, and the consumer's own process ``crash``ed and restarted
(``restart_client``: the virtual backend only); the schedule is the episodes' faults in
time order.
"""

from __future__ import annotations

from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from scenarios import adapters
from scenarios.checker import message_id
from scenarios.model import ConsumerSpec, Fault, Publisher, Scenario, pipeline
from scenarios.runner import run_one

#: the Hypothesis phases to run Warren properties with: all but the line-tracing explain
PHASES = tuple(p for p in Phase if p is not Phase.explain)

#: kind -> (fault, repair); the repair takes the same node (or, for partition: none)
EPISODES = {
    "kill": ("kill", "start"),
    "stop": ("stop", "start"),
    "pause": ("pause", "resume"),
    "drop_heartbeats": ("drop_heartbeats", "drop_heartbeats"),
    "partition": ("partition", "heal"),
    "crash": ("crash", "restart_client"),  # the consumer's process, not a node
}
CRASHED_ROLE = "consumer"  # the role a "crash" episode kills and restarts
HORIZON = 30.0  # faults start within this many virtual seconds


def _node(i: int) -> str:
    return f"node{i + 1}"


def _episode(kind: str, node: int, nodes: int, start: float, length: float) -> tuple:
    fault, repair = EPISODES[kind]
    name = _node(node)
    if kind == "partition":
        others = [_node(i) for i in range(nodes) if i != node]
        return (
            Fault(fault, ([[name], others],), at=start),
            Fault(repair, (), at=start + length),
        )
    if kind == "crash":
        return Fault(fault, (CRASHED_ROLE,), at=start), Fault(
            repair, (CRASHED_ROLE,), at=start + length
        )
    if kind == "drop_heartbeats":
        return (
            Fault(fault, (name,), at=start),
            Fault(repair, (name, False), at=start + length),
        )
    return Fault(fault, (name,), at=start), Fault(repair, (name,), at=start + length)


def fault_schedules(
    nodes: int = 3,
    max_faults: int = 3,
    kinds: tuple[str, ...] = ("kill", "stop", "pause", "drop_heartbeats"),
    horizon: float = HORIZON,
    max_length: float = 30.0,
):
    """Schedules of up to ``max_faults`` episodes on a ``nodes``-node cluster: a tuple of
    :class:`~scenarios.model.Fault` in time order (each fault, then its repair)."""
    if not isinstance(nodes, int) or nodes < 1:
        raise InvalidArgument(f"fault_schedules: nodes must be an integer >= 1, got {nodes!r}")
    if not isinstance(max_faults, int) or max_faults < 0:
        raise InvalidArgument(f"fault_schedules: max_faults must be >= 0, got {max_faults!r}")
    unknown = [k for k in kinds if k not in EPISODES]
    if unknown or not kinds:
        raise InvalidArgument(
            f"fault_schedules: unknown fault kinds {unknown or kinds!r}: from {', '.join(EPISODES)}"
        )
    if "partition" in kinds and nodes < 2:
        raise InvalidArgument("fault_schedules: a partition needs nodes >= 2")
    if horizon <= 0 or max_length <= 0:
        raise InvalidArgument("fault_schedules: horizon and max_length must be > 0")
    episode = st.tuples(
        st.sampled_from(kinds),
        st.integers(0, nodes - 1),
        st.floats(0.5, horizon, allow_nan=False).map(lambda t: round(t, 1)),
        st.floats(1.0, max_length, allow_nan=False).map(lambda t: round(t, 1)),
    )
    return st.lists(episode, max_size=max_faults).map(lambda es: _schedule(es, nodes))


def _schedule(episodes, nodes: int) -> tuple[Fault, ...]:
    """The faults of the episodes that fit, in time order: an episode on a node that is
    already broken then (or any episode during a partition) is left out, as a fault that
    cannot apply would only make an invalid run."""
    kept: list[tuple] = []
    for kind, node, start, length in episodes:
        node = -1 if kind == "crash" else node  # one consumer: crashes clash with each other
        end = start + length
        clash = any(
            start <= other_end and other_start <= end and (k == "partition" or kind == "partition"
                                                           or n == node)
            for k, n, other_start, other_end in kept
        )  # fmt: skip
        if not clash:
            kept.append((kind, node, start, end))
    faults = (f for k, n, s, e in kept for f in _episode(k, n, nodes, s, round(e - s, 1)))
    return tuple(sorted(faults, key=lambda f: f.at))


def workloads(max_messages: int = 60):
    """(Publisher, ConsumerSpec) pairs: message counts and intervals, consumer styles."""
    if max_messages < 1:
        raise InvalidArgument(f"workloads: max_messages must be >= 1, got {max_messages!r}")
    publisher = st.builds(
        Publisher,
        messages=st.integers(1, max_messages),
        interval=st.sampled_from([0.05, 0.1, 0.5]),
        heartbeat=st.just(4),
    )
    consumer = st.builds(
        ConsumerSpec,
        style=st.sampled_from(["ensure", "mixin", "simple", "autoretry"]),
        heartbeat=st.just(4),
    )
    return st.tuples(publisher, consumer)


#: for a classic queue: its home node's death loses what is published meanwhile (RabbitMQ
#: confirms a message whose only queue is down: rabbit_confirms:remove_queue), so the
#: property there is liveness: deliveries come back after every fault
CLASSIC_EXPECT = {"lost": ">= 0", "max_delivery_recovery": "<= 60"}


def scenario_for(
    schedule, workload=None, queue_type: str = "quorum", expect: dict | None = None
) -> Scenario:
    """A publish/consume scenario with ``schedule`` (every repair done by the horizon + the
    longest episode; the run then drains). ``expect`` adds or overrides thresholds (the
    defaults: nothing lost, nothing unexpected, nothing escaped; for a classic queue,
    :data:`CLASSIC_EXPECT` too)."""
    from scenarios.model import Setup

    publisher, consumer = workload or (Publisher(messages=30, heartbeat=4), ConsumerSpec())
    if expect is None:
        expect = CLASSIC_EXPECT if queue_type == "classic" else {}
    return pipeline(
        "property.generated",
        "a generated fault schedule",
        "nothing confirmed is lost, nothing unexpected, no exception escapes",
        tuple(schedule),
        publisher=publisher,
        consumer=consumer,
        setup=Setup(queue_type=queue_type),
        duration=300.0,
        expect=expect,
    )


class PropertyFailure(AssertionError):
    """A generated schedule broke an expectation: the schedule, seed and replay hint."""


def check(client, schedule, workload=None, seed: int = 1, queue_type: str = "quorum", expect=None):
    """Run ``schedule`` (with ``workload``) for ``client`` (a name, ``module:factory`` or an
    adapter) on the virtual backend; raise :class:`PropertyFailure` naming the schedule, the
    misses and the seed when an expectation fails. Returns the result."""
    adapter = adapters.load(client) if isinstance(client, str) else client
    scenario = scenario_for(schedule, workload, queue_type, expect)
    result = run_one(scenario, seed, adapter, "virtual")
    if not result.passed:
        faults = "; ".join(f.describe() for f in schedule) or "no faults"
        raise PropertyFailure(
            f"{result.verdict}: {', '.join(result.misses) or result.error} | schedule: {faults} "
            f"| seed {seed} | digest {result.digest[:16]} | {len(schedule)} faults"
        )
    return result


class WarrenMachine(RuleBasedStateMachine):
    """A state machine over one virtual world: rules break and repair nodes and let time
    pass while a publisher and a consumer of ``client`` run; invariants are the checker's
    (nothing unexpected, no escaped exception at any step; at the end, after every repair
    and a drain, nothing confirmed lost). Subclass and set ``client`` (and ``nodes``,
    ``messages``, ``queue_type``)."""

    client = "bundled"
    nodes = 3
    messages = 30
    queue_type = "quorum"
    seed = 1

    def __init__(self) -> None:
        super().__init__()
        from broker_sim.drivers.virtual import START, World
        from scenarios.runner import Env, instrumented, spawn_roles

        self.adapter = adapters.load(self.client) if isinstance(self.client, str) else self.client
        self.scenario = scenario_for((), (Publisher(messages=self.messages, heartbeat=4), None))
        self.world = World(self.seed, nodes=self.nodes)
        world = self.world
        self.env = Env(
            self.scenario, world.events, world.runtime, world.url,
            lambda: world.clock.t - START, world.runtime.sleep,
        )  # fmt: skip
        self.escaped: list = []
        spawn_roles(self.env, self.scenario, self.adapter, self.escaped, world.spawn)
        self._instrumented = instrumented
        self.broken: dict[str, str] = {}  # node -> the repair it needs
        self.steps: list[str] = []
        self._checked, self._escapes = 0, 0  # the invariant's place in the history
        self._invoked: set = set()
        self._delivered: set = set()

    def _run(self, seconds: float) -> None:
        with self._instrumented(self.adapter, self.world):
            self.world.run(until=seconds)

    @rule(kind=st.sampled_from(("kill", "pause", "drop_heartbeats")), node=st.integers(0, 2))
    def break_node(self, kind: str, node: int) -> None:
        name = _node(node % self.nodes)
        if name in self.broken:
            return
        fault, repair = EPISODES[kind]
        getattr(self.world, fault)(name)
        self.world.record("fault", action=f"{fault} {name}")
        self.broken[name] = repair
        self.steps.append(f"{fault} {name}")

    @rule()
    def repair(self) -> None:
        for name, repair in sorted(self.broken.items()):
            args = (name, False) if repair == "drop_heartbeats" else (name,)
            getattr(self.world, repair)(*args)
            self.world.record("fault", action=f"{repair} {name}")
        self.broken.clear()
        self.steps.append("repair")

    @rule(seconds=st.sampled_from((0.5, 2.0, 10.0)))
    def advance(self, seconds: float) -> None:
        self._run(seconds)
        self.steps.append(f"advance {seconds}")

    @invariant()
    def nothing_unexpected_and_nothing_escaped(self) -> None:
        """The checker's ``unexpected`` and ``escaped``, folded in from the new events only
        (recomputing every figure after each step cost 15% of the machine's time)."""
        events = self.world.events
        for _, kind, details in events[self._checked :]:
            if kind == "publish_invoke":
                self._invoked.add(message_id(details))
            elif kind == "deliver":
                self._delivered.add(message_id(details))
            elif kind == "escaped":
                self._escapes += 1
        self._checked = len(events)
        values = {
            "unexpected": len(self._delivered - self._invoked - {None}),
            "escaped": self._escapes,
        }
        assert values["unexpected"] == 0, self._report("unexpected", values)
        assert values["escaped"] == 0, self._report("escaped", values, self.escaped[:1])

    def teardown(self) -> None:
        from scenarios.checker import figures

        self.repair()
        self._run(240.0)  # every repair done: the run drains, or the client is stuck
        values = figures(self.world.events)
        assert values["lost"] == 0, self._report("lost", values)

    def _report(self, what: str, values: dict, extra=()) -> str:
        return (
            f"{what} = {values[what]} after steps {self.steps} (seed {self.seed}, client "
            f"{getattr(self.adapter, 'name', self.client)}) {' '.join(extra)}"
        )
