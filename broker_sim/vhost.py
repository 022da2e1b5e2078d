"""A virtual host: exchanges, queues, bindings and the operations on them.

Theory of operation. Channels call the ``declare_*``/``delete_*``/``bind``/``publish``
methods here; each validates exactly as RabbitMQ does (reserved ``amq.`` names,
equivalence of redeclarations, argument types) and raises
:class:`~broker_sim.errors.AMQPError` with RabbitMQ's reply. ``publish`` routes a message
(default exchange, exchange types, exchange-to-exchange bindings, alternate exchanges) and
enqueues a copy in each queue (a default-exchange key naming a direct reply-to channel is
delivered by :mod:`broker_sim.reply_to`, not here); dead-lettering republishes through the
queue's dead-letter exchange with the ``x-death`` header RabbitMQ 3.13+ writes. Queues that
become dispatchable are collected in ``dirty`` for the node to dispatch once per input
batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker_sim import policies
from broker_sim.deadletter import dead_letter_properties, is_cycle
from broker_sim.errors import AMQPError, quoted
from broker_sim.exchanges import (
    ALTERNATE_EXCHANGE,
    EQUIVALENT_EXCHANGE_ARGS,
    PREDECLARED,
    Binding,
    Exchange,
    amqp_type,
    arg_inequivalence,
    freeze_args,
    route,
)
from broker_sim.message import Message, QueuedMessage
from broker_sim.queues import ClassicQueue
from broker_sim.quorum import QUEUE_TYPES

#: Queue arguments RabbitMQ validates, with the check each value must pass.
_INT = (int,)
QUEUE_ARG_RULES: dict[str, tuple[tuple[type, ...], Callable[[object], bool], str]] = {
    "x-message-ttl": (_INT, lambda v: v >= 0, "{value_negative,%s}"),
    "x-expires": (_INT, lambda v: v > 0, "{value_zero,%s}"),
    "x-max-length": (_INT, lambda v: v >= 0, "{value_negative,%s}"),
    "x-max-length-bytes": (_INT, lambda v: v >= 0, "{value_negative,%s}"),
    "x-max-priority": (_INT, lambda v: 0 <= v <= 255, "{value_out_of_range,%s}"),
    "x-dead-letter-exchange": ((str,), lambda v: True, "%s"),
    "x-dead-letter-routing-key": ((str,), lambda v: True, "%s"),
    "x-overflow": (
        (str,),
        lambda v: v in ("drop-head", "reject-publish", "reject-publish-dlx"),
        "{invalid_value,%s}",
    ),
    "x-queue-type": ((str,), lambda v: v in ("classic", "quorum", "stream"), "{invalid_value,%s}"),
    "x-queue-mode": ((str,), lambda v: v in ("default", "lazy"), "{invalid_value,%s}"),
    "x-single-active-consumer": ((bool,), lambda v: True, "%s"),
    "x-delivery-limit": (_INT, lambda v: v >= 0, "{value_negative,%s}"),
    "x-dead-letter-strategy": (
        (str,),
        lambda v: v in ("at-most-once", "at-least-once"),
        "{invalid_value,%s}",
    ),
    "x-consumer-timeout": (_INT, lambda v: v > 0, "{value_zero,%s}"),
}
#: Arguments whose values must match on redeclaration (rabbit_amqqueue:check_arguments).
EQUIVALENT_ARGS = (
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-overflow",
    "x-single-active-consumer",
    "x-queue-type",
)


@dataclass
class DeclareResult:
    queue: ClassicQueue
    created: bool


class VHost:
    def __init__(self, name: str, cluster) -> None:
        self.name = name
        self.cluster = cluster  # clock, timers, reachability between nodes
        #: rabbitmqctl set_vhost_limits: "max-connections", "max-queues" (absent or < 0:
        #: no limit; cluster-wide, as rabbit_vhost_limit counts on every node)
        self.limits: dict[str, int] = {}
        self.policies: dict[str, policies.Policy] = {}  # rabbitmqctl set_policy
        self.now = cluster.now  # QueueHost.now: the cluster's clock, read on every publish
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, ClassicQueue] = {}
        self.dirty: dict[ClassicQueue, None] = {}
        for ex_name, ex_type in PREDECLARED:
            self.exchanges[ex_name] = Exchange(ex_name, ex_type, durable=True)

    # -- QueueHost protocol ---------------------------------------------------------------

    def schedule(self, queue: ClassicQueue, when: float, callback):
        """Queue timers run on the node serving the queue (frozen when it hangs)."""
        node = queue.serving_node
        timers = self.cluster.nodes[node].timers if node else self.cluster.timers
        return timers.schedule(when, callback)

    def queue_unused(self, queue: ClassicQueue) -> None:
        if not queue.deleted:
            self.delete_queue(queue.name)

    # -- exchanges ------------------------------------------------------------------------

    def exchange(self, name: str) -> Exchange:
        ex = self.exchanges.get(name)
        if ex is None:
            raise AMQPError.of("no_exchange", name=name, vhost=self.name)
        return ex

    def declare_exchange(
        self,
        name: str,
        type_: str,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: dict,
        check_alternate: Callable[[str], None] | None = None,
    ) -> Exchange:
        """Declare (or check) an exchange. A new exchange's ``alternate-exchange`` must be
        a longstr; ``check_alternate(ae)`` then runs before it is created (the channel's
        read/write permission checks, rabbit_channel exchange.declare)."""
        if passive:
            return self.exchange(name)
        from broker_sim.exchanges import EXCHANGE_TYPES

        if type_ not in EXCHANGE_TYPES:
            raise AMQPError.of("exchange_type", type=type_)
        arguments = dict(arguments or {})
        existing = self.exchanges.get(name)
        if existing is not None:  # amq.* too: rabbit_channel checks the name only when new
            self._check_exchange_equivalent(
                existing, type_, durable, auto_delete, internal, arguments
            )
            return existing
        if name.startswith("amq."):
            raise AMQPError.of("exchange_reserved", name=name)
        if ALTERNATE_EXCHANGE in arguments:
            ae = arguments[ALTERNATE_EXCHANGE]
            if not isinstance(ae, str) and type(ae) is not bytes:  # longstr only
                raise AMQPError.of(
                    "exchange_arg_type",
                    type=amqp_type(ae),
                    arg=ALTERNATE_EXCHANGE,
                    name=name,
                    vhost=self.name,
                )
            if check_alternate is not None:
                check_alternate(ae.decode() if isinstance(ae, bytes) else ae)
        ex = Exchange(name, type_, durable, auto_delete, internal, arguments)
        ex.policy_alternate = policies.exchange_alternate(self.policies, ex)
        self.exchanges[name] = ex
        return ex

    def _check_exchange_equivalent(
        self, ex: Exchange, type_, durable, auto_delete, internal, arguments=None
    ):
        self._check_equivalent(
            "exchange_inequivalent",
            ex.name,
            (
                ("type", type_, ex.type),
                ("durable", durable, ex.durable),
                ("auto_delete", auto_delete, ex.auto_delete),
                ("internal", internal, ex.internal),
            ),
        )
        for key in EQUIVALENT_EXCHANGE_ARGS:
            differs = arg_inequivalence(ex.arguments, arguments or {}, key)
            if differs is not None:
                raise AMQPError.of(
                    "exchange_inequivalent",
                    arg=key,
                    name=ex.name,
                    vhost=self.name,
                    received=differs[0],
                    current=differs[1],
                )

    def _check_equivalent(self, key: str, name: str, triples) -> None:
        """406 for the first ``(arg, received, current)`` that differs (rabbit_misc)."""
        for arg, received, current in triples:
            if received != current:
                raise AMQPError.of(
                    key,
                    arg=arg,
                    name=name,
                    vhost=self.name,
                    received=quoted(received),
                    current=quoted(current),
                )

    def delete_exchange(self, name: str, if_unused: bool) -> None:
        if name == "" or name.startswith("amq."):
            raise (
                AMQPError.of("default_exchange_op")
                if name == ""
                else AMQPError.of("exchange_reserved", name=name)
            )
        ex = self.exchanges.get(name)
        if ex is None:
            return  # RabbitMQ 3.x: deleting a missing exchange succeeds
        if if_unused and ex.bindings:
            raise AMQPError.of("exchange_in_use", name=name, vhost=self.name)
        del self.exchanges[name]
        self._drop_bindings(
            lambda b: b.source == name or (b.dest_kind == "exchange" and b.destination == name)
        )

    # -- bindings -------------------------------------------------------------------------

    def bind(self, source: str, dest: str, dest_kind: str, key: str, args: dict) -> None:
        if source == "":
            raise AMQPError.of("default_exchange_op")
        self._destination(dest, dest_kind)
        src = self.exchange(source)
        src.bindings[Binding(source, dest, dest_kind, key, freeze_args(args))] = None

    def unbind(self, source: str, dest: str, dest_kind: str, key: str, args: dict) -> None:
        """rabbit_binding:remove: a missing source, destination or binding is unbind-ok
        (only the default exchange is refused, by rabbit_channel, before this)."""
        if source == "":
            raise AMQPError.of("default_exchange_op")
        src = self.exchanges.get(source)
        missing_dest = dest not in (self.queues if dest_kind == "queue" else self.exchanges)
        binding = Binding(source, dest, dest_kind, key, freeze_args(args))
        if src is None or missing_dest or binding not in src.bindings:
            return
        del src.bindings[binding]
        self._maybe_auto_delete(src)

    def _destination(self, name: str, kind: str) -> None:
        if kind == "queue":
            self.queue(name)
        else:
            self.exchange(name)

    def _drop_bindings(self, doomed: Callable[[Binding], bool]) -> None:
        for ex in list(self.exchanges.values()):
            before = len(ex.bindings)
            for b in [b for b in ex.bindings if doomed(b)]:
                del ex.bindings[b]
            if before and len(ex.bindings) < before:
                self._maybe_auto_delete(ex)

    def _maybe_auto_delete(self, ex: Exchange) -> None:
        if ex.auto_delete and not ex.bindings and ex.name in self.exchanges:
            self.delete_exchange(ex.name, if_unused=False)

    # -- queues ---------------------------------------------------------------------------

    def queue(self, name: str) -> ClassicQueue:
        q = self.queues.get(name)
        if q is None:
            raise AMQPError.of("no_queue", name=name, vhost=self.name)
        return q

    def declare_queue(
        self,
        name: str,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: dict,
        owner: object,
        server_named: bool = False,
    ) -> DeclareResult:
        if passive:
            q = self.usable_queue(name, owner)
            q.touch()  # a declare is a use: it restarts x-expires
            return DeclareResult(q, False)
        if name.startswith("amq.") and not server_named:
            raise AMQPError.of("queue_reserved", name=name)
        arguments = dict(arguments or {})
        existing = self.queues.get(name)
        if existing is not None:
            self.usable_queue(name, owner)
            if (existing.exclusive_owner is not None) != exclusive:
                # rabbit_amqqueue:assert_equivalence -> check_exclusive_access(.., strict)
                raise AMQPError.of("queue_locked", name=name, vhost=self.name)
            self._check_queue_equivalent(existing, durable, auto_delete, arguments)
            existing.touch()
            return DeclareResult(existing, False)
        self._validate_queue_args(name, arguments)
        self.check_limit("max-queues", len(self.queues), "vhost_queue_limit", name=name)
        queue_type = arguments.get("x-queue-type", "classic")
        if queue_type not in QUEUE_TYPES:
            raise AMQPError.of(
                "not_implemented", detail=f"Warren does not simulate {queue_type} queues"
            )
        cls = QUEUE_TYPES[queue_type]
        q = cls.create(
            name,
            self,
            durable=durable,
            exclusive_owner=owner if exclusive else None,
            auto_delete=auto_delete,
            arguments=arguments,
            node=owner.node.name,
        )
        self.queues[name] = q
        policy = policies.choose(self.policies, q)
        if policy is not None:
            q.apply_policy(policy)
        return DeclareResult(q, True)

    def set_policy(self, name: str, pattern: str, definition: dict, priority: int = 0,
                   apply_to: str = "all") -> None:  # fmt: skip
        """rabbitmqctl set_policy: re-applies to every queue of the vhost at once."""
        policies.validate(name, pattern, definition, apply_to)
        self.policies[name] = policies.Policy(name, pattern, dict(definition), priority, apply_to)
        self._reapply_policies()

    def clear_policy(self, name: str) -> None:
        if self.policies.pop(name, None) is not None:
            self._reapply_policies()

    def _reapply_policies(self) -> None:
        for ex in self.exchanges.values():
            ex.policy_alternate = policies.exchange_alternate(self.policies, ex)
        for q in self.queues.values():
            chosen = policies.choose(self.policies, q)
            if chosen is not None or q.policy is not None:
                q.apply_policy(chosen)
            self.dirty[q] = None

    def check_limit(self, key: str, count: int, reply: str, **fields) -> None:
        """rabbit_vhost_limit: refuse one more when ``count`` already reached the limit."""
        limit = self.limits.get(key)
        if limit is not None and limit >= 0 and count >= limit:
            raise AMQPError.of(reply, vhost=self.name, limit=limit, **fields)

    def usable_queue(self, name: str, conn) -> ClassicQueue:
        """The queue, checked for exclusive ownership and reachability from ``conn``'s node."""
        q = self.queue(name)
        self.check_exclusive(q, conn)
        if q.kind == "classic" and not self.cluster.reachable(conn.node.name, q.node):
            raise AMQPError.of("home_node_down", node=q.node, name=q.name, vhost=self.name)
        return q

    def check_exclusive(self, q: ClassicQueue, owner: object) -> None:
        if q.exclusive_owner is not None and q.exclusive_owner is not owner:
            raise AMQPError.of("queue_locked", name=q.name, vhost=self.name)

    def _validate_queue_args(self, name: str, arguments: dict) -> None:
        for arg, value in arguments.items():
            rule = QUEUE_ARG_RULES.get(arg)
            if rule is None:
                continue
            types, ok, why = rule
            if isinstance(value, bytes):
                value = arguments[arg] = value.decode()
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise AMQPError.of(
                    "queue_arg_invalid",
                    arg=arg,
                    name=name,
                    vhost=self.name,
                    why=f"{{unacceptable_type,{_amqp_type(value)}}}",
                )
            if not ok(value):
                raise AMQPError.of(
                    "queue_arg_invalid", arg=arg, name=name, vhost=self.name, why=why % value
                )

    def _check_queue_equivalent(self, q, durable, auto_delete, arguments) -> None:
        triples = [
            ("durable", durable, q.durable),
            ("auto_delete", auto_delete, q.auto_delete),
        ]
        for arg in EQUIVALENT_ARGS:
            received, current = arguments.get(arg), q.arguments.get(arg)
            if arg == "x-queue-type" and {received, current} <= {None, "classic"}:
                continue
            triples.append((arg, received, current))
        self._check_equivalent("queue_inequivalent", q.name, triples)

    def delete_queue(
        self, name: str, if_unused: bool = False, if_empty: bool = False, on_deleted=None
    ) -> int:
        """Delete ``name``; ``on_deleted(count)`` runs once it is gone and before its
        consumers hear basic.cancel, as RabbitMQ's delete-ok (a synchronous call to the
        queue) precedes the cancel the channel sends when it sees the queue go."""
        q = self.queue(name)
        if if_unused and q.consumers:
            raise AMQPError.of("queue_in_use", name=name, vhost=self.name)
        if if_empty and q.message_count:
            raise AMQPError.of("queue_not_empty", name=name, vhost=self.name)
        count = q.message_count
        del self.queues[name]
        self.dirty.pop(q, None)
        q.shutdown()
        if on_deleted is not None:
            on_deleted(count)
        for consumer in list(q.consumers):
            consumer.channel.server_cancel(consumer)
        q.consumers.clear()
        self._drop_bindings(lambda b: b.dest_kind == "queue" and b.destination == name)
        return count

    # -- publishing -----------------------------------------------------------------------

    def route(self, exchange: str, routing_key: str, headers: dict) -> list[str]:
        if exchange == "":
            return [routing_key] if routing_key in self.queues else []
        return route(self.exchanges, exchange, routing_key, headers)

    def enqueue(self, queue_names: list[str], message: Message, on_commit=None) -> tuple[list, int]:
        """Enqueue in every named queue. Return the names that refused (reject-publish, or
        a classic queue whose node is down: the publisher's confirm is a nack) and how many
        queues will call ``on_commit(ok)`` later (a quorum queue without quorum)."""
        refused: list[str] = []
        waiting = 0
        for name in queue_names:
            q = self.queues.get(name)
            if q is None:
                continue
            if not q.accepts_publishes():
                # a classic queue whose node is down drops the message; the publisher's
                # monitor of the queue process fires at once (noconnection), which
                # rabbit_classic_queue:handle_event turns into a reject: basic.nack
                refused.append(name)
                continue
            if not q.available():
                q.hold(message, on_commit)
                waiting += 1
                continue
            if q.would_reject(message):
                refused.append(name)
                if q.overflow == "reject-publish-dlx":
                    self._dead_letter_message(q, message, "maxlen", QueuedMessage(message, 0, 0))
                continue
            q.publish(message)
            if q.consumers:
                self.dirty[q] = None
        return refused, waiting

    # -- the cluster's view ---------------------------------------------------------------

    def dispatch(self) -> None:
        while self.dirty:
            queues = list(self.dirty)
            self.dirty.clear()
            for queue in queues:
                if not queue.deleted and queue.available():
                    queue.dispatch()

    def node_down(self, node: str) -> None:
        """A node died or stopped: its transient classic queues go, durable ones lose
        their transient messages and are recovered from disk (rabbit_amqqueue:on_node_down)."""
        for q in list(self.queues.values()):
            if q.kind != "classic" or q.node != node:
                continue
            if q.durable:
                q.crash_recover()
                for consumer in list(q.consumers):
                    q.consumers.remove(consumer)
                    consumer.channel.server_cancel(consumer)
            else:
                self.delete_queue(q.name)

    def topology_changed(self) -> None:
        """Nodes or links changed: elect leaders; consumers cut off from their queue's node
        are dropped and their unacked deliveries return to the queue, once the cluster
        sees it (at once for a crash, stop or partition; after ``net_ticktime`` for a hang:
        ``Cluster.seen_reachable``)."""
        cluster = self.cluster
        for q in list(self.queues.values()):
            q.topology_changed()
            serving = q.serving_node
            for consumer in list(q.consumers):
                node = consumer.channel.conn.node.name
                if cluster.seen_down(node):  # the queue's monitor fires: it takes its
                    q.consumers.remove(consumer)  # deliveries back (quorum: leader or not)
                    consumer.channel.release_queue(q)
                elif serving is None or cluster.seen_reachable(node, serving):
                    continue
                elif q.kind == "classic":
                    q.consumers.remove(consumer)
                    consumer.channel.server_cancel(consumer)
            self.dirty[q] = None

    # -- dead-lettering (rabbit_dead_letter.erl, 3.13+ x-death layout) ---------------------

    def dead_letter(self, queue: ClassicQueue, qm: QueuedMessage, reason: str) -> None:
        self._dead_letter_message(queue, qm.message, reason, qm)

    def dead_letter_confirmed(self, queue, qm: QueuedMessage, reason: str) -> bool:
        """At-least-once dead-lettering: True once a target queue accepted the message
        (rabbit_fifo_dlx waits for the target's confirm; a target down does not confirm)."""
        routed = self._dead_letter_route(queue, qm.message, reason)
        if routed is None:
            return False
        dead, targets = routed
        takers = [t for t in targets if t in self.queues and self.queues[t].available()]
        if not takers:
            return False
        self.enqueue(takers, dead)
        return True

    def _dead_letter_message(self, queue, message: Message, reason: str, qm) -> None:
        routed = self._dead_letter_route(queue, message, reason)
        if routed is not None:
            dead, targets = routed
            self.enqueue(targets, dead)

    def _dead_letter_route(self, queue, message: Message, reason: str):
        """The dead letter (x-death headers written, the DLX and key it goes by) and the
        queues the DLX routes it to, automatic cycles dropped; None without a usable DLX."""
        if queue.dlx is None or queue.dlx not in self.exchanges:
            return None
        props = dead_letter_properties(message, queue, reason, self.now())
        key = queue.dlrk if queue.dlrk is not None else message.routing_key
        targets = self.route(queue.dlx, key, props.headers or {})
        targets = [t for t in targets if not is_cycle(t, reason, props.headers)]
        return message.with_properties(props, queue.dlx, key), targets


def _amqp_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, str):
        return "longstr"
    if isinstance(value, float):
        return "double"
    return type(value).__name__
