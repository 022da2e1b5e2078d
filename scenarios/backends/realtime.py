"""One scenario in real time against a cluster reached over real TCP: the part the live
backend (simulated nodes), the local backend (rabbitmq-server processes) and the docker
backend (containers) share.

A *target* is the cluster as this runner sees it:

- ``node_ports``: the port a client dials for each node (the node, or its proxy);
- ``url(i)``: the AMQP URL of node ``i`` (vhost included);
- ``vhost``: the run's vhost (``/`` on the live backend, a fresh one on real clusters);
- ``apply(fault)``: one fault of the vocabulary (DESIGN section 3), or ``ValueError``
  naming why it cannot apply on this backend.

Roles run as threads; timed faults are applied by a scheduler thread at their real times
(seconds from the start), conditional ones by a watcher thread polling the history.
``isolate`` / ``rejoin`` (a role's cable) go through per-role proxies
(:mod:`scenarios.backends.isolation`), set up only for scenarios that use them. Histories
are not deterministic (no digest); the bundled client records its events through a runtime
that writes into the run's history.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time

from broker_sim.drivers.live import LOOPBACK
from broker_sim.urls import amqp_url
from client.runtime import RealRuntime
from scenarios.backends.isolation import RoleLinks
from scenarios.runner import Env, guarded, instrumented, make_result, spawn_roles, watch

FAULT_TIMEOUT = 300.0  # a fault call (a CLI call, a relaunch) that takes longer is abandoned
ROLE_FAULTS = ("isolate", "rejoin")  # through per-role proxies (scenarios.backends.isolation)
#: real seconds a run may go on after its last timed fault and its publishers' nominal
#: end: a client still busy then is taken as hung (a virtual run has its full duration)
LIVE_GRACE = 45.0


class LiveHistory(RealRuntime):
    """The bundled client's runtime on a real-time backend: real time and sockets, events
    into the run's history (seconds from the start, the recording thread as ``actor``)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.events: list = []
        self._lock = threading.Lock()

    def record(self, kind: str, **details) -> None:
        details["actor"] = threading.current_thread().name
        with self._lock:
            self.events.append((time.monotonic() - self.started, kind, details))


def run_realtime(scenario, seed: int, adapter, target, backend: str, wall_timeout: float):
    """Play ``scenario`` against ``target``; the result names ``backend``."""
    started = time.monotonic()
    history = LiveHistory(started)
    with _role_links(scenario, target, seed) as links:

        def url_of(i: int) -> str:
            port = links.port_for(i) if links is not None else None
            return target.url(i) if port is None else amqp_url(LOOPBACK, port, vhost=target.vhost)

        clock = lambda: time.monotonic() - started  # noqa: E731
        env = Env(scenario, history.events, history, url_of, clock, time.sleep)
        env.ports = {port: i for i, port in enumerate(target.node_ports)}
        if links is not None:
            env.ports.update({port: i for (_, i), port in links.ports.items()})
        escaped: list = []
        threads: list[threading.Thread] = []

        def spawn(name, body) -> None:
            threads.append(threading.Thread(target=body, name=name, daemon=True))

        error = spawn_roles(env, scenario, adapter, escaped, spawn)
        if error is None:
            error = _play(scenario, env, adapter, target, links, history, threads, escaped,
                          spawn, started, wall_timeout)  # fmt: skip
    return make_result(scenario, seed, adapter, backend, history.events, escaped, started, error)


def _play(scenario, env, adapter, target, links, history, threads, escaped, spawn, started,
          wall_timeout) -> str | None:  # fmt: skip
    fault_errors: list[str] = []

    def fire(fault) -> None:
        history.record("fault", action=fault.describe().rsplit(" at ", 1)[0])
        try:
            if fault.action in ROLE_FAULTS and links is not None:
                getattr(links, fault.action)(*fault.args)
            else:
                target.apply(fault)
        except (ValueError, KeyError, RuntimeError) as exc:
            fault_errors.append(f"{fault.describe()}: {exc}")

    timed = sorted((f for f in scenario.faults if f.at is not None), key=lambda f: f.at)
    conditional = [f for f in scenario.faults if f.when is not None]
    env.faults_done_at = float("-inf") if timed else float("inf")  # before any role starts
    spawn("faults", guarded(env, "faults", schedule, timed, fire, escaped=escaped))
    if conditional:
        spawn("watcher", lambda: watch(env, conditional, fire))
    limit = min(scenario.duration, wall_timeout, busy_until(scenario) + LIVE_GRACE)
    # roles hear out_of_time() in time to stop before the limit: an adapter that needs
    # longer than a second to wind down (a worker process's shutdown) says so
    env.stop_at = min(env.stop_at, limit - getattr(adapter, "wind_down_seconds", 1.0))
    with instrumented(adapter, history):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, started + limit - time.monotonic()))
    helpers = ("faults", "watcher")
    stuck = [t.name for t in threads if t.is_alive() and t.name not in helpers]
    if fault_errors:
        return "; ".join(fault_errors)
    if stuck:
        return f"roles {stuck} still running after {limit:g} s (hung in the client?)"
    return None


@contextlib.contextmanager
def _role_links(scenario, target, seed: int):
    """Per-role proxies when the scenario isolates a role, else None."""
    if not any(f.action in ROLE_FAULTS for f in scenario.faults):
        yield None
        return
    roles = [spec.name for spec in (*scenario.publishers, *scenario.consumers)]
    links = RoleLinks(roles, list(target.node_ports), seed)
    try:
        yield links
    finally:
        links.close()


TOXIPROXY_FAULTS = ("add_toxic", "remove_toxic", "down", "up")


def toxiproxy_request(action: str, args: tuple, kwargs: dict) -> tuple[str, str, dict | None]:
    """A Toxiproxy fault as its HTTP request (method, path, JSON body): ``add_toxic PROXY
    TYPE`` (downstream, toxicity 1, the kwargs as attributes), ``remove_toxic PROXY NAME``,
    ``down`` / ``up PROXY`` (Toxiproxy's ``enabled``)."""
    proxy = args[0]
    if action == "add_toxic":
        body = {"type": args[1], "stream": "downstream", "toxicity": 1.0, "attributes": kwargs}
        return "POST", f"/proxies/{proxy}/toxics", body
    if action == "remove_toxic":
        return "DELETE", f"/proxies/{proxy}/toxics/{args[1]}", None
    return "POST", f"/proxies/{proxy}", {"enabled": action == "up"}


def busy_until(scenario) -> float:
    faults = [f.at for f in scenario.faults if f.at is not None]
    publishing = [p.messages * p.interval for p in scenario.publishers]
    return max([0.0, *faults, *publishing])


def schedule(env: Env, timed: list, fire) -> None:
    """Apply timed faults at their times; stop early only once every sent message was
    delivered. A run that merely went quiet (a hung client) still gets its repairs (resume,
    start, remove_toxic) on time, so a client is never blamed for a fault left in place.

    Faults due at the same moment are applied together, one thread each: on real nodes a
    ``stop`` (rabbitmqctl) takes about a second, so three stops at 1.0 s applied in turn
    would leave the last node up until 3 s, where the simulated cluster stops all three at
    once."""
    try:
        for at, group in itertools.groupby(timed, key=lambda f: f.at):
            while env.clock() < at:
                if env.drained():
                    return
                time.sleep(min(0.05, max(0.0, at - env.clock())))
            _fire_together(list(group), fire)
            env.faults_done_at = at
    finally:
        env.faults_done_at = float("inf")


def _fire_together(faults: list, fire) -> None:
    if len(faults) == 1:
        fire(faults[0])
        return
    threads = [threading.Thread(target=fire, args=(f,), daemon=True) for f in faults]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=FAULT_TIMEOUT)
