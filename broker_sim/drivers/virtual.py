"""The virtual-time driver: one deterministic world, a virtual clock, seeded scheduling.

Theory of operation. A :class:`World` owns a :class:`~broker_sim.cluster.Cluster` on a
virtual clock and a set of *actors*: ordinary blocking Python functions (a publisher loop,
a consumer using the bundled client), each a greenlet on the world's one thread. The world
switches to one actor and gets control back when that actor blocks (a receive with a
timeout, a sleep) or finishes; a switch costs about a microsecond. Which ready actor runs
next is drawn from the world's seeded RNG; when none is ready, the clock jumps to the
earliest actor wake-up, scheduled fault, cluster timer or link event. Client sockets are
in-memory links (``world_links``) carrying the same encoded frames as TCP, through the same
toxics, with a seeded network jitter. So the same seed gives the same run, and a 60 s
heartbeat costs nothing.

Faults are scheduled at virtual times by name (:data:`FAULTS`, ``world.at(3, "kill",
"node1")``) and recorded in the history with everything the client records (see
``client.runtime``); :meth:`World.digest` hashes that history.

Actors may be unmodified blocking code (kombu, py-amqp, pika): while :meth:`World.run`
runs, the virtual OS layer (:mod:`broker_sim.drivers.virtual_os`) gives actors the world's
clock for ``time``, its links for ``socket``, its descriptors for ``select`` and friends,
and its seed for ``random``; what it cannot make deterministic raises
:class:`WorldViolation`. Everything is restored when the run ends.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import greenlet

from broker_sim.cluster import FAULTS as CLUSTER_FAULTS
from broker_sim.cluster import Cluster, FaultError
from broker_sim.drivers import client_crash, virtual_os
from broker_sim.drivers.virtual_os import scope, vasyncio
from broker_sim.drivers.virtual_os.scope import WorldViolation
from broker_sim.drivers.world_links import (
    HOST,
    NODE_PORT,
    WorldProxies,
    WorldTransport,
    refused,
)
from broker_sim.toxiproxy.api import ToxiproxyAPI

START = 1_700_000_000.0


def _next(t: float) -> float:
    """The next representable clock value after ``t``."""
    return math.nextafter(t, math.inf)


__all__ = ["START", "World", "WorldViolation", "WorldDeadlock", "ActorFailed", "FAULTS"]


class WorldDeadlock(RuntimeError):
    """Every actor waits for something that no timer or other actor will bring."""


class ActorFailed(RuntimeError):
    """An actor raised; the message carries its traceback and the seed."""


class VirtualClock:
    def __init__(self, start: float = START) -> None:
        self.t = self.start = start

    def __call__(self) -> float:
        return self.t


@dataclass
class Actor:
    name: str
    fn: Callable
    wake_at: float | None = None
    ready_when: Callable[[], bool] | None = None
    blocked_on: str = "start"
    done: bool = False
    error: str | None = None
    glet: greenlet.greenlet | None = None
    woken: bool = False  # set by a link when what the actor waits for has arrived
    daemon: bool = False  # a daemon thread an actor started: the run does not wait for it
    group: str | None = None  # the actor that started this thread (isolation, history)

    def ready(self, now: float) -> bool:
        if self.done:
            return False
        if self.woken:
            return True
        if self.ready_when is not None and self.ready_when():
            return True
        return self.wake_at is not None and self.wake_at <= now


class World:
    def __init__(
        self,
        seed: int,
        nodes: int = 3,
        election_timeout: float = 1.0,
        network_jitter: float = 0.002,
        threads: str = "green",
        net_ticktime: float = 60.0,
    ) -> None:
        if threads not in ("green", "forbid"):
            raise ValueError(f"threads must be 'green' or 'forbid', not {threads!r}")
        self.threads = threads  # what a thread started by an actor becomes (virtual_os.vthread)
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = VirtualClock()
        # the broker reads the clock on every frame: a C-level getter, not a Python call
        now = functools.partial(getattr, self.clock, "t")
        self.cluster = Cluster(
            nodes, now, self.rng, election_timeout=election_timeout, net_ticktime=net_ticktime
        )
        self.actors: list[Actor] = []
        self.crashed: list[Actor] = []  # kept alive: see broker_sim.drivers.client_crash
        self.events: list[tuple[float, str, dict]] = []  # (virtual s, kind, details)
        self._lines: list[str] = []  # events formatted so far (see history)
        self.links: dict = {}  # server connection -> WorldTransport
        self.busy: dict = {}  # links with events in flight or toxics (ordered: deterministic)
        self.isolated: set[str] = set()  # actors whose links are cut (see isolate)
        self.current: Actor | None = None  # the actor running now; None in the scheduler
        self.scheduled: list[tuple[float, int, Callable]] = []
        self.runtime = WorldRuntime(self)
        self.network_jitter = network_jitter  # broker->client delay drawn from the seed
        self.replay_hint = f"World(seed={seed})"  # how to re-run this world: set by workloads
        self.hosts: dict[str, str] = {}  # host name -> proxy name, for actors' DNS (virtual_os)
        self.proxies = WorldProxies(self)
        self.toxiproxy = ToxiproxyAPI(self.proxies, self.rng)
        self.proxies.install_nodes()

    # -- the history and its digest ----------------------------------------------------------

    def record(self, kind: str, **details) -> None:
        self.events.append((self.clock.t - START, kind, details))

    @property
    def history(self) -> list[str]:
        """One line per event, ``<virtual s> <kind> <key>=<repr> ...``: what the digest covers."""
        self._lines += self.format_events(self.events[len(self._lines) :])
        return self._lines

    @staticmethod
    def format_events(events) -> list[str]:
        lines = []
        for t, kind, details in events:
            items = " ".join(f"{k}={details[k]!r}" for k in sorted(details))
            lines.append(f"{t:12.6f} {kind} {items}".rstrip())
        return lines

    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.history).encode()).hexdigest()

    def url(self, node: int) -> str:
        return f"amqp://guest:guest@{HOST}:{NODE_PORT + node}//"

    # -- actors and faults -----------------------------------------------------------------------

    def spawn(
        self, name: str, fn: Callable, *args, daemon: bool = False, group: str | None = None
    ) -> Actor:
        actor = Actor(name, lambda: fn(*args), wake_at=self.clock(), daemon=daemon, group=group)
        self.actors.append(actor)
        return actor

    def at(self, delay: float, fault: str | Callable, /, *args, **kwargs) -> None:
        """Run a fault at virtual time now + ``delay``: a name from :data:`FAULTS` with its
        arguments (``world.at(3, "kill", "node1")``) or any callable. It is recorded in the
        history when it fires; a fault that cannot apply raises there, naming itself."""
        if isinstance(fault, str):
            if fault not in FAULTS:
                raise FaultError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")
            action, label = getattr(self, fault), fault
        else:
            action, label = fault, getattr(fault, "__name__", "action")
        if delay < 0:
            raise FaultError(f"fault {label!r} scheduled {delay} s in the past")
        when = self.clock() + delay
        text = " ".join([label, *(str(a) for a in args), *(f"{k}={v}" for k, v in kwargs.items())])

        def fire() -> None:
            self.record("fault", action=text)
            try:
                action(*args, **kwargs)
            except (FaultError, ToxiproxyError) as exc:
                raise FaultError(
                    f"fault {text!r} at t={self.clock() - START:.3f}s failed (seed "
                    f"{self.seed}): {exc}"
                ) from exc

        self.scheduled.append((when, len(self.scheduled), fire))
        self.scheduled.sort(key=lambda item: item[:2])

    # The fault vocabulary (DESIGN section 3) as the world applies it.
    def kill(self, node: str) -> None:
        self.cluster.kill(node)

    def stop(self, node: str) -> None:
        self.cluster.stop(node)

    def start(self, node: str) -> None:
        self.cluster.start(node)

    def restart(self, node: str) -> None:
        self.cluster.restart(node)

    def pause(self, node: str) -> None:
        self.cluster.pause(node)

    def resume(self, node: str) -> None:
        self.cluster.resume(node)

    def partition(self, groups) -> None:
        self.cluster.partition(groups)

    def heal(self) -> None:
        self.cluster.heal()

    def drop_heartbeats(self, node: str, dropped: bool = True) -> None:
        self.cluster.drop_heartbeats(node, dropped)

    def isolate(self, actor: str) -> None:
        """Pull the cable of ``actor``: nothing its links send or are sent arrives (no FIN, no
        RST) until :meth:`rejoin`; its new connections time out. Heartbeats notice it."""
        if actor not in {a.name for a in self.actors}:
            raise FaultError(f"isolate: no actor named {actor!r}")
        self.isolated.add(actor)

    def crash(self, actor: str) -> None:
        """The client process of ``actor`` dies (SIGKILL): see client_crash."""
        client_crash.crash(self, actor)

    def restart_client(self, actor: str) -> None:
        """A supervisor starts the crashed role ``actor`` again: see client_crash."""
        client_crash.restart_client(self, actor)

    def rejoin(self, actor: str) -> None:
        """Plug the cable back: what was sent meanwhile arrives now, as TCP retransmits it."""
        if actor not in self.isolated:
            raise FaultError(f"rejoin: actor {actor!r} is not isolated")
        self.isolated.discard(actor)
        for link in [link for link in self.links.values() if link.actor == actor]:
            link.rejoin(self.clock())

    def add_toxic(
        self,
        proxy: str,
        type: str,
        /,
        stream: str = "downstream",
        name: str | None = None,
        toxicity: float = 1.0,
        **attributes,
    ) -> dict:
        """Add a toxic through the world's Toxiproxy API (same validation, same names)."""
        body = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        if name:
            body["name"] = name
        return self.api("POST", f"/proxies/{proxy}/toxics", body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.api("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def down(self, proxy: str) -> None:
        """Toxiproxy's ``enabled: false``: links closed, new connections refused."""
        self.api("POST", f"/proxies/{proxy}", {"enabled": False})

    def up(self, proxy: str) -> None:
        self.api("POST", f"/proxies/{proxy}", {"enabled": True})

    def api(self, method: str, path: str, body: dict | None = None):
        """One request to the world's Toxiproxy API; an error raises with its status and body."""
        raw = json.dumps(body).encode() if body is not None else b""
        status, _headers, reply = self.toxiproxy.handle(method, path, {}, raw)
        if status >= 400:
            raise ToxiproxyError(status, reply.decode().strip(), f"{method} {path}")
        self.route()
        return json.loads(reply) if reply else None

    # -- running -----------------------------------------------------------------------------------

    def run(self, until: float = 3600.0, max_steps: int = 1_000_000) -> None:
        """Run until every actor (but daemon threads) is done or ``until`` virtual seconds
        have passed; the virtual OS layer is in force for the actors meanwhile."""
        end = self.clock() + until
        scope.enter(self)
        try:
            with virtual_os.VirtualOS(self):
                for _ in range(max_steps):
                    if self.finished() or self.clock.t >= end:
                        return
                    self._step(end)
            raise RuntimeError(f"world did not finish within {max_steps} steps (seed {self.seed})")
        finally:
            scope.leave(self)

    def finished(self) -> bool:
        """Every actor (but daemon threads) is done, and no crashed role waits for a
        scheduled fault that may restart it."""
        if not all(a.done or a.daemon for a in self.actors):
            return False
        return not (self.scheduled and client_crash.awaiting_restart(self))

    def _step(self, end: float) -> None:
        now = self.clock.t
        for link in list(self.busy):  # what is due now may wake a reader: it joins the draw
            t = link.next_time()
            if t is not None and t <= now:
                link.pump(now)
        ready = [a for a in self.actors if a.ready(now)]  # spawn order: deterministic
        if ready:
            self._run_actor(ready[0] if len(ready) == 1 else self.rng.choice(ready))
            return
        self.clock.t = max(now, min(self._next_time(now), end))
        while self.scheduled and self.scheduled[0][0] <= self.clock.t:
            self.scheduled.pop(0)[2]()
        self.cluster.tick()
        self.route()
        for link in list(self.busy):
            link.pump(self.clock.t)
        self.route()

    def _next_time(self, now: float) -> float:
        """The earliest actor wake-up, fault, cluster timer or link event: where time jumps."""
        times = [a.wake_at for a in self.actors if not a.done and a.wake_at is not None]
        if self.scheduled:
            times.append(self.scheduled[0][0])
        deadline = self.cluster.next_deadline()
        if deadline is not None:
            times.append(deadline)
        for link in self.busy:
            t = link.next_time()
            if t is not None:
                times.append(max(t, now))
        if not times:
            waiting = ", ".join(f"{a.name} in {a.blocked_on}" for a in self.actors if not a.done)
            raise WorldDeadlock(
                f"deadlock at t={now - START:.3f}s (seed {self.seed}): "
                f"{waiting} — nothing left to wake them"
            )
        return min(times)

    def _run_actor(self, actor: Actor) -> None:
        if actor.glet is None:
            actor.glet = greenlet.greenlet(lambda: self._actor_main(actor))
        actor.wake_at, actor.ready_when = None, None
        self.current = actor
        vasyncio.enter(actor)
        try:
            actor.glet.switch()
        finally:
            vasyncio.leave(actor)
            self.current = None
        if actor.error is not None:
            raise ActorFailed(
                f"actor {actor.name} failed (seed {self.seed}; replay with "
                f"{self.replay_hint}):\n{actor.error}"
            )

    def _actor_main(self, actor: Actor) -> None:
        try:
            actor.fn()
        except BaseException:
            actor.error = traceback.format_exc()
        actor.done = True

    def block(
        self, what: str, timeout: float | None, ready: Callable[[], bool] | None = None
    ) -> Actor:
        """Called from an actor: hand control back until ``ready()``, a link wakes the actor
        (``actor.woken``) or the timeout."""
        actor = self.current
        if actor is None or greenlet.getcurrent() is not actor.glet:
            raise WorldViolation(f"{what} outside an actor of the world (seed {self.seed})")
        actor.blocked_on = what
        actor.wake_at = None if timeout is None else self.deadline(timeout)
        actor.ready_when = ready
        actor.woken = False
        actor.glet.parent.switch()
        return actor

    def deadline(self, timeout: float) -> float:
        """The virtual time ``timeout`` seconds from now. A positive wait shorter than the
        clock's resolution (~0.24 us at START) still ends later than now: a client whose
        timer is due in 0.1 us must see time move, or it polls forever."""
        now = self.clock.t
        return now + timeout if timeout <= 0 else max(now + timeout, _next(now))

    def route(self) -> None:
        """Move what the nodes wrote into the downstream pipes of the client links."""
        now = self.clock.t
        for node in self.cluster.nodes.values():
            if not node.pending_output:
                continue
            for conn, data, action in node.take_output():
                link = self.links.get(conn)
                if link is not None:
                    link.from_node(data, action, now + self.rng.uniform(0, self.network_jitter))


class ToxiproxyError(RuntimeError):
    """The world's Toxiproxy API refused a request: Toxiproxy's status and body."""

    def __init__(self, status: int, body: str, request: str) -> None:
        super().__init__(f"{request}: HTTP {status} {body}")
        self.status, self.body = status, body


class WorldRuntime:
    """The bundled client's runtime inside a world (see client.runtime): virtual time,
    in-memory links, randomness and ids from the world's seed, history into the world's."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._node_names: dict[str, str] = {}  # "world:50000" -> "rabbit@node1"
        # the client reads the clock on every frame: a C-level getter, not a Python call
        self.monotonic = functools.partial(getattr, world.clock, "t")

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.world.block("sleep", seconds, None)
        return not (stop is not None and stop.is_set())

    def connect(self, host: str, port: int, timeout: float, ssl) -> WorldTransport:
        world = self.world
        actor = world.current.name if world.current else "-"
        proxy = world.proxies.proxy_at(port) if host == HOST else None
        if proxy is None:
            raise refused()
        if actor in world.isolated:  # the SYN is lost: the connect times out
            world.block("connect", timeout, None)
            raise TimeoutError(f"world: connect to {host}:{port} timed out ({actor} is isolated)")
        return WorldTransport(world, proxy, actor)

    def random(self) -> random.Random:
        return random.Random(self.world.rng.getrandbits(64))

    def new_id(self) -> str:
        return f"{self.world.rng.getrandbits(128):032x}"

    def record(self, kind: str, **details) -> None:
        world = self.world
        broker = details.get("broker")
        if broker is not None:  # name the node behind the address, as DESIGN section 5 asks
            details["node"] = self._node_names.get(broker) or self._node_name(broker)
        actor = world.current
        details["actor"] = (actor.group or actor.name) if actor is not None else "-"
        world.events.append((world.clock.t - START, kind, details))

    def _node_name(self, broker: str) -> str:
        host, _, port = broker.rpartition(":")
        proxy = self.world.proxies.lookup(host, int(port)) if port.isdigit() else None
        node = self.world.proxies.node_of(proxy) if proxy is not None else None
        name = node.name if node is not None else "-"
        self._node_names[broker] = name
        return name


#: the fault vocabulary (DESIGN section 3) World.at schedules by name: each is a World
#: method; the cluster's own faults plus the link faults only a driver can apply
FAULTS = (
    *CLUSTER_FAULTS,
    *("isolate", "rejoin", "crash", "restart_client"),
    *("add_toxic", "remove_toxic", "down", "up"),
)
