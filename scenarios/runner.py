"""Runs scenarios x seeds on a backend with a client adapter and yields results (DESIGN
section 8: scenario -> runner -> backend + adapter -> history -> checker -> report).

The virtual backend plays each run in a :class:`~broker_sim.drivers.virtual.World` seeded
with the run's seed: every role of the scenario is an actor running the adapter's method,
timed faults are scheduled by name, conditional faults are fired by a watcher actor that
looks at the history every 50 virtual ms. An exception escaping a role is recorded as an
``escaped`` event and the run goes on; a run that deadlocks, or takes longer than
``wall_timeout`` real seconds (an adapter that never yields), ends with verdict ``error``.
The same scenario, seed and client give the same history, byte for byte: ``digest``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import greenlet

from broker_sim.drivers.virtual import START, World, WorldDeadlock
from broker_sim.drivers.world_links import NODE_PORT
from client import Queue
from scenarios.checker import OPERATORS, evaluate, figures, lost_ids, message_id
from scenarios.model import Scenario, parse_condition

BACKENDS = ("virtual", "live", "local", "docker")
WATCH_EVERY = 0.05  # virtual seconds between two looks of the conditional-fault watcher
SETTLE_QUIET = 30.0  # a consumer stops once publishers are done and nothing happened for this
DEFAULT_WALL_TIMEOUT = 120.0


@dataclass
class Result:
    scenario: str
    family: str
    seed: int
    client: str
    backend: str
    verdict: str  # pass | fail | error
    figures: dict = field(default_factory=dict)
    misses: list = field(default_factory=list)
    error: str | None = None
    events: list = field(default_factory=list)
    escaped: list = field(default_factory=list)  # tracebacks of exceptions that left a role
    lost: list = field(default_factory=list)
    digest: str = ""
    wall_seconds: float = 0.0
    description: str = ""
    nodes: int = 3
    sources: tuple = ()  # user scenario sources the replay needs (--scenarios)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def replay(self) -> str:
        client = "" if self.client == "bundled" else f" --client {self.client}"
        backend = "" if self.backend == "virtual" else f" --backend {self.backend}"
        sources = "".join(f" --scenarios {source}" for source in self.sources)
        return (
            f"warren replay --scenario {self.scenario} --seed {self.seed}{client}{backend}{sources}"
        )


class Env:
    """What an adapter's role sees (see scenarios.adapters): URLs, queue, clock, history.

    A backend gives it the history's event list, the bundled client's runtime, the URL of
    each node, its clock and its sleep (virtual in a world, real on the live backend)."""

    def __init__(self, scenario: Scenario, events: list, runtime, url_of, clock, sleep) -> None:
        self.scenario = scenario
        self.events = events
        self.nodes = scenario.setup.nodes
        self.runtime = runtime
        self._url_of, self._clock, self._sleep = url_of, clock, sleep
        setup = scenario.setup
        arguments = dict(setup.queue_arguments)
        if setup.queue_type == "quorum":
            arguments["x-queue-type"] = "quorum"
        self.queue = Queue(setup.queue, routing_key=setup.queue, queue_arguments=arguments)
        self.publishers_left = {p.name for p in scenario.publishers}
        if scenario.probe is not None:  # a probe may publish: consumers wait for it too
            self.publishers_left.add("probe")
        self._seen = 0
        self.counts = dict.fromkeys(("published", "confirmed", "delivered", "acked"), 0)
        self.counts["reconnects"] = 0
        self._sent: set = set()
        self._delivered: set = set()
        self._processed: set = set()
        self._last_progress = 0.0  # the last delivery, fault or reconnect
        # a repair still to come may bring deliveries back: a quiet run waits for it
        self._last_timed_fault = max((f.at for f in scenario.faults if f.at is not None), default=0)
        self.wall_expired = False  # the runner's wall-clock limit struck
        self.ports = {}  # port -> node index, for node_index
        # faults due up to this time have taken effect: at once in a world; on real nodes
        # the real-time schedule moves it after each fault call returns (a CLI call: ~1 s)
        self.faults_done_at = float("inf")
        self.queue_ready = False  # the setup declared the work queue (declare_work_queue)
        # when roles are told to wind down (out_of_time); a real-time backend moves it
        # earlier so that they are done before it stops waiting for them
        self.stop_at = scenario.duration - 1

    # -- the adapter's surface -----------------------------------------------------------------

    def urls(self, nodes: Iterable[int]) -> str:
        return ";".join(self._url_of(i) for i in nodes)

    def node_index(self, port: int) -> int:
        return self.ports.get(port, port - NODE_PORT)

    def clock(self) -> float:
        return self._clock()

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def wait_for_queue(self, timeout: float = 30.0) -> None:
        """Until the setup has declared the work queue on its leader node (bounded: a
        setup that failed is reported as escaped, and the roles go on)."""
        deadline = self.clock() + timeout
        while not self.queue_ready and self.clock() < deadline:
            self.sleep(0.01)

    def wait_for_faults(self, at: float, timeout: float = 120.0) -> None:
        """Until the faults due at ``at`` have taken effect (bounded by ``timeout``), so
        that a probe acting after them finds them in place on a real cluster too."""
        deadline = self.clock() + timeout
        while self.faults_done_at < at and self.clock() < deadline:
            self.sleep(0.05)

    def record(self, kind: str, **details) -> None:
        self.runtime.record(kind, **details)

    def message_id(self, spec, n: int) -> str:
        return f"{spec.name}-{n}"

    def processed(self, message_id) -> None:
        """The consumer finished its work on ``message_id`` (call it before the ack)."""
        self.runtime.record("processed", id=message_id)

    def settled(self) -> bool:
        """True once consumers may stop: the publishers are done and every sent message was
        delivered (or nothing came for SETTLE_QUIET s since the last delivery, fault or
        reconnect, so a client that recovers late still gets to drain, and no timed fault
        is still to come: a resume gives back what the hung node held), or time is up."""
        self.scan()
        if self.out_of_time():
            return True
        if self.publishers_left:
            return False
        if self.drained():
            return True
        quiet = self.clock() - self._last_progress > SETTLE_QUIET
        return quiet and self.clock() > self._last_timed_fault

    def out_of_time(self) -> bool:
        """The scenario's duration is (all but) over: every role should wind down."""
        return self.clock() >= self.stop_at

    def drained(self) -> bool:
        """The publishers are done and every sent message was delivered (processed, where the
        consumer reports its work): nothing is left
        that a fault still to come could change (a quiet run is settled, not drained)."""
        self.scan()
        done = self._processed or self._delivered  # work, where the consumer reports it
        return not self.publishers_left and self._sent <= done

    # -- the runner's side -----------------------------------------------------------------------

    def scan(self) -> None:
        """Fold the history's new events into the counters conditions and settling use."""
        events = self.events
        for t, kind, details in events[self._seen :]:
            if kind == "publish_invoke":
                self.counts["published"] += 1
            elif kind == "publish_ok":
                self._sent.add(message_id(details))
                self.counts["confirmed"] += bool(details.get("confirmed"))
            elif kind == "deliver":
                self._delivered.add(message_id(details))
                self.counts["delivered"] += 1
                self._last_progress = t
            elif kind == "processed":
                self._processed.add(message_id(details))
                self._last_progress = t
            elif kind in ("ack", "reject", "requeue"):
                self.counts["acked"] += 1
            elif kind == "recovery_succeeded":
                self.counts["reconnects"] += 1
                self._last_progress = t
            elif kind == "fault":  # a repair may bring the deliveries back: wait again
                self._last_progress = t
        self._seen = len(events)

    def counter(self, name: str) -> int:
        if name == "unacked":
            return self.counts["delivered"] - self.counts["acked"]
        return self.counts[name]


def _fault_action(world: World, fault):
    """What World.at schedules for ``fault``: a name from the world's vocabulary, or a
    callable for the alarm faults (the node's resource alarm, cluster-wide)."""
    if fault.action in ("alarm", "clear_alarm"):
        node = world.cluster.node(fault.args[0])
        active = fault.action == "alarm"

        def alarm() -> None:
            node.set_memory_alarm(active)

        alarm.__name__ = f"{fault.action} {fault.args[0]}"
        return alarm, ()
    return fault.action, fault.args


def watch(env: Env, pending: list, fire) -> None:
    """Fire conditional faults (``fire(fault)``) when their condition first holds."""
    while pending and (env.publishers_left or not env.settled()):
        env.scan()
        for fault in list(pending):
            counter, op, limit = parse_condition(fault.when)
            if OPERATORS[op](env.counter(counter), limit):
                pending.remove(fault)
                fire(fault)
        env.sleep(WATCH_EVERY)


def guarded(env: Env, role: str, fn, *args, escaped: list, done=None):
    def body() -> None:
        try:
            fn(env, *args)
        except (greenlet.GreenletExit, _WallTimeout):
            env.wall_expired = True
            raise
        except BaseException as exc:  # the assertion: an exception left the client code
            env.record("escaped", role=role, error=repr(exc)[:200])
            escaped.append(f"{role}: {traceback.format_exc()}")
        finally:
            if done is not None:
                done.discard(role)

    return body


def run_one(
    scenario: Scenario,
    seed: int,
    adapter,
    backend: str = "virtual",
    wall_timeout: float = DEFAULT_WALL_TIMEOUT,
) -> Result:
    """One scenario, one seed: its history, figures and verdict."""
    supported = getattr(adapter, "backends", None)
    if supported and backend not in supported:
        return make_result(
            scenario, seed, adapter, backend, [], [], time.monotonic(),
            f"client {adapter.name!r} runs on the {' or '.join(supported)} backend, not "
            f"{backend!r} (warren run --backend {supported[0]})",
        )  # fmt: skip
    if backend == "live":
        from scenarios.backends.live import run_live

        return run_live(scenario, seed, adapter, wall_timeout)
    if backend in ("local", "docker"):
        from scenarios.backends.local_run import run_real

        return run_real(scenario, seed, adapter, wall_timeout, backend)
    if backend not in BACKENDS:
        raise ValueError(
            f"backend {backend!r} is not available yet (backends: {', '.join(BACKENDS)})"
        )
    started = time.monotonic()
    setup = scenario.setup
    world = World(
        seed,
        nodes=setup.nodes,
        election_timeout=setup.election_timeout,
        net_ticktime=setup.net_ticktime,
    )
    world.replay_hint = f"warren replay --scenario {scenario.name} --seed {seed}"
    env = Env(
        scenario,
        world.events,
        world.runtime,
        world.url,
        lambda: world.clock.t - START,
        world.runtime.sleep,
    )
    escaped: list = []
    error = spawn_roles(env, scenario, adapter, escaped, world.spawn)
    if error is not None:
        return make_result(
            scenario, seed, adapter, backend, world.events, escaped, started, error, world.digest()
        )
    conditional = [f for f in scenario.faults if f.when is not None]
    for fault in scenario.faults:
        if fault.at is not None:
            action, args = _fault_action(world, fault)
            world.at(fault.at, action, *args, **fault.kwargs)
    if conditional:

        def fire(fault) -> None:
            action, args = _fault_action(world, fault)
            world.at(0, action, *args, **fault.kwargs)

        world.spawn("faults", lambda: watch(env, conditional, fire))
    try:
        with _wall_limit(wall_timeout), instrumented(adapter, world):
            world.run(until=scenario.duration)
    except WorldDeadlock as exc:
        error = str(exc)
    except _WallTimeout:
        env.wall_expired = True
    except Exception as exc:  # a fault that cannot apply, a world that cannot finish
        error = f"{type(exc).__name__}: {exc}"
    if env.wall_expired:
        error = f"the run took over {wall_timeout:g} s of real time (an adapter that never yields?)"
    return make_result(
        scenario, seed, adapter, backend, world.events, escaped, started, error, world.digest()
    )


def instrumented(adapter, target):
    """Record the history of the client libraries the adapter names in ``instruments``
    (``scenarios.instrument``): for adapters over kombu or pika that record nothing."""
    libraries = tuple(getattr(adapter, "instruments", ()))
    if not libraries:
        return contextlib.nullcontext()
    from scenarios.instrument import recording

    return recording(target, libraries)


def declare_work_queue(env: Env) -> None:
    """The setup role: the bundled client declares the work queue through the scenario's
    ``leader`` node, before the roles start, so that its home (classic) or first leader
    (quorum) is the same on every backend and every run."""
    from client import Connection

    try:
        conn = Connection(env.urls([env.scenario.setup.leader]), runtime=env.runtime)
        with conn:
            env.queue(conn.default_channel).declare()
    finally:
        env.queue_ready = True


def _after_setup(env: Env, body):
    def run() -> None:
        env.wait_for_queue()
        body()

    return run


def spawn_roles(env: Env, scenario: Scenario, adapter, escaped: list, spawn) -> str | None:
    """Start every role of ``scenario`` with ``spawn(name, body)``, once the setup role has
    declared the work queue; an error text if the adapter cannot play one."""
    if scenario.publishers or scenario.consumers:
        spawn("setup", guarded(env, "setup", declare_work_queue, escaped=escaped))
    else:
        env.queue_ready = True
    for spec in scenario.publishers:
        body = guarded(
            env, spec.name, adapter.publisher, spec, escaped=escaped, done=env.publishers_left
        )
        spawn(spec.name, _after_setup(env, body))
    for spec in scenario.consumers:
        body = guarded(env, spec.name, adapter.consumer, spec, escaped=escaped)
        spawn(spec.name, _after_setup(env, body))
    if scenario.probe is not None:
        probe = getattr(adapter, "probe", None)
        if probe is None:
            return f"client {getattr(adapter, 'name', '?')!r} has no probe(): cannot run this check"
        spawn(
            "probe",
            guarded(env, "probe", probe, scenario.probe, escaped=escaped, done=env.publishers_left),
        )
    return None


def make_result(
    scenario, seed, adapter, backend, events, escaped, started, error=None, digest=""
) -> Result:
    events = list(events)
    values = figures(events)
    misses = [] if error else evaluate(values, scenario.expectations)
    verdict = "error" if error else ("fail" if misses else "pass")
    return Result(
        scenario=scenario.name,
        family=scenario.family,
        seed=seed,
        client=getattr(adapter, "name", "custom"),
        backend=backend,
        verdict=verdict,
        figures=values,
        misses=misses,
        error=error,
        events=events,
        escaped=escaped,
        lost=lost_ids(events)[:20],
        digest=digest,
        wall_seconds=time.monotonic() - started,
        description=scenario.description,
        nodes=scenario.setup.nodes,
    )


class _WallTimeout(BaseException):
    """The run's wall-clock limit: a BaseException (as KeyboardInterrupt), so the client
    code's ``except Exception:`` retry loops cannot swallow it."""


class _wall_limit:  # noqa: N801 (a context manager)
    """SIGALRM after ``seconds`` of real time, when on the main thread (where worlds run)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = threading.current_thread() is threading.main_thread() and seconds > 0

    def __enter__(self):
        if self.armed:
            self.previous = signal.signal(signal.SIGALRM, self._expired)
            # and again every second, should a bare ``except:`` in client code swallow one
            signal.setitimer(signal.ITIMER_REAL, self.seconds, 1.0)
        return self

    @staticmethod
    def _expired(signum, frame):
        raise _WallTimeout()

    def __exit__(self, *exc) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


# -- many runs ------------------------------------------------------------------------------


def _job(args) -> Result:
    name, seed, client, backend, extra, wall_timeout = args
    from scenarios import adapters, catalog

    scenario = catalog.find(name, extra)
    try:
        adapter = adapters.load(client)
    except adapters.AdapterError as exc:  # the report says what happened to this run
        return Result(name, scenario.family, seed, client, backend, "error", error=str(exc))
    result = run_one(scenario, seed, adapter, backend, wall_timeout)
    result.client, result.sources = client, extra
    return result


def run_many(
    scenarios: list[Scenario],
    seeds: list[int],
    client: str = "bundled",
    backend: str = "virtual",
    jobs: int = 1,
    extra: tuple[str, ...] = (),
    wall_timeout: float = DEFAULT_WALL_TIMEOUT,
    shard: tuple[int, int] = (1, 1),
) -> Iterator[Result]:
    """Every scenario with every seed (or the ``shard`` K/N of them: scenarios.shard), in
    ``jobs`` processes; results in completion order when parallel, in order otherwise.
    ``extra``: user scenario sources (module or TOML)."""
    from scenarios.shard import deal

    work = deal(
        [(s.name, seed, client, backend, extra, wall_timeout) for s in scenarios for seed in seeds],
        shard,
    )
    if jobs <= 1:
        for item in work:
            yield _job(item)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_job, work)
