"""Classic queues: storage, consumers, TTL, length limits, priorities (RabbitMQ semantics).

Theory of operation. A :class:`ClassicQueue` keeps ready messages in a store (FIFO, or one
FIFO per priority when ``x-max-priority`` is set) and a round-robin list of consumers.
``dispatch`` hands ready messages to consumers that have credit (prefetch) until one side
runs out. Delivered-but-unacked messages live in the consuming channel; the channel calls
back ``settle`` (ack, or discard after reject) or ``requeue`` (nack/reject/recover/close),
and requeued messages return to their original places (by publish sequence, as
rabbit_variable_queue does: ``abcde`` rejected one at a time in any order comes back
``abcde``; within each level of a priority queue) marked ``redelivered``. Quorum queues
keep returns apart instead (see :mod:`broker_sim.quorum`).

Expiry follows RabbitMQ: messages expire at the head of the queue (per-queue
``x-message-ttl`` and per-message ``expiration``); a timer on the head expiry drops them
promptly. Dropped messages (expired, overflow drop-head, rejected without requeue) go to
``dead_letter`` when the queue has ``x-dead-letter-exchange``. The owning vhost supplies the
clock, timers and dead-letter sink through :class:`QueueHost`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from broker_sim.errors import AMQPError
from broker_sim.message import Message, QueuedMessage
from broker_sim.policies import effective
from broker_sim.timers import Timer


class QueueHost(Protocol):
    cluster: object

    def now(self) -> float: ...
    def schedule(self, queue: ClassicQueue, when: float, callback) -> Timer: ...
    def dead_letter(self, queue: ClassicQueue, qm: QueuedMessage, reason: str) -> None: ...
    def queue_unused(self, queue: ClassicQueue) -> None: ...


class ConsumerChannel(Protocol):
    def can_deliver(self, consumer: Consumer) -> bool: ...
    def deliver(self, consumer: Consumer, queue: ClassicQueue, qm: QueuedMessage) -> None: ...


@dataclass(eq=False)
class Consumer:
    tag: str
    channel: ConsumerChannel
    no_ack: bool
    exclusive: bool = False
    priority: int = 0
    prefetch: int = 0  # per-consumer limit (basic.qos global=false), 0 = unlimited
    unacked: int = 0
    arguments: dict = field(default_factory=dict)

    def has_credit(self) -> bool:
        return self.no_ack or self.prefetch == 0 or self.unacked < self.prefetch


def _by_seq(qm: QueuedMessage) -> int:
    return qm.seq


class FifoStore(deque):
    """Ready messages in order: a deque (``len``, ``append`` and ``pop`` from the head are
    C-level calls on the hot path) with the store interface PriorityStore shares."""

    pop = deque.popleft  # the store's pop takes the head

    def restore(self, qms: list[QueuedMessage]) -> None:
        """Requeued messages (sorted by seq) back in their places among the ready ones,
        which are in seq order too (publishes append, crash recovery sorts)."""
        if not qms:
            return
        if not self or qms[-1].seq < self[0].seq:  # the usual case: all older than the head
            self.extendleft(reversed(qms))
            return
        merged = list(heapq.merge(self, qms, key=_by_seq))
        deque.clear(self)
        self.extend(merged)

    def peek(self) -> QueuedMessage | None:
        return self[0] if self else None

    def clear(self) -> list[QueuedMessage]:
        items = list(self)
        deque.clear(self)
        return items


class PriorityStore:
    """One FIFO per priority level; highest level first (rabbit_priority_queue)."""

    def __init__(self, max_priority: int) -> None:
        self._levels = [FifoStore() for _ in range(max_priority + 1)]

    def _level(self, qm: QueuedMessage) -> FifoStore:
        return self._levels[min(qm.priority, len(self._levels) - 1)]

    def append(self, qm: QueuedMessage) -> None:
        self._level(qm).append(qm)

    def restore(self, qms: list[QueuedMessage]) -> None:
        for level in self._levels:
            level.restore([qm for qm in qms if self._level(qm) is level])

    def _top(self) -> FifoStore | None:
        for level in reversed(self._levels):
            if len(level):
                return level
        return None

    def peek(self) -> QueuedMessage | None:
        top = self._top()
        return top.peek() if top else None

    def pop(self) -> QueuedMessage:
        top = self._top()
        if top is None:
            raise IndexError("pop from empty queue")
        return top.pop()

    def __len__(self) -> int:
        return sum(len(level) for level in self._levels)

    def __iter__(self):
        for level in reversed(self._levels):
            yield from level

    def clear(self) -> list[QueuedMessage]:
        return [qm for level in reversed(self._levels) for qm in level.clear()]


@dataclass(eq=False)
class ClassicQueue:
    """A classic queue (RabbitMQ rabbit_amqqueue_process semantics)."""

    name: str
    vhost: str
    host: QueueHost
    durable: bool = False
    exclusive_owner: object | None = None
    auto_delete: bool = False
    arguments: dict = field(default_factory=dict)
    node: str = ""
    kind: str = "classic"

    def __post_init__(self) -> None:
        args = self.arguments
        self.policy = None  # broker_sim.policies.Policy that applies, if any
        self.apply_settings(args)
        max_priority = args.get("x-max-priority")
        self.max_priority: int | None = max_priority
        self.store = PriorityStore(max_priority) if max_priority else FifoStore()
        self.consumers: list[Consumer] = []
        #: x-single-active-consumer: only ``active`` gets deliveries; when it goes, the
        #: first waiting consumer (highest priority, then earliest) takes over, and what
        #: the old one left unacked comes back to it in order (rabbit_amqqueue_process)
        self.single_active: bool = args.get("x-single-active-consumer") is True
        self.active: Consumer | None = None
        self.unacked = 0
        self.bytes_ready = 0
        self._seq = 0
        self._rr = 0
        self._expiry_timer: Timer | None = None
        self._may_expire = self.message_ttl is not None  # set when a message has a TTL
        self._expires_timer: Timer | None = None
        self.had_consumer = False
        self.deleted = False
        self.epoch = 0  # bumped when the node crashes: older deliveries are fenced off
        self.in_flight: dict[int, QueuedMessage] = {}  # unacked deliveries by seq
        self.touch()

    def apply_settings(self, args: dict) -> None:
        """The settings a policy may change (its arguments merged with the policy's)."""
        self.settings = args
        self.message_ttl: int | None = args.get("x-message-ttl")
        self.max_length: int | None = args.get("x-max-length")
        self.max_length_bytes: int | None = args.get("x-max-length-bytes")
        self.overflow: str = args.get("x-overflow", "drop-head")
        self.dlx: str | None = args.get("x-dead-letter-exchange")
        self.dlrk: str | None = args.get("x-dead-letter-routing-key")
        self.expires: int | None = args.get("x-expires")

    def apply_policy(self, policy) -> None:
        """A policy was set or cleared: act on the merged settings from now on."""
        self.policy = policy
        self.apply_settings(effective(self.arguments, policy))
        if self.message_ttl is not None:
            self._may_expire = True
            self._arm_expiry()
        if self.max_length is not None or self.max_length_bytes is not None:
            self._enforce_length()

    @classmethod
    def create(cls, name: str, host: QueueHost, **kwargs) -> ClassicQueue:
        return cls(name, host.name, host, **kwargs)

    # -- placement and availability (see broker_sim.cluster) -------------------------------

    @property
    def serving_node(self) -> str:
        """The node whose process holds the messages (the home node of a classic queue)."""
        return self.node

    def available(self) -> bool:
        return self.host.cluster.nodes[self.node].running

    def accepts_publishes(self) -> bool:
        """A classic queue whose node is down silently drops what is routed to it."""
        return self.available()

    def hold(self, message: Message, on_commit) -> None:
        raise AssertionError("a classic queue never holds publishes")

    def topology_changed(self) -> None:
        """Nodes or links changed (quorum queues elect leaders here)."""

    def crash_recover(self) -> None:
        """The home node died: transient messages are gone, persistent ones (ready or
        unacked) come back from disk, the unacked ones marked redelivered."""
        self.epoch += 1
        survivors = [qm for qm in self.store.clear() if qm.message.persistent]
        for qm in self.in_flight.values():
            if qm.message.persistent:
                qm.redelivered = True
                survivors.append(qm)
        self.in_flight.clear()
        self.unacked = 0
        survivors.sort(key=lambda q: q.seq)
        self.bytes_ready = sum(len(qm.message.body) for qm in survivors)
        for qm in survivors:
            self.store.append(qm)
        self._arm_expiry()

    # -- publishing ---------------------------------------------------------------------

    def would_reject(self, message: Message) -> bool:
        """True when x-overflow=reject-publish(-dlx) refuses this message now."""
        if self.overflow == "drop-head":
            return False
        return self._over_limit(extra_count=1, extra_bytes=len(message.body))

    def publish(self, message: Message) -> None:
        """Enqueue ``message`` (caller checked ``would_reject``) and apply length limits."""
        now = self.host.now()
        self._seq += 1
        qm = QueuedMessage(message, self._seq, now, self._expiry_for(message, now))
        if qm.expires_at is not None:
            self._may_expire = True
        qm.priority = message.properties.priority or 0
        if qm.expires_at is not None and qm.expires_at <= now and not self.consumers:
            # RabbitMQ drops a message with TTL 0 at once unless a consumer can take it.
            self.host.dead_letter(self, qm, "expired")
            return
        self.store.append(qm)
        self.bytes_ready += len(qm.message.body)
        if self.max_length is not None or self.max_length_bytes is not None:
            self._enforce_length()
        if self._may_expire:
            self._arm_expiry()
        if self.expires is not None:
            self.touch()

    def _expiry_for(self, message: Message, now: float) -> float | None:
        ttls = []
        if self.message_ttl is not None:
            ttls.append(self.message_ttl)
        expiration = message.properties.expiration
        if expiration is not None:
            try:
                ttls.append(int(expiration))
            except ValueError:
                pass
        return now + min(ttls) / 1000.0 if ttls else None

    def _over_limit(self, extra_count: int = 0, extra_bytes: int = 0) -> bool:
        if self.max_length is not None and len(self.store) + extra_count > self.max_length:
            return True
        return (
            self.max_length_bytes is not None
            and self.bytes_ready + extra_bytes > self.max_length_bytes
        )

    def _enforce_length(self) -> None:
        while len(self.store) and self._over_limit():
            qm = self._pop_ready()
            self.host.dead_letter(self, qm, "maxlen")

    # -- ready messages -----------------------------------------------------------------

    def _pop_ready(self) -> QueuedMessage:
        qm = self.store.pop()
        self.bytes_ready -= len(qm.message.body)
        return qm

    def drop_expired(self) -> None:
        """Dead-letter expired messages at the head (RabbitMQ expires at the head only)."""
        if not self._may_expire:
            return
        now = self.host.now()
        while True:
            head = self.store.peek()
            if head is None or head.expires_at is None or head.expires_at > now:
                break
            self.host.dead_letter(self, self._pop_ready(), "expired")
        self._arm_expiry()

    def _arm_expiry(self) -> None:
        if not self._may_expire:  # no TTL on the queue and no message ever had one
            return
        head = self.store.peek()
        when = head.expires_at if head is not None else None
        if self._expiry_timer is not None:
            if (
                when is not None
                and self._expiry_timer.when == when
                and not self._expiry_timer.cancelled
            ):
                return
            self._expiry_timer.cancel()
            self._expiry_timer = None
        if when is not None and not self.deleted:
            self._expiry_timer = self.host.schedule(self, when, self._on_expiry_timer)

    def _on_expiry_timer(self) -> None:
        self._expiry_timer = None
        self.drop_expired()

    def get(self) -> QueuedMessage | None:
        """basic.get: the head message, or None."""
        self.drop_expired()
        if not len(self.store):
            return None
        qm = self._pop_ready()
        self._arm_expiry()
        self.touch()
        return qm

    def requeue(self, qms: Iterable[QueuedMessage]) -> None:
        """Put unacked messages back (see the store's ``restore``), marked redelivered."""
        items = sorted(qms, key=lambda q: q.seq)
        for qm in items:
            qm.redelivered = True
            self.unacked -= 1
            self.in_flight.pop(qm.seq, None)
            self.bytes_ready += len(qm.message.body)
        self.store.restore(items)
        self._arm_expiry()

    def track_unacked(self, qm: QueuedMessage) -> None:
        self.unacked += 1
        self.in_flight[qm.seq] = qm

    def settle(self, qm: QueuedMessage) -> None:
        """An unacked message was acked (or rejected without requeue)."""
        self.unacked -= 1
        self.in_flight.pop(qm.seq, None)

    def purge(self) -> int:
        items = self.store.clear()
        self.bytes_ready = 0
        self._arm_expiry()
        return len(items)

    @property
    def message_count(self) -> int:
        return len(self.store)

    # -- consumers ------------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer, vhost: str) -> None:
        if any(c.exclusive for c in self.consumers) or (consumer.exclusive and self.consumers):
            raise AMQPError.of("exclusive_consumer", name=self.name, vhost=vhost)
        self.consumers.append(consumer)
        self.consumers.sort(key=lambda c: -c.priority)
        if self.single_active and self.active is None:
            self.active = consumer
        self.had_consumer = True
        self.touch()

    def remove_consumer(self, consumer: Consumer) -> None:
        if consumer in self.consumers:
            self.consumers.remove(consumer)
        if consumer is self.active:
            self.active = self.consumers[0] if self.consumers else None
            if self.active is not None:
                self.host.cluster.log("single-active-consumer", self.node, queue=self.name,
                                      consumer=self.active.tag)  # fmt: skip
        self.touch()
        if not self.consumers and self.auto_delete and self.had_consumer:
            self.host.queue_unused(self)

    def dispatch(self) -> int:
        """Deliver ready messages to consumers with credit, round-robin within a priority."""
        delivered = 0
        if not self.consumers:
            return 0
        if self._may_expire:
            self.drop_expired()
        while len(self.store):
            consumer = self._next_consumer()
            if consumer is None:
                break
            qm = self._pop_ready()
            qm.delivery_count += 1
            if not consumer.no_ack:
                self.track_unacked(qm)
            consumer.channel.deliver(consumer, self, qm)
            delivered += 1
        if delivered and self._may_expire:
            self._arm_expiry()
        return delivered

    def _next_consumer(self) -> Consumer | None:
        if self.single_active:
            c = self.active
            return c if c is not None and c.has_credit() and c.channel.can_deliver(c) else None
        consumers = self.consumers
        n = len(consumers)
        top = consumers[0].priority
        same = (
            [c for c in consumers if c.priority == top]
            if consumers[-1].priority != top
            else consumers
        )
        for group in (same, consumers):
            m = len(group)
            for i in range(m):
                c = group[(self._rr + i) % m]
                if c.has_credit() and c.channel.can_deliver(c):
                    self._rr = (self._rr + i + 1) % max(n, 1)
                    return c
        return None

    # -- x-expires ------------------------------------------------------------------------

    def touch(self) -> None:
        """Queue used: restart the x-expires countdown if idle (no consumers)."""
        if self.expires is None or self.deleted:
            return
        if self._expires_timer is not None:
            self._expires_timer.cancel()
            self._expires_timer = None
        if not self.consumers:
            when = self.host.now() + self.expires / 1000.0
            self._expires_timer = self.host.schedule(
                self, when, lambda: self.host.queue_unused(self)
            )

    def shutdown(self) -> None:
        self.deleted = True
        for timer in (self._expiry_timer, self._expires_timer):
            if timer is not None:
                timer.cancel()
