"""Policies (rabbitmqctl set_policy): queue settings by name pattern, without redeclaring.

Theory of operation. A vhost holds named policies: a regular expression matched anywhere in
a queue's name (Erlang's re:run, so ``^orders`` anchors), an ``apply-to`` (``all``,
``queues``, ``classic_queues``, ``quorum_queues``), a priority and a definition whose keys
are the queue arguments without their ``x-`` (``max-length``, ``dead-letter-exchange``,
...) and, for exchanges, ``alternate-exchange``. A queue or exchange follows the one
matching policy with the highest priority (ties: the name that sorts last, as
rabbit_policy). What the queue then does (:func:`effective`) merges the
policy with the queue's own x-arguments as RabbitMQ does (rabbit_queue_type_util /
rabbit_policy:merge_policy_value): for the limits the stricter value wins, for everything
else the queue's argument wins. Setting or clearing a policy re-applies it to every queue
of the vhost at once; the queue's declared arguments (what redeclaration is checked
against) never change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from broker_sim.errors import AMQPError

APPLY_TO = ("all", "queues", "classic_queues", "quorum_queues", "exchanges")
#: definition keys that act on queues -> the queue argument they stand for
QUEUE_KEYS = {
    key: f"x-{key}"
    for key in (
        "message-ttl",
        "expires",
        "max-length",
        "max-length-bytes",
        "overflow",
        "dead-letter-exchange",
        "dead-letter-routing-key",
        "delivery-limit",
        "dead-letter-strategy",
        "consumer-timeout",
        "queue-mode",
    )
}
#: where both are set the smaller value applies (rabbit_policy:merge_policy_value)
STRICTER_WINS = ("x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes",
                 "x-delivery-limit", "x-consumer-timeout")  # fmt: skip


@dataclass
class Policy:
    name: str
    pattern: str
    definition: dict
    priority: int = 0
    apply_to: str = "all"

    def applies_to_exchange(self, exchange) -> bool:
        if self.apply_to not in ("all", "exchanges") or exchange.name.startswith("amq."):
            return False
        return exchange.name != "" and re.search(self.pattern, exchange.name) is not None

    def applies(self, queue) -> bool:
        if self.apply_to == "exchanges":
            return False
        kind = {"classic_queues": "classic", "quorum_queues": "quorum"}.get(self.apply_to)
        if kind is not None and queue.kind != kind:
            return False
        return re.search(self.pattern, queue.name) is not None


def validate(name: str, pattern: str, definition: dict, apply_to: str) -> None:
    """A bad policy is refused before anything changes (rabbitmqctl's validation)."""
    if apply_to not in APPLY_TO:
        raise AMQPError(400, f"invalid apply-to {apply_to!r}: one of {', '.join(APPLY_TO)}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise AMQPError(400, f"policy {name!r}: invalid pattern {pattern!r}: {exc}") from None
    if not isinstance(definition, dict) or not definition:
        raise AMQPError(400, f"policy {name!r}: the definition must be a non-empty object")


def choose(policies: dict[str, Policy], queue) -> Policy | None:
    matching = [p for p in policies.values() if p.applies(queue)]
    return max(matching, key=lambda p: (p.priority, p.name), default=None)


def exchange_alternate(policies: dict[str, Policy], exchange) -> str | None:
    """The ``alternate-exchange`` of the policy that applies to ``exchange``, if any."""
    matching = [p for p in policies.values() if p.applies_to_exchange(exchange)]
    chosen = max(matching, key=lambda p: (p.priority, p.name), default=None)
    value = chosen.definition.get("alternate-exchange") if chosen is not None else None
    return value if isinstance(value, str) else None


def effective(arguments: dict, policy: Policy | None) -> dict:
    """The x-arguments a queue acts on: its own, merged with its policy's."""
    merged = dict(arguments)
    if policy is None:
        return merged
    for key, value in policy.definition.items():
        arg = QUEUE_KEYS.get(key)
        if arg is None:
            continue
        if arg not in merged:
            merged[arg] = value
        elif arg in STRICTER_WINS:
            merged[arg] = min(merged[arg], value)
    return merged
