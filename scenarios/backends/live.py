"""The live backend: a scenario on :class:`~broker_sim.SimCluster` (real TCP on loopback,
real time), so any client library runs unmodified (kombu, pika, the user's own code).

Roles run as threads; timed faults are applied by a scheduler thread at their real times
(seconds from the start), conditional ones by a watcher thread polling the history; the
node faults go through ``SimCluster``, the Toxiproxy ones through the cluster's own
Toxiproxy API (no extra hop), the alarm through the node. ``isolate`` / ``rejoin`` (a
per-client cable) exist in the virtual world only: a scenario that uses them ends with
verdict ``error`` here, saying so. Histories are not deterministic (no digest); the bundled
client records its events through a runtime that writes into the run's history.
"""

from __future__ import annotations

import json
import threading
import time

from broker_sim import SimCluster
from client.runtime import RealRuntime
from scenarios.runner import Env, guarded, make_result, spawn_roles, watch

LIVE_ONLY_MISSING = ("isolate", "rejoin")
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


def apply_fault(cluster: SimCluster, fault) -> None:
    """One fault of the vocabulary on the live cluster (raises ValueError if it cannot)."""
    action, args = fault.action, fault.args
    if action in CLUSTER_CALLS:
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
    blocked = sorted({f.action for f in scenario.faults} & set(LIVE_ONLY_MISSING))
    history = LiveHistory(started)
    if blocked:
        return make_result(scenario, seed, adapter, "live", [], [], started,
                           f"faults {blocked} exist in the virtual world only")  # fmt: skip
    setup = scenario.setup
    with SimCluster(nodes=setup.nodes, seed=seed, election_timeout=setup.election_timeout) as sim:
        env = Env(
            scenario,
            history.events,
            history,
            lambda i: sim.urls[i],
            lambda: time.monotonic() - started,
            time.sleep,
        )
        env.ports = {node.port: i for i, node in enumerate(sim.nodes)}
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
                    apply_fault(sim, fault)
                except (ValueError, KeyError) as exc:
                    fault_errors.append(f"{fault.describe()}: {exc}")

            timed = sorted((f for f in scenario.faults if f.at is not None), key=lambda f: f.at)
            conditional = [f for f in scenario.faults if f.when is not None]
            spawn("faults", guarded(env, "faults", _schedule, timed, fire, escaped=escaped))
            if conditional:
                spawn("watcher", lambda: watch(env, conditional, fire))
            for thread in threads:
                thread.start()
            limit = min(scenario.duration, wall_timeout, _busy_until(scenario) + LIVE_GRACE)
            for thread in threads:
                thread.join(max(0.0, started + limit - time.monotonic()))
            helpers = ("faults", "watcher")
            stuck = [t.name for t in threads if t.is_alive() and t.name not in helpers]
            if fault_errors:
                error = "; ".join(fault_errors)
            elif stuck:
                error = f"roles {stuck} still running after {limit:g} s (hung in the client?)"
    return make_result(scenario, seed, adapter, "live", history.events, escaped, started, error)


def _busy_until(scenario) -> float:
    faults = [f.at for f in scenario.faults if f.at is not None]
    publishing = [p.messages * p.interval for p in scenario.publishers]
    return max([0.0, *faults, *publishing])


def _schedule(env: Env, timed: list, fire) -> None:
    """Apply timed faults at their times; stop early once the roles have settled."""
    for fault in timed:
        while env.clock() < fault.at:
            if not env.publishers_left and env.settled():
                return
            time.sleep(min(0.05, max(0.0, fault.at - env.clock())))
        fire(fault)
