"""Exchange types and routing (AMQP 0-9-1 section 3.1.3; RabbitMQ's exchange type modules).

Theory of operation: an :class:`Exchange` holds its bindings; ``route`` returns the bindings'
destinations that match. :func:`route` follows exchange-to-exchange bindings (a RabbitMQ
extension) breadth-first, visiting each exchange once, and returns the set of queue names.
Each type's matcher is registered by name in :data:`EXCHANGE_TYPES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Binding:
    source: str
    destination: str
    dest_kind: str  # "queue" or "exchange"
    routing_key: str
    arguments: tuple = ()  # sorted (key, value) pairs, hashable

    @property
    def args(self) -> dict:
        return dict(self.arguments)


def freeze_args(arguments: dict | None) -> tuple:
    return tuple(sorted((arguments or {}).items(), key=lambda kv: kv[0]))


@dataclass(slots=True)
class Exchange:
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: dict = field(default_factory=dict)
    bindings: dict[Binding, None] = field(default_factory=dict)  # ordered set

    def matches(self, routing_key: str, headers: dict) -> list[Binding]:
        return EXCHANGE_TYPES[self.type](self, routing_key, headers)


def _direct(ex: Exchange, key: str, headers: dict) -> list[Binding]:
    return [b for b in ex.bindings if b.routing_key == key]


def _fanout(ex: Exchange, key: str, headers: dict) -> list[Binding]:
    return list(ex.bindings)


def topic_matches(pattern: str, key: str) -> bool:
    """RabbitMQ topic matching: '*' is exactly one word, '#' is zero or more words."""
    return _topic(_words(pattern), _words(key))


def _words(key: str) -> list[str]:
    """An empty routing key has no words (rabbit_exchange_type_topic)."""
    return key.split(".") if key else []


def _topic(pat: list[str], words: list[str]) -> bool:
    if not pat:
        return not words
    head, rest = pat[0], pat[1:]
    if head == "#":
        return any(_topic(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    if head == "*" or head == words[0]:
        return _topic(rest, words[1:])
    return False


def _topic_route(ex: Exchange, key: str, headers: dict) -> list[Binding]:
    return [b for b in ex.bindings if topic_matches(b.routing_key, key)]


def headers_match(binding_args: dict, headers: dict) -> bool:
    """rabbit_exchange_type_headers: x-match all (default) / any / all-with-x / any-with-x."""
    mode = binding_args.get("x-match", "all")
    if isinstance(mode, bytes):
        mode = mode.decode()
    with_x = mode.endswith("-with-x")
    wanted = {
        k: v
        for k, v in binding_args.items()
        if k != "x-match" and (with_x or not k.startswith("x-"))
    }
    if mode.startswith("any"):
        return any(_header_hit(k, v, headers) for k, v in wanted.items())
    return all(_header_hit(k, v, headers) for k, v in wanted.items())


def _header_hit(key: str, value: object, headers: dict) -> bool:
    if key not in headers:
        return False
    return value is None or value == "" or headers[key] == value


def _headers_route(ex: Exchange, key: str, headers: dict) -> list[Binding]:
    return [b for b in ex.bindings if headers_match(b.args, headers)]


EXCHANGE_TYPES: dict[str, Callable[[Exchange, str, dict], list[Binding]]] = {
    "direct": _direct,
    "fanout": _fanout,
    "topic": _topic_route,
    "headers": _headers_route,
}

#: Exchanges every vhost has (RabbitMQ's rabbit_exchange:declare_default / amq.* set).
PREDECLARED = (
    ("", "direct"),
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
    ("amq.rabbitmq.trace", "topic"),
)


def route(exchanges: dict[str, Exchange], start: str, key: str, headers: dict) -> list[str]:
    """Queue names reached from exchange ``start``, in first-match order, without repeats."""
    seen_ex = {start}
    frontier = [start]
    queues: dict[str, None] = {}
    while frontier:
        ex = exchanges.get(frontier.pop(0))
        if ex is None:
            continue
        for b in ex.matches(key, headers):
            if b.dest_kind == "queue":
                queues[b.destination] = None
            elif b.destination not in seen_ex:
                seen_ex.add(b.destination)
                frontier.append(b.destination)
    return list(queues)
