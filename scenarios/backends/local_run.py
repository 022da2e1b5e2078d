"""The local backend (``warren run --backend local``): catalog scenarios against a real
cluster of Debian's ``rabbitmq-server`` processes on loopback.

Theory of operation. One :class:`LocalTarget` per process serves every run: starting a
3-node cluster takes ~15-25 s here, so it is started once, at the first run, and stopped at
exit (``atexit``, or :func:`close_shared`). Clients reach each node through a Warren
Toxiproxy server (one proxy per node, named ``node1``... as on the simulated cluster), so
the Toxiproxy faults apply unchanged. Each run gets a fresh vhost (its queues are its own)
and, before it, :meth:`LocalTarget.reset` undoes whatever the previous run left: a paused
node resumed, a killed one relaunched, a stopped app started, toxics removed, proxies
enabled, alarms cleared, and a node left outside the cluster after a partition (a hung
node seen down under ``pause_minority`` stays out, as RabbitMQ keeps it) restarted.

The fault vocabulary on real processes (measured: ../shared/notes/real-rabbitmq.md):

===========  =========================================================================
kill         SIGKILL the beam (clients: ECONNRESET); ``start`` relaunches it (~8 s)
stop         ``rabbitmqctl stop_app`` (clients: 320 CONNECTION_FORCED); ``start``:
             ``start_app``
restart      ``stop_app`` then ``start_app``
pause        SIGSTOP the beam (silence); ``resume``: SIGCONT
alarm        ``set_vm_memory_high_watermark`` ~0 (connection.blocked); ``clear_alarm``
toxics       Toxiproxy API of the node's proxy: ``add_toxic``, ``remove_toxic``,
             ``down``, ``up``
isolate      per-role proxies (scenarios.backends.isolation), as on the live backend
partition    iptables DROP between the nodes' network namespaces, and the Erlang links
             between the sides closed, so each side sees the other down at once as on the
             simulated cluster (pause_minority: the minority stops serving); ``heal``
             flushes the rules and the minority comes back (~5 s)
===========  =========================================================================

Partitions need each node in a network namespace of its own (scenarios.backends.netns),
hence root: as root the cluster always runs that way; otherwise on loopback, and a scenario
with a partition is reported as not supported, naming what is missing.
``drop_heartbeats`` (a real node cannot be told to stop heartbeating) and the client crash
faults are not available on real nodes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import threading
import time

from broker_sim.drivers.live import LOOPBACK
from broker_sim.drivers.proxy import ToxiproxyServer
from broker_sim.urls import amqp_url
from scenarios.backends import netns
from scenarios.backends.isolation import toxiproxy_api
from scenarios.backends.local import RealRabbitCluster
from scenarios.backends.realtime import TOXIPROXY_FAULTS, run_realtime, toxiproxy_request

UNAVAILABLE = {
    "drop_heartbeats": "a real RabbitMQ node cannot be made to stop sending heartbeats",
    "crash": "client crashes are virtual-backend faults",
    "restart_client": "client crashes are virtual-backend faults",
}
CONF = "cluster_partition_handling = pause_minority\n"  # as the simulated cluster models


def unsupported(scenario, backend: str = "local") -> str | None:
    """Why ``scenario`` cannot run on the ``backend`` real cluster, or None."""
    unavailable = UNAVAILABLE
    if backend == "docker":
        from scenarios.backends.docker_run import UNAVAILABLE as unavailable
    elif netns.available() is not None:
        unavailable = {**UNAVAILABLE, "partition": netns.available(), "heal": netns.available()}
    for fault in scenario.faults:
        if fault.action in unavailable:
            return f"{fault.action}: {unavailable[fault.action]}"
    return None


def node_index(name: str, count: int) -> int:
    """The index of node ``name`` (``node1``... as on the simulated cluster), or ValueError."""
    names = [f"node{i + 1}" for i in range(count)]
    if name not in names:
        raise ValueError(f"no node named {name!r} (nodes: {', '.join(names)})")
    return names.index(name)


def partitioned(nodes: list, partitions: dict) -> list:
    """The nodes to restart for a partition the cluster still reports with every node
    running: the ones that recorded it (``cluster_status``'s ``partitions`` is keyed by the
    node that saw the others go; its record clears when its app restarts), or all but the
    first when every node recorded one."""
    recorded = [n for n in nodes if n.name in partitions]
    return recorded if len(recorded) < len(nodes) else nodes[1:]


class LocalTarget:
    """A :class:`RealRabbitCluster` behind one proxy per node; :func:`run_realtime`'s target."""

    def __init__(
        self, nodes: int = 3, net_ticktime: int = 60, seed: int = 1, use_netns: bool | None = None
    ) -> None:
        self.workdir = tempfile.mkdtemp(prefix="warren-local-")
        if use_netns is None:  # as root: in namespaces, so that partitions are possible
            use_netns = netns.available() is None
        self.cluster = RealRabbitCluster(
            nodes, self.workdir, net_ticktime=net_ticktime, conf=CONF, netns=use_netns
        )
        self.partitioned = False
        self.nodes_count, self.net_ticktime = nodes, net_ticktime
        self.proxy = ToxiproxyServer(port=0, seed=seed)
        self.node_ports: list[int] = []
        self.state = ["up"] * nodes  # up | killed | stopped | paused
        self.alarmed: set[int] = set()
        self.starting: list[threading.Thread] = []
        self.vhost = "/"

    def start(self) -> LocalTarget:
        try:
            self.cluster.start()
            self.proxy.start_background()
            for i, node in enumerate(self.cluster.nodes):
                body = {"name": f"node{i + 1}", "listen": f"{LOOPBACK}:0",
                        "upstream": f"{node.host}:{node.port}"}  # fmt: skip
                answer = self._api("POST", "/proxies", body)
                self.node_ports.append(int(answer["listen"].rpartition(":")[2]))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        self.proxy.stop_background()
        self.cluster.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the target interface -----------------------------------------------------------------

    def url(self, i: int) -> str:
        return amqp_url(LOOPBACK, self.node_ports[i], vhost=self.vhost)

    def apply(self, fault) -> None:
        action, args = fault.action, fault.args
        if action in UNAVAILABLE:
            raise ValueError(f"not available on the local backend: {UNAVAILABLE[action]}")
        if action in TOXIPROXY_FAULTS:
            self._api(*toxiproxy_request(action, args, fault.kwargs))
            return
        if action == "partition":
            self.cluster.partition([[self._index(n) for n in group] for group in args[0]])
            self.partitioned = True
            return
        if action == "heal":
            self.cluster.heal()
            self.partitioned = False
            return
        i = self._index(args[0])
        node = self.cluster.nodes[i]
        if action == "kill":
            node.kill()
            self.state[i] = "killed"
        elif action == "stop":
            node.stop_app()
            self.state[i] = "stopped"
        elif action == "start":
            self._start_later(i)
        elif action == "restart":
            node.stop_app()
            node.start_app()
        elif action == "pause":
            node.pause()
            self.state[i] = "paused"
        elif action == "resume":
            node.resume()
            self.state[i] = "up"
        elif action in ("alarm", "clear_alarm"):
            node.set_memory_alarm(action == "alarm")
            (self.alarmed.add if action == "alarm" else self.alarmed.discard)(i)
        else:
            raise ValueError(f"fault {action!r} is not available on the local backend")

    def _start_later(self, i: int) -> None:
        """``start`` returns at once and the node boots meanwhile, as an operator's start:
        a relaunch takes ~8 s, and after a whole-cluster stop each ``start_app`` waits for
        its peers (RabbitMQ: the last node to stop must be among the first to start), so
        starting nodes one after another in the fault thread would deadlock the schedule."""
        thread = threading.Thread(target=self._start, args=(i,), daemon=True)
        self.starting.append(thread)
        thread.start()

    def _start(self, i: int) -> None:
        node = self.cluster.nodes[i]
        if self.state[i] == "killed":
            node.start()
        elif self.state[i] == "stopped":
            node.start_app(timeout=300)  # after a whole-cluster stop: waits for the peers
        elif self.state[i] == "paused":
            node.resume()
        self.state[i] = "up"

    def _index(self, name: str) -> int:
        return node_index(name, self.nodes_count)

    # -- between runs -------------------------------------------------------------------------

    def reset(self) -> None:
        """Every node up and in the cluster, no toxic, every proxy enabled, no alarm."""
        self._join_starting()
        if self.partitioned:
            self.cluster.heal()
            self.partitioned = False
        # every node down at once: each start_app waits for its peers' tables, so all start
        # together (one after another, the first would wait for the others in vain)
        for i in range(self.nodes_count):
            if self.state[i] != "up":
                self._start_later(i)
        self._join_starting()
        if any(state != "up" for state in self.state):
            raise RuntimeError(f"nodes did not come back: {self.state}")
        for i in sorted(self.alarmed):
            self.cluster.nodes[i].set_memory_alarm(False)
        self.alarmed.clear()
        for name, proxy in self._api("GET", "/proxies").items():
            for toxic in proxy.get("toxics", []):
                self._api("DELETE", f"/proxies/{name}/toxics/{toxic['name']}")
            if not proxy.get("enabled", True):
                self._api("POST", f"/proxies/{name}", {"enabled": True})
        self._rejoin_outsiders()

    def _join_starting(self, timeout: float = 300.0) -> None:
        """Wait for the node starts the schedule or the reset set going."""
        for thread in self.starting:
            thread.join(timeout=timeout)
        self.starting.clear()

    def _rejoin_outsiders(self, attempts: int = 3) -> None:
        """Restart the app of a node the others do not count as running (pause_minority
        leaves a resumed node outside until it restarts: docker.md's pitfall). A healed
        minority comes back by itself within seconds: it is given that time first. Whole
        means every app running *and* every node in the others' running list, twice a
        second apart: a healed minority restarts its app once more as it rejoins."""
        status: dict = {}
        for _ in range(attempts):
            self._wait_apps_running(timeout=30.0)
            outside, status = self._outsiders()
            if not outside:
                time.sleep(1.0)
                outside, status = self._outsiders()
                if not outside:
                    return
            for node in outside:
                self._restart_outsider(node)
        raise RuntimeError(f"the local cluster did not come back whole: {status}")

    @staticmethod
    def _restart_outsider(node) -> None:
        """stop_app and start_app; relaunched whole if that does not return: after a heal
        Erlang's ``global`` can hang (the node's log: "Global hang workaround: global state
        on ... seems broken"), and stop_app with it (seen 1 run in 3 of partition-minority)."""
        try:
            node.ctl("stop_app", timeout=60)
            node.start_app()
        except RuntimeError:
            node.kill()
            node.start()

    def _outsiders(self) -> tuple[list, dict]:
        """The nodes not running in the cluster (all of them but the first while the
        cluster reports a partition), and the cluster status that says so."""
        nodes = self.cluster.nodes
        apps = [self._app_running(n) for n in nodes]  # probed once: each is a rabbitmqctl
        admin = next((n for n, up in zip(nodes, apps, strict=True) if up), nodes[0])
        status = json.loads(admin.ctl("cluster_status", "--formatter", "json", timeout=90))
        running = set(status.get("running_nodes", []))
        outside = [n for n, up in zip(nodes, apps, strict=True) if not up or n.name not in running]
        return outside or partitioned(nodes, status.get("partitions") or {}), status

    def _wait_apps_running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._app_running(node) for node in self.cluster.nodes):
                return
            time.sleep(0.5)

    @staticmethod
    def _app_running(node) -> bool:
        try:
            return node.ctl("eval", "rabbit:is_running().", timeout=15).strip() == "true"
        except RuntimeError:
            return False

    def _admin_node(self):
        """The first node whose app runs (a paused minority refuses most commands)."""
        nodes = self.cluster.nodes
        return next((n for n in nodes if self._app_running(n)), nodes[0])

    @property
    def toxiproxy_url(self) -> str:
        return self.proxy.url

    def ctl(self, *args: str) -> str:
        """rabbitmqctl on the first node whose app runs (the admin of a user's test)."""
        return self._admin_node().ctl(*args)

    def fresh_vhost(self, name: str) -> str:
        node = self._admin_node()
        node.add_vhost(name)
        node.set_permissions("guest", name)
        self.vhost = name
        return name

    def drop_vhost(self) -> None:
        if self.vhost != "/":
            self._admin_node().delete_vhost(self.vhost)
        self.vhost = "/"

    def _api(self, method: str, path: str, body: dict | None = None):
        return toxiproxy_api(self.proxy.url, method, path, body)


_shared: dict[str, object] = {}  # backend -> this process's target, started at first use


def shared_target(nodes: int, net_ticktime: int, backend: str = "local"):
    """This process's cluster for ``backend``, started at first use (again if the node
    count or tick differ)."""
    target = _shared.get(backend)
    if target is not None and (target.nodes_count, target.net_ticktime) != (nodes, net_ticktime):
        close_shared(backend)
        target = None
    if target is None:
        # before starting: a SIGTERM while the nodes boot must still stop them (their own
        # sessions outlive this process otherwise)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # atexit runs on SIGTERM too
            with contextlib.suppress(ValueError):  # not the main thread: leave it
                signal.signal(signal.SIGTERM, _exit_on_sigterm)
        if backend == "docker":
            from scenarios.backends.docker_run import DockerTarget

            target = DockerTarget(nodes, net_ticktime).start()
        else:
            target = LocalTarget(nodes, net_ticktime).start()
        _shared[backend] = target
        atexit.register(close_shared, backend)
    return target


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def close_shared(backend: str = "local") -> None:
    target = _shared.pop(backend, None)
    if target is not None:
        target.close()


def run_real(scenario, seed: int, adapter, wall_timeout: float = 300.0, backend: str = "local"):
    """One run on the shared real cluster of ``backend``, in a vhost of its own."""
    from scenarios.runner import make_result

    reason = unsupported(scenario, backend)
    if reason is not None:
        return make_result(scenario, seed, adapter, backend, [], [], time.monotonic(),
                           f"not supported on the {backend} backend: {reason}")  # fmt: skip
    setup = scenario.setup
    started = time.monotonic()
    target = shared_target(setup.nodes, int(setup.net_ticktime), backend)
    try:
        target.reset()
        target.fresh_vhost(f"warren-{scenario.name}-{seed}-{time.monotonic_ns()}")
    except RuntimeError as exc:  # the cluster the previous run left cannot be mended: anew
        close_shared(backend)
        return make_result(scenario, seed, adapter, backend, [], [], started,
                           f"the {backend} cluster could not be reset before the run ({exc}); "
                           "the next run starts a fresh one")  # fmt: skip
    try:
        return run_realtime(scenario, seed, adapter, target, backend, wall_timeout)
    finally:
        try:
            target.reset()
            target.drop_vhost()
        except RuntimeError as exc:  # this run's result stands; the next run gets a fresh one
            print(f"warren: the {backend} cluster could not be reset after {scenario.name} "
                  f"({exc}); the next run starts a fresh one", file=sys.stderr)  # fmt: skip
            close_shared(backend)
