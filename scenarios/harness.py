"""A faultable cluster for a user's own test, the same on every backend: the object the
pytest plugin's ``warren`` fixture yields and the Hypothesis state machine drives.

    def test_my_worker(warren):                      # scenarios.pytest_plugin
        warren.spawn("worker", my_worker, warren.urls)   # ordinary blocking code
        warren.at(3, "kill", "node1")                 # the fault vocabulary, by name
        warren.run(until=60)                          # virtual or real seconds
        assert warren.figures()["lost"] == 0          # the checker's figures

On the **virtual** backend the roles are actors of a :class:`~broker_sim.drivers.virtual.World`
(unmodified kombu, pika and aio-pika run on its virtual OS layer), faults fire at virtual
times, and the run is a function of the seed: ``replay`` names the command that repeats it.
On the **live** backend the cluster is a :class:`~broker_sim.SimCluster` on loopback TCP, any
client connects by URL (also from other processes), roles run as daemon threads joined
within ``until`` real seconds, and timed faults fire from a timer thread. Both record the
history of kombu, pika and aio-pika calls (``scenarios.instrument``) and of the bundled
client, and the faults applied (``schedule``). On the **local** and **docker** backends the
cluster is the process's shared real RabbitMQ cluster (scenarios.backends.local_run: started
at the first test, stopped at exit), each test in a vhost of its own behind the nodes'
Toxiproxy proxies; roles and faults run as on the live backend, and the cluster is put back
whole after the test. Real runs do not replay exactly: the seed only names the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from broker_sim.drivers.world_links import HOST, NODE_PORT
from broker_sim.urls import amqp_url
from scenarios.checker import figures

BACKENDS = ("virtual", "live", "local", "docker")
REAL_BACKENDS = ("local", "docker")  # real RabbitMQ (scenarios.backends.local_run)
LIBRARIES = ("kombu", "pika", "aio_pika")


class HarnessError(ValueError):
    """Bad harness settings: the message names the setting and what is allowed."""


@dataclass(frozen=True)
class Settings:
    """What ``@pytest.mark.warren(...)`` (or fixture parameters) may set."""

    backend: str = "live"
    nodes: int = 3
    seed: int = 1
    users: dict = field(default_factory=dict)  # name -> password (all permissions on "/")
    vhosts: tuple = ()  # extra vhosts, each open to guest and the users
    election_timeout: float = 1.0
    net_ticktime: float = 60.0  # how long a hung node goes unnoticed by its peers

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise HarnessError(f"unknown backend {self.backend!r}: one of {', '.join(BACKENDS)}")
        if not isinstance(self.nodes, int) or isinstance(self.nodes, bool) or self.nodes < 1:
            raise HarnessError(f"nodes must be an integer >= 1, got {self.nodes!r}")
        if not isinstance(self.seed, int):
            raise HarnessError(f"seed must be an integer, got {self.seed!r}")


def open_harness(settings: Settings):
    """A started harness for ``settings`` (close it with ``close()``)."""
    kinds = {"virtual": VirtualHarness, "live": LiveHarness}
    harness = kinds.get(settings.backend, RealHarness)(settings)
    harness.setup_access()
    return harness


class _Harness:
    backend: str
    vhost = "/"  # the vhost the test's URLs name (a real cluster gives each test its own)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seed = settings.seed
        self.schedule: list[str] = []  # the faults, as "<t> <fault>" lines, for a failure

    # -- what a test uses --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """All nodes as a kombu failover URL (``;``-separated)."""
        return ";".join(self.urls)

    def amqp_url(self, node: int = 0, user="guest", password="guest", vhost=None) -> str:
        """One node's URL for another user or vhost (the marker's ``users`` / ``vhosts``);
        the test's own vhost unless told."""
        host, port = self._address(node)
        return amqp_url(host, port, user, password, self.vhost if vhost is None else vhost)

    def figures(self) -> dict:
        return figures(self.history)

    def setup_access(self) -> None:
        admin = self._admin()
        for vhost in self.settings.vhosts:
            admin.add_vhost(vhost)
            admin.set_permissions("guest", vhost)
        for user, password in self.settings.users.items():
            admin.add_user(user, password)
            for vhost in ("/", *self.settings.vhosts):
                admin.set_permissions(user, vhost)

    def _note(self, at: float, action, args, kwargs) -> None:
        label = action if isinstance(action, str) else getattr(action, "__name__", "step")
        text = " ".join([label, *map(str, args), *(f"{k}={v}" for k, v in kwargs.items())])
        self.schedule.append(f"{at:9.3f} {text}")


class VirtualHarness(_Harness):
    backend = "virtual"

    def __init__(self, settings: Settings) -> None:
        from broker_sim.drivers.virtual import START, World

        super().__init__(settings)
        self.world = World(
            settings.seed,
            settings.nodes,
            settings.election_timeout,
            net_ticktime=settings.net_ticktime,
        )
        self._start = START

    @property
    def urls(self) -> list[str]:
        return [self.world.url(i) for i in range(self.settings.nodes)]

    @property
    def history(self) -> list:
        return self.world.events

    @property
    def toxiproxy_url(self) -> str:
        raise HarnessError(
            "the virtual backend has no HTTP Toxiproxy API: use warren.fault('add_toxic', ...) "
            "or warren.world.api(method, path, body)"
        )

    def now(self) -> float:
        return self.world.clock.t - self._start

    def _admin(self):
        return next(iter(self.world.cluster.nodes.values()))

    def _address(self, node: int) -> tuple[str, int]:
        return HOST, NODE_PORT + node

    def spawn(self, name: str, fn: Callable, *args) -> None:
        self.world.spawn(name, fn, *args)

    def at(self, seconds: float, action, *args, **kwargs) -> None:
        """Apply fault ``action`` (a name) or call ``action`` (any callable) ``seconds`` from
        now, in virtual time."""
        self._note(self.now() + seconds, action, args, kwargs)
        self.world.at(seconds, action, *args, **kwargs)

    def fault(self, action: str, *args, **kwargs) -> None:
        """Apply a fault now (from the test, or from a role while the world runs)."""
        from broker_sim.drivers.virtual import FAULTS

        if action not in FAULTS:
            raise HarnessError(f"unknown fault {action!r}: one of {', '.join(FAULTS)}")
        self._note(self.now(), action, args, kwargs)
        self.world.record("fault", action=" ".join([action, *map(str, args)]))
        getattr(self.world, action)(*args, **kwargs)

    def sleep(self, seconds: float) -> None:
        """For roles: a virtual sleep (``time.sleep`` is virtual for actors too)."""
        self.world.runtime.sleep(seconds)

    def run(self, until: float = 60.0) -> None:
        from scenarios.instrument import recording

        with recording(self.world, LIBRARIES):
            self.world.run(until=until)

    def replay(self, nodeid: str) -> str:
        return f"pytest '{nodeid}' --warren-backend virtual --warren-seed {self.seed}"

    def close(self) -> None:
        self.world.actors.clear()


class LiveHarness(_Harness):
    backend = "live"

    def __init__(self, settings: Settings) -> None:
        from broker_sim import SimCluster
        from scenarios.backends.realtime import LiveHistory

        super().__init__(settings)
        self.started = time.monotonic()
        self.sim = SimCluster(
            nodes=settings.nodes,
            seed=settings.seed,
            election_timeout=settings.election_timeout,
            net_ticktime=settings.net_ticktime,
        ).start()
        self._history = LiveHistory(self.started)
        self._threads: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self._errors: list[str] = []

    @property
    def urls(self) -> list[str]:
        return list(self.sim.urls)

    @property
    def history(self) -> list:
        return self._history.events

    @property
    def toxiproxy_url(self) -> str:
        return self.sim.api_url

    def now(self) -> float:
        return time.monotonic() - self.started

    def _admin(self):
        return self.sim.nodes[0]

    def _address(self, node: int) -> tuple[str, int]:
        return self.sim.nodes[node].host, self.sim.nodes[node].port

    def spawn(self, name: str, fn: Callable, *args) -> None:
        self._threads.append(threading.Thread(target=fn, args=args, name=name, daemon=True))

    def at(self, seconds: float, action, *args, **kwargs) -> None:
        """Apply fault ``action`` (a name) or call ``action`` (any callable) ``seconds`` from
        now, from a timer thread."""
        timer = threading.Timer(seconds, self._apply, (action, args, kwargs))
        timer.daemon = True
        self._timers.append(timer)
        if self._threads and any(t.is_alive() for t in self._threads):
            timer.start()

    def fault(self, action: str, *args, **kwargs) -> None:
        self._apply(action, args, kwargs)

    def _apply(self, action, args, kwargs) -> None:
        from scenarios.backends.live import apply_fault
        from scenarios.model import Fault

        self._note(self.now(), action, args, kwargs)
        if callable(action):  # a step of the test (as World.at takes one)
            action(*args, **kwargs)
            return
        self._history.record("fault", action=" ".join([action, *map(str, args)]))
        try:
            apply_fault(self.sim, Fault(action, tuple(args), dict(kwargs), at=0.0))
        except (ValueError, KeyError) as exc:
            self._errors.append(f"{action} {args}: {exc}")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def run(self, until: float = 60.0) -> None:
        """Start the roles and the timed faults; join the roles within ``until`` s."""
        from scenarios.instrument import recording

        deadline = time.monotonic() + until
        with recording(self._history, LIBRARIES):
            for thread in self._threads:
                thread.start()
            for timer in self._timers:
                if not timer.is_alive() and not timer.finished.is_set():
                    timer.start()
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        if self._errors:
            raise HarnessError("; ".join(self._errors))

    def replay(self, nodeid: str) -> str:
        return f"pytest '{nodeid}' --warren-backend live --warren-seed {self.seed}"

    def close(self) -> None:
        """Stop the timers and the cluster; a role still running then is an error (a
        thread cannot be killed: the test must not leave one behind)."""
        for timer in self._timers:
            timer.cancel()
        self.sim.stop()
        for thread in self._threads:
            thread.join(5.0)
        left = [t.name for t in self._threads if t.is_alive()]
        if left:
            raise HarnessError(f"roles {left} still running after the test and its cluster ended")


class RealHarness(LiveHarness):
    """``local`` / ``docker``: a real cluster shared by the process's tests, a fresh vhost
    (and the marker's users and vhosts) per test, removed again at the end."""

    def __init__(self, settings: Settings) -> None:
        from scenarios.backends.local_run import shared_target
        from scenarios.backends.realtime import LiveHistory

        _Harness.__init__(self, settings)
        self.backend = settings.backend
        self.started = time.monotonic()
        self.target = shared_target(settings.nodes, int(settings.net_ticktime), settings.backend)
        self.target.reset()
        self.vhost = self.target.fresh_vhost(f"warren-test-{time.monotonic_ns()}")
        self._history = LiveHistory(self.started)
        self._threads, self._timers, self._errors = [], [], []
        self._made: list[tuple[str, str]] = []  # ("user" | "vhost", name) to remove after

    @property
    def urls(self) -> list[str]:
        return [self.target.url(i) for i in range(self.settings.nodes)]

    @property
    def toxiproxy_url(self) -> str:
        return self.target.toxiproxy_url

    def setup_access(self) -> None:
        for vhost in self.settings.vhosts:
            self.target.ctl("add_vhost", vhost)
            self._made.append(("vhost", vhost))
            self.target.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        for user, password in self.settings.users.items():
            self.target.ctl("add_user", user, password)
            self._made.append(("user", user))
            for vhost in (self.vhost, *self.settings.vhosts):
                self.target.ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")

    def _address(self, node: int) -> tuple[str, int]:
        return "127.0.0.1", self.target.node_ports[node]

    def _apply(self, action, args, kwargs) -> None:
        from scenarios.model import Fault

        self._note(self.now(), action, args, kwargs)
        if callable(action):
            action(*args, **kwargs)
            return
        self._history.record("fault", action=" ".join([action, *map(str, args)]))
        try:
            self.target.apply(Fault(action, tuple(args), dict(kwargs), at=0.0))
        except (ValueError, KeyError, RuntimeError) as exc:
            self._errors.append(f"{action} {args}: {exc}")

    def replay(self, nodeid: str) -> str:
        return f"pytest '{nodeid}' --warren-backend {self.backend} (real nodes: not exact)"

    def close(self) -> None:
        """Stop the timers, put the cluster back whole, remove the test's vhosts and users;
        the cluster itself stays for the next test (stopped at exit)."""
        for timer in self._timers:
            timer.cancel()
        for thread in self._threads:
            thread.join(5.0)
        self.target.reset()
        for kind, name in reversed(self._made):
            self.target.ctl(f"delete_{kind}", name)
        self.target.drop_vhost()
        left = [t.name for t in self._threads if t.is_alive()]
        if left:
            raise HarnessError(f"roles {left} still running after the test ended")
