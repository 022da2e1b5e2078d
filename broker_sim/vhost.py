"""A virtual host: exchanges, queues, bindings and the operations on them.

Theory of operation. Channels call the ``declare_*``/``delete_*``/``bind``/``publish``
methods here; each validates exactly as RabbitMQ does (reserved ``amq.`` names,
equivalence of redeclarations, argument types) and raises
:class:`~broker_sim.errors.AMQPError` with RabbitMQ's reply. ``publish`` routes a message
(default exchange, exchange types, exchange-to-exchange bindings) and enqueues a copy in
each queue; dead-lettering republishes through the queue's dead-letter exchange with the
``x-death`` header RabbitMQ 3.13+ writes. Queues that become dispatchable are collected in
``dirty`` for the node to dispatch once per input batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker_sim.errors import AMQPError, quoted
from broker_sim.exchanges import PREDECLARED, Binding, Exchange, freeze_args, route
from broker_sim.message import Message, Properties, QueuedMessage
from broker_sim.queues import ClassicQueue

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
    "x-queue-type",
)


@dataclass
class DeclareResult:
    queue: ClassicQueue
    created: bool


class VHost:
    def __init__(self, name: str, node) -> None:
        self.name = name
        self.node = node  # the owning Node: clock, timers, cancel notifications
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, ClassicQueue] = {}
        self.dirty: dict[ClassicQueue, None] = {}
        for ex_name, ex_type in PREDECLARED:
            self.exchanges[ex_name] = Exchange(ex_name, ex_type, durable=True)

    # -- QueueHost protocol ---------------------------------------------------------------

    def now(self) -> float:
        return self.node.now()

    def schedule(self, when: float, callback):
        return self.node.timers.schedule(when, callback)

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
    ) -> Exchange:
        if passive:
            return self.exchange(name)
        if name.startswith("amq."):
            raise AMQPError.of("exchange_reserved", name=name)
        from broker_sim.exchanges import EXCHANGE_TYPES

        if type_ not in EXCHANGE_TYPES:
            raise AMQPError.of("exchange_type", type=type_)
        existing = self.exchanges.get(name)
        if existing is not None:
            self._check_exchange_equivalent(existing, type_, durable, auto_delete, internal)
            return existing
        ex = Exchange(name, type_, durable, auto_delete, internal, dict(arguments or {}))
        self.exchanges[name] = ex
        return ex

    def _check_exchange_equivalent(self, ex: Exchange, type_, durable, auto_delete, internal):
        for arg, received, current in (
            ("type", type_, ex.type),
            ("durable", durable, ex.durable),
            ("auto_delete", auto_delete, ex.auto_delete),
            ("internal", internal, ex.internal),
        ):
            if received != current:
                raise AMQPError.of(
                    "exchange_inequivalent",
                    arg=arg,
                    name=ex.name,
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
        if source == "":
            raise AMQPError.of("default_exchange_op")
        self._destination(dest, dest_kind)
        src = self.exchange(source)
        src.bindings.pop(Binding(source, dest, dest_kind, key, freeze_args(args)), None)
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
    ) -> DeclareResult:
        if passive:
            q = self.queue(name)
            self.check_exclusive(q, owner)
            return DeclareResult(q, False)
        if name.startswith("amq."):
            raise AMQPError.of("queue_reserved", name=name)
        arguments = dict(arguments or {})
        existing = self.queues.get(name)
        if existing is not None:
            self.check_exclusive(existing, owner)
            self._check_queue_equivalent(existing, durable, exclusive, auto_delete, arguments)
            return DeclareResult(existing, False)
        self._validate_queue_args(name, arguments)
        q = ClassicQueue(
            name,
            self.name,
            self,
            durable=durable,
            exclusive_owner=owner if exclusive else None,
            auto_delete=auto_delete,
            arguments=arguments,
            node=self.node.name,
        )
        self.queues[name] = q
        return DeclareResult(q, True)

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
            if isinstance(value, bool) or not isinstance(value, types):
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

    def _check_queue_equivalent(self, q, durable, exclusive, auto_delete, arguments) -> None:
        for arg, received, current in (
            ("durable", durable, q.durable),
            ("exclusive", exclusive, q.exclusive_owner is not None),
            ("auto_delete", auto_delete, q.auto_delete),
        ):
            if received != current:
                raise AMQPError.of(
                    "queue_inequivalent",
                    arg=arg,
                    name=q.name,
                    vhost=self.name,
                    received=quoted(received),
                    current=quoted(current),
                )
        for arg in EQUIVALENT_ARGS:
            received, current = arguments.get(arg), q.arguments.get(arg)
            if arg == "x-queue-type" and {received, current} <= {None, "classic"}:
                continue
            if received != current:
                raise AMQPError.of(
                    "queue_inequivalent",
                    arg=arg,
                    name=q.name,
                    vhost=self.name,
                    received=_describe(received),
                    current=_describe(current),
                )

    def delete_queue(self, name: str, if_unused: bool = False, if_empty: bool = False) -> int:
        q = self.queue(name)
        if if_unused and q.consumers:
            raise AMQPError.of("queue_in_use", name=name, vhost=self.name)
        if if_empty and q.message_count:
            raise AMQPError.of("queue_not_empty", name=name, vhost=self.name)
        count = q.message_count
        del self.queues[name]
        self.dirty.pop(q, None)
        q.shutdown()
        for consumer in list(q.consumers):
            self.node.server_cancel(consumer, q)
        q.consumers.clear()
        self._drop_bindings(lambda b: b.dest_kind == "queue" and b.destination == name)
        return count

    # -- publishing -----------------------------------------------------------------------

    def route(self, exchange: str, routing_key: str, headers: dict) -> list[str]:
        if exchange == "":
            return [routing_key] if routing_key in self.queues else []
        return route(self.exchanges, exchange, routing_key, headers)

    def enqueue(self, queue_names: list[str], message: Message) -> list[str]:
        """Enqueue in every named queue; return the names that refused (reject-publish)."""
        refused = []
        for name in queue_names:
            q = self.queues.get(name)
            if q is None:
                continue
            if q.would_reject(message):
                refused.append(name)
                if q.overflow == "reject-publish-dlx":
                    self._dead_letter_message(q, message, "maxlen", QueuedMessage(message, 0, 0))
                continue
            q.publish(message)
            if q.consumers:
                self.dirty[q] = None
        return refused

    # -- dead-lettering (rabbit_dead_letter.erl, 3.13+ x-death layout) ---------------------

    def dead_letter(self, queue: ClassicQueue, qm: QueuedMessage, reason: str) -> None:
        self._dead_letter_message(queue, qm.message, reason, qm)

    def _dead_letter_message(self, queue, message: Message, reason: str, qm) -> None:
        if queue.dlx is None or queue.dlx not in self.exchanges:
            return
        props = _dead_letter_properties(message, queue, reason, self.now())
        keys = [queue.dlrk] if queue.dlrk is not None else [message.routing_key]
        for key in keys:
            dead = message.with_properties(props, queue.dlx, key)
            targets = self.route(queue.dlx, key, props.headers or {})
            targets = [t for t in targets if not _is_cycle(t, reason, props.headers)]
            self.enqueue(targets, dead)


def _dead_letter_properties(message: Message, queue, reason: str, now: float) -> Properties:
    old = message.properties
    headers = dict(old.headers or {})
    deaths = [dict(d) for d in headers.get("x-death", [])]
    entry = next(
        (d for d in deaths if d.get("queue") == queue.name and d.get("reason") == reason), None
    )
    if entry is not None:
        deaths.remove(entry)
        entry["count"] = entry.get("count", 1) + 1
        entry["time"] = _timestamp(now)
    else:
        entry = {
            "count": 1,
            "reason": reason,
            "queue": queue.name,
            "time": _timestamp(now),
            "exchange": message.exchange,
            "routing-keys": [message.routing_key],
        }
        if old.expiration is not None:
            entry["original-expiration"] = old.expiration
    deaths.insert(0, entry)
    headers["x-death"] = deaths
    headers.setdefault("x-first-death-reason", reason)
    headers.setdefault("x-first-death-queue", queue.name)
    headers.setdefault("x-first-death-exchange", message.exchange)
    headers["x-last-death-reason"] = reason
    headers["x-last-death-queue"] = queue.name
    headers["x-last-death-exchange"] = message.exchange
    fields = {k: getattr(old, k) for k in old.attributes()}
    fields["headers"] = headers
    fields["expiration"] = None
    return Properties(**fields)


def _timestamp(now: float):
    import datetime as _dt

    return _dt.datetime.fromtimestamp(int(now), tz=_dt.UTC).replace(tzinfo=None)


def _is_cycle(target: str, reason: str, headers: dict | None) -> bool:
    """rabbit_dead_letter:is_cycle: drop automatic cycles, allow those through a reject."""
    deaths = (headers or {}).get("x-death", [])
    seen = [d for d in deaths if d.get("queue") == target]
    if not seen:
        return False
    return not any(d.get("reason") == "rejected" for d in deaths)


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


def _describe(value: object) -> str:
    if value is None:
        return "none"
    return f"the value '{value}' of type '{_amqp_type(value)}'"
