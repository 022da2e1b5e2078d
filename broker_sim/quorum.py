"""Quorum queues (RabbitMQ 3.8+, Raft via Ra), modelled at the level clients can observe.

Theory of operation. A :class:`QuorumQueue` has members (a group of nodes, default
``min(3, cluster size)``, starting with the declaring node, which leads first) and one
logical, replicated log: the ready messages and the deliveries checked out to consumers.
The queue is *available* when its leader runs and can reach a majority of the members
(itself included). While available it behaves like a classic queue and a publish is
committed (confirmed) at once, because a majority has it. While unavailable, publishes are
held and neither confirmed nor delivered, and consumers sit idle; when a majority is back
the held publishes are committed and confirmed in order. No committed message is ever lost:
members that come back catch up from the log.

Leader election, as Raft does it: when the leader stops or is cut off from a majority, the
queue has no leader; after ``cluster.election_timeout`` a member that runs
and sees a majority of the members becomes leader (the choice among candidates comes from
the cluster's seeded RNG). Consumers on surviving nodes stay attached; deliveries to
channels that died (their node was killed) return to the queue with ``redelivered=True``.

A hung leader (its node paused) is not replaced at once: the queue stalls (publishes held,
consumers idle) until the peers see the node down at ``net_ticktime``, and only then is a
new leader elected; a shorter hang changes nothing. Measured on RabbitMQ 3.10 with three
nodes and the leader's node SIGSTOPped: no new leader within a 45 s hang under
net_ticktime 60, a new one ~12 s after the stop under net_ticktime 10.
"""

from __future__ import annotations

from collections import deque

from broker_sim.errors import AMQPError
from broker_sim.message import Message, QueuedMessage
from broker_sim.queues import ClassicQueue

#: Declaration properties a quorum queue refuses (rabbit_quorum_queue:declare).
_REFUSED_PROPERTIES = (
    ("durable", False, "non-durable"),
    ("exclusive", True, "exclusive-declare"),
    ("auto_delete", True, "auto-delete"),
)


def default_delivery_limit(config) -> int | None:
    """NodeConfig.delivery_limit, else RabbitMQ's default for the version the node claims:
    none before 4.0, 20 from 4.0 on."""
    if config.delivery_limit is not None:
        return config.delivery_limit
    major = config.product_version.split(".", 1)[0]
    return 20 if major.isdigit() and int(major) >= 4 else None


class ReturnsFirstStore:
    """rabbit_fifo's ready messages: returned ones (reject/nack with requeue, a consumer's
    channel closing) wait in a queue of their own, served before the rest in the order
    they came back, so a, b rejected one at a time come back a, b, and b, a as b, a
    (measured on RabbitMQ 3.10: tests/conformance/test_fidelity.py)."""

    def __init__(self) -> None:
        self.returns: deque[QueuedMessage] = deque()
        self.messages: deque[QueuedMessage] = deque()

    def append(self, qm: QueuedMessage) -> None:
        self.messages.append(qm)

    def restore(self, qms: list[QueuedMessage]) -> None:
        self.returns.extend(qms)

    def pop(self) -> QueuedMessage:
        return self.returns.popleft() if self.returns else self.messages.popleft()

    def peek(self) -> QueuedMessage | None:
        head = self.returns or self.messages
        return head[0] if head else None

    def __len__(self) -> int:
        return len(self.returns) + len(self.messages)

    def __iter__(self):
        yield from self.returns
        yield from self.messages

    def clear(self) -> list[QueuedMessage]:
        items = [*self.returns, *self.messages]
        self.returns.clear()
        self.messages.clear()
        return items


class QuorumQueue(ClassicQueue):
    leader: str | None = None
    members: list[str] = []  # noqa: RUF012 (replaced per instance in _place)
    held: list = []  # noqa: RUF012
    dlx_pending: list = []  # noqa: RUF012 (at-least-once dead letters no queue took yet)
    _election = None

    @classmethod
    def create(cls, name: str, host, **kwargs) -> QuorumQueue:
        values = {
            "durable": kwargs.get("durable"),
            "exclusive": kwargs.get("exclusive_owner") is not None,
            "auto_delete": kwargs.get("auto_delete"),
        }
        for key, bad, label in _REFUSED_PROPERTIES:
            if values[key] == bad:
                raise AMQPError(
                    406,
                    f"PRECONDITION_FAILED - invalid property '{label}' for queue "
                    f"'{name}' in vhost '{host.name}'",
                )
        queue = cls(name, host.name, host, **kwargs)
        queue.kind = "quorum"
        queue.store = ReturnsFirstStore()
        queue.dlx_pending = []
        queue._place(kwargs["node"])
        return queue

    def _place(self, declaring_node: str) -> None:
        cluster = self.host.cluster
        names = list(cluster.nodes)
        size = self.arguments.get("x-quorum-initial-group-size") or min(3, len(names))
        start = names.index(declaring_node)
        self.members = [names[(start + i) % len(names)] for i in range(min(size, len(names)))]
        self.leader: str | None = declaring_node
        self._available_for: tuple = ()  # (leader, topology version) _available answers
        self._available = False
        self.held: list[tuple[Message, object]] = []
        self._election = None
        cluster.log("quorum-leader", declaring_node, queue=self.name, members=list(self.members))

    # -- availability ---------------------------------------------------------------------

    @property
    def serving_node(self) -> str | None:
        return self.leader

    def _majority_from(self, node: str) -> bool:
        cluster = self.host.cluster
        seen = sum(1 for m in self.members if cluster.reachable(node, m))
        return seen * 2 > len(self.members)

    def available(self) -> bool:
        """A leader that sees a majority of the members; asked on every dispatch, so the
        answer is kept until the leader or the cluster's topology changes."""
        key = (self.leader, self.host.cluster.topology_version)
        if key != self._available_for:
            self._available = self.leader is not None and self._majority_from(self.leader)
            self._available_for = key
        return self._available

    def accepts_publishes(self) -> bool:
        return True

    def hold(self, message: Message, on_commit) -> None:
        self.held.append((message, on_commit))

    def crash_recover(self) -> None:
        """Replicated: a member's crash loses nothing."""

    # -- returns and the delivery limit (rabbit_fifo) -------------------------------------

    def apply_settings(self, args: dict) -> None:
        super().apply_settings(args)
        limit = args.get("x-delivery-limit")
        config = self.host.cluster.config
        self.delivery_limit = limit if limit is not None else default_delivery_limit(config)

    def remove_consumer(self, consumer) -> None:
        """rabbit_fifo applies a consumer's cancel before its channel's ``down``: the
        remaining (or newly active) consumer is served ready messages first, and what the
        gone consumer held comes back after (measured on RabbitMQ 3.10)."""
        super().remove_consumer(consumer)
        if self.consumers and self.available():
            self.dispatch()

    def requeue(self, qms) -> None:
        """rabbit_fifo's return: each return (reject or nack with requeue, a consumer's
        channel or connection gone, its node lost) adds one to the message's delivery
        count, which it carries as the ``x-delivery-count`` header; past
        ``x-delivery-limit`` the message is dead-lettered (reason ``delivery_limit``) or
        dropped instead of coming back."""
        back = []
        for qm in sorted(qms, key=lambda q: q.seq):
            returned = qm.extra.get("returned", 0) + 1
            qm.extra["returned"] = returned
            if self.delivery_limit is not None and returned > self.delivery_limit:
                self.settle(qm)
                self._dead_letter(qm, "delivery_limit")
                continue
            headers = {**qm.message.headers, "x-delivery-count": returned}
            qm.message = qm.message.with_headers(headers)
            back.append(qm)
        super().requeue(back)

    def _dead_letter(self, qm, reason: str) -> None:
        """``x-dead-letter-strategy: at-least-once`` (with ``x-overflow: reject-publish``,
        as RabbitMQ requires) keeps a dead letter until a target queue takes it; retried
        when the cluster's topology changes. Otherwise at-most-once: sent and forgotten."""
        at_least_once = (
            self.settings.get("x-dead-letter-strategy") == "at-least-once"
            and self.overflow == "reject-publish"
        )
        if not at_least_once:
            self.host.dead_letter(self, qm, reason)
        elif not self.host.dead_letter_confirmed(self, qm, reason):
            self.dlx_pending.append((qm, reason))

    def retry_dead_letters(self) -> None:
        pending, self.dlx_pending = self.dlx_pending, []
        for qm, reason in pending:
            if not self.host.dead_letter_confirmed(self, qm, reason):
                self.dlx_pending.append((qm, reason))

    # -- elections ------------------------------------------------------------------------

    def topology_changed(self) -> None:
        if self.deleted:
            return
        if self.dlx_pending:
            self.retry_dead_letters()
        if self.available():
            self._commit_held()
            return
        if self._leader_hung_unseen():
            return  # stalled: the peers still take the hung leader for alive
        if self.leader is not None:
            self.host.cluster.log("quorum-leader-lost", self.leader, queue=self.name)
            self.leader = None
        if self._election is None:
            cluster = self.host.cluster
            when = cluster.now() + cluster.election_timeout
            self._election = cluster.timers.schedule(when, self._elect)

    def _leader_hung_unseen(self) -> bool:
        return self.leader is not None and self.host.cluster.hung_unseen(self.leader)

    def _elect(self) -> None:
        self._election = None
        if self.deleted or self.available():
            return
        cluster = self.host.cluster
        candidates = sorted(m for m in self.members if self._majority_from(m))
        if not candidates:
            return  # no quorum: wait for the next topology change
        self.leader = cluster.rng.choice(candidates)
        cluster.log("quorum-leader", self.leader, queue=self.name, members=list(self.members))
        self._commit_held()
        self.host.dirty[self] = None
        cluster.dispatch()

    def _commit_held(self) -> None:
        held, self.held = self.held, []
        for message, on_commit in held:
            if self.would_reject(message):
                ok = False
            else:
                self.publish(message)
                ok = True
            if on_commit is not None:
                on_commit(ok)
        if held:
            self.host.dirty[self] = None

    def shutdown(self) -> None:
        super().shutdown()
        if self._election is not None:
            self._election.cancel()


QUEUE_TYPES = {"classic": ClassicQueue, "quorum": QuorumQueue}
