"""The virtual-time driver: one deterministic world, a virtual clock, seeded scheduling.

Theory of operation. A :class:`World` owns a :class:`~broker_sim.cluster.Cluster` on a
virtual clock and a set of *actors*: ordinary blocking Python functions (a publisher loop,
a consumer using the bundled client) each running in its own thread, but only one at a time —
the world hands a baton to one actor and waits until that actor blocks (a receive with a
timeout, a sleep) or finishes. Which ready actor runs next is drawn from the world's seeded
RNG; when none is ready, the clock jumps to the earliest actor wake-up or cluster timer.
Client sockets are in-memory links carrying the same encoded frames as TCP. So the same
seed gives the same run, and a 60 s heartbeat costs nothing.

Calling the real ``time.sleep`` or opening a real socket from an actor would break
determinism: inside :meth:`World.run` both raise :class:`WorldViolation`.
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from broker_sim.cluster import Cluster

START = 1_700_000_000.0
_local = threading.local()


class WorldViolation(RuntimeError):
    """An actor used real time or a real socket inside the world."""


class WorldDeadlock(RuntimeError):
    """Every actor waits for something that no timer or other actor will bring."""


class ActorFailed(RuntimeError):
    """An actor raised; the message carries its traceback and the seed."""


class VirtualClock:
    def __init__(self, start: float = START) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@dataclass
class Actor:
    name: str
    fn: Callable
    go: threading.Event = field(default_factory=threading.Event)
    wake_at: float | None = None
    ready_when: Callable[[], bool] | None = None
    blocked_on: str = "start"
    done: bool = False
    error: str | None = None
    thread: threading.Thread | None = None

    def ready(self, now: float) -> bool:
        if self.done:
            return False
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
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = VirtualClock()
        self.cluster = Cluster(nodes, self.clock, self.rng, election_timeout=election_timeout)
        self.actors: list[Actor] = []
        self.history: list[str] = []
        self.links: dict = {}  # server connection -> WorldTransport
        self.ports = {50000 + i: node for i, node in enumerate(self.cluster.nodes.values())}
        self._back = threading.Event()
        self.scheduled: list[tuple[float, int, Callable]] = []
        self.runtime = WorldRuntime(self)
        self.network_jitter = network_jitter  # broker->client delay drawn from the seed

    # -- the history and its digest ----------------------------------------------------------

    def record(self, kind: str, **details) -> None:
        items = " ".join(f"{k}={details[k]!r}" for k in sorted(details))
        self.history.append(f"{self.clock() - START:12.6f} {kind} {items}".rstrip())

    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.history).encode()).hexdigest()

    def url(self, node: int) -> str:
        port = list(self.ports)[node]
        return f"amqp://guest:guest@world:{port}//"

    # -- actors and faults -----------------------------------------------------------------------

    def spawn(self, name: str, fn: Callable, *args) -> Actor:
        actor = Actor(name, lambda: fn(*args), wake_at=self.clock())
        self.actors.append(actor)
        return actor

    def at(self, delay: float, action: Callable[[], None], label: str) -> None:
        """Run ``action`` (a fault, say) at virtual time now + ``delay``."""
        when = self.clock() + delay

        def fire() -> None:
            self.record("fault", action=label)
            action()

        self.scheduled.append((when, len(self.scheduled), fire))
        self.scheduled.sort()

    # -- running -----------------------------------------------------------------------------------

    def run(self, until: float = 3600.0, max_steps: int = 1_000_000) -> None:
        """Run until every actor is done or ``until`` virtual seconds have passed."""
        end = self.clock() + until
        real_sleep, real_connect = time.sleep, socket.socket.connect
        time.sleep = _guard(real_sleep, "time.sleep")
        socket.socket.connect = _guard(real_connect, "socket.connect")
        try:
            for _ in range(max_steps):
                if all(a.done for a in self.actors) or self.clock() >= end:
                    return
                self._step(end)
            raise RuntimeError(f"world did not finish within {max_steps} steps (seed {self.seed})")
        finally:
            time.sleep, socket.socket.connect = real_sleep, real_connect

    def _step(self, end: float) -> None:
        now = self.clock()
        ready = sorted((a for a in self.actors if a.ready(now)), key=lambda a: a.name)
        if ready:
            self._run_actor(self.rng.choice(ready))
            return
        wakes = [a.wake_at for a in self.actors if not a.done and a.wake_at is not None]
        candidates = wakes + [t for t, _, _ in self.scheduled[:1]]
        deadline = self.cluster.next_deadline()
        if deadline is not None:
            candidates.append(deadline)
        # a chunk nobody is reading yet must not hold the clock back
        candidates += [
            link.pending[0][0]
            for link in self.links.values()
            if link.pending and link.pending[0][0] > now
        ]
        if not candidates:
            waiting = ", ".join(f"{a.name} in {a.blocked_on}" for a in self.actors if not a.done)
            raise WorldDeadlock(
                f"deadlock at t={now - START:.3f}s (seed {self.seed}): "
                f"{waiting} — nothing left to wake them"
            )
        self.clock.t = max(now, min(min(candidates), end))
        while self.scheduled and self.scheduled[0][0] <= self.clock.t:
            self.scheduled.pop(0)[2]()
        self.cluster.tick()
        self.route()

    def _run_actor(self, actor: Actor) -> None:
        if actor.thread is None:
            actor.thread = threading.Thread(
                target=self._actor_main, args=(actor,), daemon=True, name=f"world-{actor.name}"
            )
            actor.thread.start()
        actor.wake_at, actor.ready_when = None, None
        self._back.clear()
        actor.go.set()
        self._back.wait()
        if actor.error is not None:
            raise ActorFailed(
                f"actor {actor.name} failed (seed {self.seed}; replay with "
                f"`warren replay --seed {self.seed}`):\n{actor.error}"
            )

    def _actor_main(self, actor: Actor) -> None:
        actor.go.wait()
        _local.world, _local.actor = self, actor
        try:
            actor.fn()
        except BaseException:
            actor.error = traceback.format_exc()
        actor.done = True
        self._back.set()

    def block(self, what: str, timeout: float | None, ready: Callable[[], bool] | None) -> None:
        """Called from an actor: give the baton back until ``ready()`` or the timeout."""
        actor: Actor = _local.actor
        actor.blocked_on = what
        actor.wake_at = None if timeout is None else self.clock() + timeout
        actor.ready_when = ready
        actor.go.clear()
        self._back.set()
        actor.go.wait()

    def route(self) -> None:
        """Move what the nodes wrote into the links of the client side."""
        for node in self.cluster.nodes.values():
            for conn, data, action in node.take_output():
                link = self.links.get(conn)
                if link is None:
                    continue
                at = self.clock() + self.rng.uniform(0, self.network_jitter)
                at = max(at, link.pending[-1][0]) if link.pending else at  # keep the order
                link.pending.append((at, data, action))


def _guard(real, name: str):
    def guarded(*args, **kwargs):
        if getattr(_local, "world", None) is not None:
            raise WorldViolation(
                f"{name} called inside the world by actor "
                f"{_local.actor.name}: use the world's runtime instead "
                f"(it would break determinism)"
            )
        return real(*args, **kwargs)

    return guarded


class WorldTransport:
    """A client link into a node: the client's bytes go straight to the node."""

    def __init__(self, world: World, host: str, port: int) -> None:
        node = world.ports.get(port)
        if node is None or not node.running:
            raise ConnectionRefusedError(f"world: nothing listens on {host}:{port}")
        self.world, self.node = world, node
        self.conn = node.connect(f"actor:{_local.actor.name}")
        world.links[self.conn] = self
        self.inbox = bytearray()
        self.pending: list[tuple[float, bytes, str | None]] = []  # (due, data, close action)
        self.closed: str | None = None
        world.route()

    def _arrived(self) -> bool:
        """Move what is due into the inbox; True if there is something to return."""
        now = self.world.clock()
        while self.pending and self.pending[0][0] <= now:
            _, data, action = self.pending.pop(0)
            self.inbox += data
            if action is not None:
                self.closed = action
        return bool(self.inbox) or self.closed is not None

    def send(self, data: bytes, timeout: float = 10.0) -> None:
        self._arrived()  # a reset that has reached the client fails the next send, as EPIPE
        if self.closed == "reset":
            raise ConnectionResetError("world: connection reset by peer")
        if self.closed:
            raise BrokenPipeError("world: connection closed by the broker")
        self.node.receive(self.conn, data)
        self.world.route()

    def recv(self, timeout: float) -> bytes | None:
        if not self._arrived():
            self.world.block("recv", timeout, self._arrived)
        if self.inbox:
            data = bytes(self.inbox)
            self.inbox.clear()
            return data
        if self.closed == "reset":
            raise ConnectionResetError("world: connection reset by peer")
        return b"" if self.closed else None

    def close(self) -> None:
        if not self.closed:
            self.closed = "close"
            self.node.connection_lost(self.conn)
            self.world.route()

    abort = close


class WorldRuntime:
    """The bundled client's runtime inside a world (see client.runtime)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def monotonic(self) -> float:
        return self.world.clock()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.world.block("sleep", seconds, None)
        return not (stop is not None and stop.is_set())

    def connect(self, host: str, port: int, timeout: float, ssl):
        return WorldTransport(self.world, host, port)
