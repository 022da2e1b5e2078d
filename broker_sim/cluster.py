"""A simulated RabbitMQ cluster, sans-IO: shared metadata, node states, partitions, faults.

Theory of operation. Like RabbitMQ, the cluster shares its metadata (users, permissions,
vhosts, exchanges, bindings, queue definitions) between nodes, while each queue's messages
live on a node: a classic queue on its home node (the declaring connection's node), a
quorum queue on its members, served by the leader. Every node is in one state:

    state     serves clients   timers   listener   entered by
    running   yes              run      open       start, resume, heal
    stopped   no               -        closed     kill, stop
    paused    no (silent)      frozen   open       pause (process hung: SIGSTOP)
    minority  no               -        closed     partition, pause_minority handling

``FAULTS`` maps each fault name to the method that applies it; each fault checks its
argument (unknown node, node twice in a partition, resume of a node not paused) and raises
``FaultError`` before changing anything. Faults are recorded in ``events`` with the time.
Reachability between two nodes needs both running and on the same side of any partition.
The drivers watch node states to close/open listeners and reset sockets.

A hung node is not seen at once. Its peers notice a silent node only after Erlang's
``net_ticktime`` (60 s by default; RabbitMQ's docs give 45-75 s, Warren takes the tick
itself so a run stays deterministic). Until then nothing in the cluster changes for its
consumers and queues (``seen_reachable``): a pause shorter than the tick goes unnoticed, as
a 6 s ``docker pause`` does on real nodes. That holds for quorum queues too: a hung leader
stalls its queue until then, and is replaced only once it is seen down (broker_sim.quorum,
measured on RabbitMQ 3.10). A node that
resumes after its peers saw it down finds itself alone: under pause_minority it stops
serving (``minority``) and stays so until it is restarted (measured on RabbitMQ 3.10:
"the partition persists", ../shared/notes/docker.md).

pause_minority counts Erlang nodes, whatever took them down (rabbit_node_monitor's
``handle_dead_node``: after any nodedown, a node that sees at most half of the cluster's
nodes stops its app and waits for a majority): a killed node or a hang once seen is down,
as is the other side of a partition. So killing two nodes of three stops the third too,
until one is back. ``stop`` is ``rabbitmqctl stop_app``: the Erlang node stays up and
counts. A node paused this way comes back by itself when a majority runs again (start,
resume, heal); the hung node that resumed alone does not (above).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from broker_sim.auth import Users
from broker_sim.node import Event, Node, NodeConfig
from broker_sim.replies import reply_text
from broker_sim.timers import Timers
from broker_sim.vhost import VHost

RUNNING, STOPPED, PAUSED, MINORITY = "running", "stopped", "paused", "minority"

#: how many events the cluster keeps (four or five a connection: a long soak stays flat)
EVENT_LIMIT = 10_000


class EventLog(list):
    """The cluster's event log, bounded: past ``limit`` events the oldest tenth goes and
    ``dropped`` counts it, so a simulator left running does not grow with its history
    (a test that needs more raises ``cluster.events.limit``)."""

    def __init__(self, limit: int = EVENT_LIMIT) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def append(self, event: Event) -> None:
        super().append(event)
        if len(self) > self.limit:
            cut = max(1, self.limit // 10)
            del self[:cut]
            self.dropped += cut


class FaultError(ValueError):
    """A fault that names an unknown node or makes no sense in the current state."""


class Cluster:
    """``Cluster(3, clock, rng)``: nodes ``rabbit@node1..3`` sharing one metadata store."""

    def __init__(
        self,
        nodes: int | Iterable[str],
        clock: Callable[[], float],
        rng,
        config: NodeConfig | None = None,
        election_timeout: float = 1.0,
        net_ticktime: float = 60.0,
    ) -> None:
        names = (
            [f"rabbit@node{i + 1}" for i in range(nodes)] if isinstance(nodes, int) else list(nodes)
        )
        if not names:
            raise FaultError("a cluster needs at least one node")
        if len(set(names)) != len(names):
            raise FaultError(f"node names must be unique: {names}")
        self.now = clock
        self.rng = rng
        self.config = config or NodeConfig()
        self.election_timeout = election_timeout
        self.net_ticktime = net_ticktime
        self._hang_seen: set[str] = set()  # paused nodes their peers have noticed
        self.schema_waiters: dict = {}  # channels whose schema write waits for a hung peer
        self._hang_timers: dict[str, object] = {}
        self._killed: set[str] = set()  # Erlang nodes gone (kill), until started
        self._awaiting: set[str] = set()  # paused by pause_minority, back with a majority
        self.users = Users.with_guest()
        self.events = EventLog()
        self.vhosts: dict[str, VHost] = {}
        self.nodes: dict[str, Node] = {n: Node(n, self) for n in names}
        self._groups: list[frozenset[str]] | None = None  # None = no partition
        self._reach: dict[tuple[str, str], bool] = {}  # reachable() answers, until a change
        self.topology_version = 0  # bumped on every node state or partition change
        self.alarm_count = 0  # nodes currently in a resource alarm
        self.timers = Timers()  # cluster-level timers: quorum queues, leader elections
        self.vhosts["/"] = VHost("/", self)

    # -- lookups --------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        """A node by full name (``rabbit@node1``) or short name (``node1``)."""
        if name in self.nodes:
            return self.nodes[name]
        matches = [n for n in self.nodes.values() if n.name.split("@", 1)[-1] == name]
        if len(matches) == 1:
            return matches[0]
        raise FaultError(f"unknown node '{name}' (nodes: {', '.join(self.nodes)})")

    @property
    def first_node(self) -> Node:
        return next(iter(self.nodes.values()))

    def reachable(self, a: str, b: str) -> bool:
        """True when both nodes run and no partition separates them. Asked on every
        delivery and dispatch, so answers are kept until a node state or partition changes."""
        known = self._reach.get((a, b))
        if known is None:
            na, nb = self.nodes[a], self.nodes[b]
            known = na.state == RUNNING and nb.state == RUNNING
            known = known and (
                a == b or self._groups is None or any(a in g and b in g for g in self._groups)
            )
            self._reach[(a, b)] = known
        return known

    def seen_down(self, name: str) -> bool:
        """What the other nodes believe: a hung node counts as up until the net tick."""
        state = self.nodes[name].state
        return state != RUNNING and (state != PAUSED or name in self._hang_seen)

    def hung_unseen(self, name: str) -> bool:
        """Paused, and not yet noticed by its peers (before ``net_ticktime``)."""
        return self.nodes[name].state == PAUSED and name not in self._hang_seen

    def delivers_to(self, queue_node: str | None, consumer_node: str) -> bool:
        """Whether a queue served on ``queue_node`` sends to a consumer on
        ``consumer_node``: the queue must run, and it goes on sending to a hung consumer's
        node (into its frozen mailbox) until the hang is seen."""
        if queue_node is None or self.nodes[queue_node].state != RUNNING:
            return False
        if self.hung_unseen(consumer_node):
            return self.seen_reachable(queue_node, consumer_node)
        return self.reachable(queue_node, consumer_node)

    def schema_locked(self) -> bool:
        """A schema write waits for every node the cluster takes for alive: true while a
        node hangs unseen (broker_sim.schema_lock)."""
        return bool(self._hang_timers)

    def seen_reachable(self, a: str, b: str) -> bool:
        """``reachable`` as the peers see it (a hang is noticed only after ``net_ticktime``)."""
        if self.seen_down(a) or self.seen_down(b):
            return False
        return a == b or self._groups is None or any(a in g and b in g for g in self._groups)

    @property
    def groups(self) -> list[frozenset[str]] | None:
        return self._groups

    @groups.setter
    def groups(self, value: list[frozenset[str]] | None) -> None:
        self._groups = value
        self.topology_moved()

    def topology_moved(self) -> None:
        self._reach.clear()
        self.topology_version += 1

    def log(self, kind: str, node: str = "", **details) -> None:
        self.events.append(Event(self.now(), kind, node, details))

    # -- scheduling -----------------------------------------------------------------------

    @property
    def alarm_active(self) -> bool:
        """True while any node has a resource alarm (RabbitMQ alarms are cluster-wide)."""
        return self.alarm_count > 0

    def next_deadline(self) -> float | None:
        deadlines = [n.timers.next_deadline() for n in self.nodes.values() if n.state != PAUSED]
        deadlines.append(self.timers.next_deadline())
        deadlines = [d for d in deadlines if d is not None]
        return min(deadlines) if deadlines else None

    def tick(self) -> None:
        now = self.now()
        self.timers.run_due(now)
        for node in self.nodes.values():
            if node.state != PAUSED:
                node.timers.run_due(now)
        self.dispatch()

    def dispatch(self) -> None:
        """Deliver from every queue that became deliverable, then flush confirms."""
        for vhost in list(self.vhosts.values()):
            if vhost.dirty:
                vhost.dispatch()
        for node in self.nodes.values():
            if node.confirm_pending:
                node.flush_confirms()

    def schedule(self, node_name: str, when: float, callback):
        return self.nodes[node_name].timers.schedule(when, callback)

    # -- faults ---------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """The node's process dies: sockets reset, in-memory state gone (SIGKILL)."""
        node = self._running_or_paused(name, "kill")
        self.log("kill", node.name)
        node.crash()
        self._killed.add(node.name)
        self._node_down(node)
        self._apply_pause_minority()

    def stop(self, name: str) -> None:
        """Graceful stop: clients get connection.close 320 CONNECTION_FORCED first."""
        node = self._running_or_paused(name, "stop")
        self.log("stop", node.name)
        node.graceful_stop()
        self._node_down(node)

    def start(self, name: str) -> None:
        node = self.node(name)
        if node.state != STOPPED:
            raise FaultError(f"cannot start node '{node.name}': it is {node.state}, not stopped")
        self.log("start", node.name)
        self._killed.discard(node.name)
        node.set_state(MINORITY if self._in_minority(node.name) else RUNNING)
        if node.state == MINORITY:
            self._awaiting.add(node.name)
        self._apply_pause_minority()
        self._topology_changed()

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def pause(self, name: str) -> None:
        """The process hangs (SIGSTOP): sockets stay open, nothing is sent or processed."""
        node = self.node(name)
        if node.state != RUNNING:
            raise FaultError(f"cannot pause node '{node.name}': it is {node.state}")
        self.log("pause", node.name)
        node.set_state(PAUSED)
        node.paused_at = self.now()
        when = self.now() + self.net_ticktime
        self._hang_timers[node.name] = self.timers.schedule(when, lambda: self._hang_noticed(node))
        self._topology_changed()

    def _hang_noticed(self, node: Node) -> None:
        """net_tick_timeout: the peers declare the silent node down (rabbit_node_monitor)."""
        self._hang_timers.pop(node.name, None)
        if node.state != PAUSED:
            return
        self.log("node-down-seen", node.name, after=self.net_ticktime)
        self._hang_seen.add(node.name)
        self._apply_pause_minority()
        self._topology_changed()

    def _forget_hang(self, name: str) -> bool:
        """The hang ended (resume, kill, stop): True when the peers had noticed it."""
        timer = self._hang_timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        seen = name in self._hang_seen
        self._hang_seen.discard(name)
        return seen

    def resume(self, name: str) -> None:
        node = self.node(name)
        if node.state != PAUSED:
            raise FaultError(f"cannot resume node '{node.name}': it is not paused ({node.state})")
        self.log("resume", node.name)
        node.timers.shift(self.now() - node.paused_at)
        cut_off = self._forget_hang(node.name) or self._in_minority(node.name)
        node.set_state(MINORITY if cut_off else RUNNING)
        if cut_off:
            self.log("pause-minority", node.name)
            node.graceful_stop(keep_state=MINORITY)
        node.resume_connections()
        self._apply_pause_minority()
        self._topology_changed()

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Split the inter-node network; pause_minority stops nodes on the smaller side."""
        parsed = self._parse_groups(groups)
        self.log("partition", groups=[sorted(g) for g in parsed])
        self.groups = parsed
        self._apply_pause_minority()
        self._topology_changed()

    def heal(self) -> None:
        if self.groups is None:
            raise FaultError("cannot heal: the cluster is not partitioned")
        self.log("heal")
        self.groups = None
        for node in self.nodes.values():
            if node.state == MINORITY and not self._in_minority(node.name):
                node.set_state(RUNNING)
                self._awaiting.discard(node.name)
        self._topology_changed()

    def drop_heartbeats(self, name: str, dropped: bool = True) -> None:
        """The node keeps serving but sends no heartbeat frames."""
        node = self.node(name)
        self.log("drop-heartbeats" if dropped else "restore-heartbeats", node.name)
        node.heartbeats_dropped = dropped

    # -- fault helpers --------------------------------------------------------------------

    def _running_or_paused(self, name: str, fault: str) -> Node:
        node = self.node(name)
        if node.state == STOPPED:
            raise FaultError(f"cannot {fault} node '{node.name}': it is already stopped")
        return node

    def _parse_groups(self, groups: Iterable[Iterable[str]]) -> list[frozenset[str]]:
        if isinstance(groups, (str, bytes)):
            raise FaultError("partition takes a list of node groups, e.g. [['node1'], ['node2']]")
        seen: dict[str, int] = {}
        parsed = []
        for i, group in enumerate(groups):
            if isinstance(group, (str, bytes)):
                raise FaultError(f"partition group {i} must be a list of nodes, got {group!r}")
            names = set()
            for raw in group:
                full = self.node(raw).name
                if full in seen:
                    raise FaultError(
                        f"node '{full}' appears in partition groups {seen[full]} and {i}"
                    )
                seen[full] = i
                names.add(full)
            if names:
                parsed.append(frozenset(names))
        rest = frozenset(self.nodes) - set(seen)
        if rest:
            parsed.append(rest)
        if len(parsed) < 2:
            raise FaultError("a partition needs at least two non-empty groups")
        return parsed

    def _in_minority(self, name: str) -> bool:
        """pause_minority: a node pauses when the nodes it sees up (its side of a partition,
        less the killed and the hangs seen) are at most half of the cluster's nodes."""
        side = self.nodes if self.groups is None else next(g for g in self.groups if name in g)
        alive = [n for n in side if n not in self._killed and n not in self._hang_seen]
        return len(alive) * 2 <= len(self.nodes)

    def _apply_pause_minority(self) -> None:
        """After a node went down or came back: stop the app of each running node now in a
        minority, start again each one paused so that has a majority back."""
        for node in self.nodes.values():
            minority = self._in_minority(node.name)
            if node.state == RUNNING and minority:
                self.log("pause-minority", node.name)
                node.graceful_stop(keep_state=MINORITY)
                self._awaiting.add(node.name)
            elif node.state == MINORITY and not minority and node.name in self._awaiting:
                self.log("minority-recovered", node.name)
                node.set_state(RUNNING)
                self._awaiting.discard(node.name)

    def _node_down(self, node: Node) -> None:
        self._forget_hang(node.name)
        for vhost in self.vhosts.values():
            vhost.node_down(node.name)
        self._topology_changed()

    def _topology_changed(self) -> None:
        for vhost in self.vhosts.values():
            vhost.topology_changed()
        if self.schema_waiters and not self.schema_locked():
            waiting, self.schema_waiters = self.schema_waiters, {}
            for channel in waiting:
                channel.conn.release_schema_wait(channel)
        self.dispatch()

    # -- admin (rabbitmqctl equivalents; cluster-wide) ------------------------------------

    def add_vhost(self, name: str) -> None:
        if name in self.vhosts:
            raise ValueError(f"vhost '{name}' already exists")
        self.vhosts[name] = VHost(name, self)

    def delete_vhost(self, name: str) -> None:
        vhost = self.vhosts.pop(name, None)
        if vhost is None:
            raise KeyError(f"no vhost '{name}'")
        code, text = reply_text("forced", reason=f"vhost '{name}' is deleted")
        for node in self.nodes.values():
            for conn in list(node.connections.values()):
                if conn.vhost is vhost:
                    conn.server_close(code, text)
        for key in [k for k in self.users.permissions if k[1] == name]:
            del self.users.permissions[key]


FAULTS = (
    "kill",
    "stop",
    "start",
    "restart",
    "pause",
    "resume",
    "partition",
    "heal",
    "drop_heartbeats",
)
