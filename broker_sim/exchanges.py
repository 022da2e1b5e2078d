"""Exchange types and routing (AMQP 0-9-1 section 3.1.3; RabbitMQ's exchange type modules).

Theory of operation: an :class:`Exchange` holds its bindings; ``route`` returns the bindings'
destinations that match. :func:`route` follows exchange-to-exchange bindings (a RabbitMQ
extension) breadth-first, visiting each exchange once, and returns the set of queue names.
Each type's matcher is registered by name in :data:`EXCHANGE_TYPES`.

Alternate exchanges (RabbitMQ docs "Alternate Exchanges"; rabbit_exchange:route1 and
process_alternate, 3.10 and 3.13 alike): an exchange none of whose bindings matches (not
even one to another exchange) passes the message on to the exchange its
``alternate-exchange`` argument names, which may have an alternate of its own. The
visited-once rule makes cycles harmless, an alternate that does not exist routes nowhere,
and an exchange reached by a binding that routes nowhere uses its own alternate, never the
alternate of the exchange that bound it. The argument wins over a policy's
``alternate-exchange`` (broker_sim.policies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from broker_sim.errors import quoted


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
    policy_alternate: str | None = None  # a policy's alternate-exchange (broker_sim.policies)

    def matches(self, routing_key: str, headers: dict) -> list[Binding]:
        return EXCHANGE_TYPES[self.type](self, routing_key, headers)

    @property
    def alternate(self) -> str | None:
        """The ``alternate-exchange`` argument (a longstr, checked at declare time), else
        the one its policy names (the argument wins, as rabbit_exchange)."""
        ae = self.arguments.get(ALTERNATE_EXCHANGE) if self.arguments else None
        if isinstance(ae, bytes):  # a longstr that is not UTF-8
            ae = ae.decode("utf-8", "replace")
        return ae if isinstance(ae, str) else self.policy_alternate


ALTERNATE_EXCHANGE = "alternate-exchange"
#: The exchange arguments RabbitMQ compares on redeclaration (rabbit_exchange:
#: assert_args_equivalence; the type modules add none).
EQUIVALENT_EXCHANGE_ARGS = (ALTERNATE_EXCHANGE,)


def amqp_type(value: object) -> str:
    """The field-table type RabbitMQ names for a value as pamqp decodes it: pika and
    py-amqp send an int as signedint when it fits 32 bits (long otherwise) and bytes as a
    byte array (binary, decoded as a bytearray); a longstr decodes as str (bytes when not
    UTF-8)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, bytearray):
        return "binary"
    if isinstance(value, (str, bytes)):
        return "longstr"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, (list, tuple)):
        return "array"
    if value is None:
        return "void"
    return {"datetime": "timestamp", "Decimal": "decimal"}.get(type(value).__name__, "longstr")


def _text(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


def _same_term(a: object, b: object) -> bool:
    """Erlang's exact term match: true is not 1, 1.0 is not 1, a binary is its bytes."""
    if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, float) != isinstance(b, float):
        return False
    return _text(a) == _text(b)


def arg_inequivalence(current: dict, received: dict, key: str) -> tuple[str, str] | None:
    """rabbit_misc:assert_args_equivalence1 for one key: None when equivalent (present on
    both sides with the same value, whatever the field types), else the ``(received,
    current)`` texts of its 406: values present on both sides are shown bare (``'ae'``),
    one present on one side only with its type (``the value 'ae' of type 'longstr'``)
    against ``none``."""
    have, want = key in current, key in received
    if not have and not want:
        return None
    cur, new = current.get(key), received.get(key)
    if have and want:
        if _same_term(cur, new):
            return None
        return quoted(_text(new)), quoted(_text(cur))

    def typed(value):
        shown = str(value).lower() if isinstance(value, bool) else _text(value)
        return f"the value '{shown}' of type '{amqp_type(value)}'"

    return (typed(new) if want else "none"), (typed(cur) if have else "none")


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
    """Queue names reached from exchange ``start``, in first-match order, without repeats;
    an exchange no binding of which matches hands over to its alternate exchange."""
    seen_ex = {start}
    frontier = [start]
    queues: dict[str, None] = {}
    while frontier:
        ex = exchanges.get(frontier.pop(0))
        if ex is None:
            continue  # rabbit_exchange:cons_if_present: a missing exchange routes nowhere
        matched = ex.matches(key, headers)
        if not matched:
            ae = ex.alternate
            if ae is not None and ae not in seen_ex:
                seen_ex.add(ae)
                frontier.append(ae)
            continue
        for b in matched:
            if b.dest_kind == "queue":
                queues[b.destination] = None
            elif b.destination not in seen_ex:
                seen_ex.add(b.destination)
                frontier.append(b.destination)
    return list(queues)
