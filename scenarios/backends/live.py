"""The live backend: a scenario on :class:`~broker_sim.SimCluster` (real TCP on loopback,
real time), so any client library runs unmodified (kombu, pika, the user's own code).

Roles run as threads; timed faults are applied by a scheduler thread at their real times
(seconds from the start), conditional ones by a watcher thread polling the history; the
node faults go through ``SimCluster``, the Toxiproxy ones through the cluster's own
Toxiproxy API (no extra hop), the alarm through the node. ``isolate`` / ``rejoin`` (a
role's cable) go through per-role proxies (:mod:`scenarios.backends.isolation`), set up
only for scenarios that use them. Histories are not deterministic (no digest); the bundled
client records its events through a runtime that writes into the run's history.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

from broker_sim import SimCluster
from broker_sim.drivers.live import LOOPBACK
from broker_sim.urls import amqp_url
from client.runtime import RealRuntime
from scenarios.backends.isolation import RoleLinks
from scenarios.runner import Env, guarded, instrumented, make_result, spawn_roles, watch

ROLE_FAULTS = ("isolate", "rejoin")  # through per-role proxies (scenarios.backends.isolation)
#: real seconds a live run may go on after its last timed fault and its publishers' nominal
#: end: a client still busy then is taken as hung (a virtual run has its full duration)
LIVE_GRACE = 45.0
CLUSTER_CALLS = {
    "kill": "kill",
    "stop": "stop_node",
    "start": "start_node",
    "restart": "restart",
    "pause": "pause",
    "resume": "resume",
    "partition": "partition",
    "heal": "heal",
    "drop_heartbeats": "drop_heartbeats",
}


class LiveHistory(RealRuntime):
    """The bundled client's runtime on the live backend: real time and sockets, events into
    the run's history (seconds from the start, the recording thread as ``actor``)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.events: list = []
        self._lock = threading.Lock()

    def record(self, kind: str, **details) -> None:
        details["actor"] = threading.current_thread().name
        with self._lock:
            self.events.append((time.monotonic() - self.started, kind, details))


def apply_fault(cluster: SimCluster, fault, links: RoleLinks | None = None) -> None:
    """One fault of the vocabulary on the live cluster (raises ValueError if it cannot)."""
    action, args = fault.action, fault.args
    if action in ROLE_FAULTS and links is not None:
        getattr(links, action)(*args)
    elif action in CLUSTER_CALLS:
        getattr(cluster, CLUSTER_CALLS[action])(*args)
    elif action in ("alarm", "clear_alarm"):
        cluster.node(args[0]).set_memory_alarm(action == "alarm")
    elif action in ("add_toxic", "remove_toxic", "down", "up"):
        _toxiproxy(cluster, action, args, fault.kwargs)
    else:
        raise ValueError(f"fault {action!r} is not available on the live backend")


def _toxiproxy(cluster: SimCluster, action: str, args: tuple, kwargs: dict) -> None:
    proxy = args[0]
    if action == "add_toxic":
        body = {"type": args[1], "stream": "downstream", "toxicity": 1.0, "attributes": kwargs}
        request = ("POST", f"/proxies/{proxy}/toxics", body)
    elif action == "remove_toxic":
        request = ("DELETE", f"/proxies/{proxy}/toxics/{args[1]}", None)
    else:
        request = ("POST", f"/proxies/{proxy}", {"enabled": action == "up"})
    method, path, body = request
    raw = json.dumps(body).encode() if body is not None else b""
    status, _, reply = cluster.call(lambda: cluster.toxiproxy.api.handle(method, path, {}, raw))
    if status >= 400:
        raise ValueError(f"{method} {path}: HTTP {status} {reply.decode().strip()}")


def run_live(scenario, seed: int, adapter, wall_timeout: float = 300.0):
    started = time.monotonic()
    history = LiveHistory(started)
    setup = scenario.setup
    with (
        SimCluster(
            nodes=setup.nodes,
            seed=seed,
            election_timeout=setup.election_timeout,
            net_ticktime=setup.net_ticktime,
        ) as sim,
        _role_links(scenario, sim, seed) as links,
    ):

        def url_of(i: int) -> str:
            port = links.port_for(i) if links is not None else None
            return sim.urls[i] if port is None else amqp_url(LOOPBACK, port)

        clock = lambda: time.monotonic() - started  # noqa: E731
        env = Env(scenario, history.events, history, url_of, clock, time.sleep)
        env.ports = {node.port: i for i, node in enumerate(sim.nodes)}
        if links is not None:
            env.ports.update({port: i for (_, i), port in links.ports.items()})
        escaped: list = []
        threads: list[threading.Thread] = []

        def spawn(name, body) -> None:
            thread = threading.Thread(target=body, name=name, daemon=True)
            threads.append(thread)

        error = spawn_roles(env, scenario, adapter, escaped, spawn)
        if error is None:
            fault_errors: list[str] = []

            def fire(fault) -> None:
                history.record("fault", action=fault.describe().rsplit(" at ", 1)[0])
                try:
                    apply_fault(sim, fault, links)
                except (ValueError, KeyError) as exc:
                    fault_errors.append(f"{fault.describe()}: {exc}")

            timed = sorted((f for f in scenario.faults if f.at is not None), key=lambda f: f.at)
            conditional = [f for f in scenario.faults if f.when is not None]
            spawn("faults", guarded(env, "faults", _schedule, timed, fire, escaped=escaped))
            if conditional:
                spawn("watcher", lambda: watch(env, conditional, fire))
            limit = min(scenario.duration, wall_timeout, _busy_until(scenario) + LIVE_GRACE)
            with instrumented(adapter, history):
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(max(0.0, started + limit - time.monotonic()))
            helpers = ("faults", "watcher")
            stuck = [t.name for t in threads if t.is_alive() and t.name not in helpers]
            if fault_errors:
                error = "; ".join(fault_errors)
            elif stuck:
                error = f"roles {stuck} still running after {limit:g} s (hung in the client?)"
    return make_result(scenario, seed, adapter, "live", history.events, escaped, started, error)


@contextlib.contextmanager
def _role_links(scenario, sim: SimCluster, seed: int):
    """Per-role proxies when the scenario isolates a role, else None."""
    if not any(f.action in ROLE_FAULTS for f in scenario.faults):
        yield None
        return
    roles = [spec.name for spec in (*scenario.publishers, *scenario.consumers)]
    links = RoleLinks(roles, [node.port for node in sim.nodes], seed)
    try:
        yield links
    finally:
        links.close()


def _busy_until(scenario) -> float:
    faults = [f.at for f in scenario.faults if f.at is not None]
    publishing = [p.messages * p.interval for p in scenario.publishers]
    return max([0.0, *faults, *publishing])


def _schedule(env: Env, timed: list, fire) -> None:
    """Apply timed faults at their times; stop early only once every sent message was
    delivered. A run that merely went quiet (a hung client) still gets its repairs (resume,
    start, remove_toxic) on time, so a client is never blamed for a fault left in place."""
    for fault in timed:
        while env.clock() < fault.at:
            if env.drained():
                return
            time.sleep(min(0.05, max(0.0, fault.at - env.clock())))
        fire(fault)
