"""Messages as the broker stores them.

A :class:`Message` is immutable once published; a :class:`QueuedMessage` is one queue's copy
of it (RabbitMQ routes one message to several queues; each keeps its own redelivered flag,
expiry and position).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pamqp import commands

from broker_sim.framing import header_payload

Properties = commands.Basic.Properties


@dataclass(slots=True)
class Message:
    exchange: str
    routing_key: str
    properties: Properties
    body: bytes
    raw_header: bytes | None = None  # the publisher's content-header payload, reused verbatim

    @property
    def persistent(self) -> bool:
        return self.properties.delivery_mode == 2

    @property
    def headers(self) -> dict:
        return self.properties.headers or {}

    def header_bytes(self) -> bytes:
        if self.raw_header is None:
            self.raw_header = header_payload(self.properties, len(self.body))
        return self.raw_header

    def with_properties(self, properties: Properties, exchange: str, routing_key: str) -> Message:
        """A copy with new properties (dead-lettering rewrites headers)."""
        return Message(exchange, routing_key, properties, self.body)

    def with_headers(self, headers: dict) -> Message:
        """A copy whose headers are ``headers`` (a quorum queue's x-delivery-count)."""
        old = self.properties
        fields = {k: getattr(old, k) for k in old.attributes()}
        fields["headers"] = headers
        return Message(self.exchange, self.routing_key, Properties(**fields), self.body)


@dataclass(slots=True)
class QueuedMessage:
    message: Message
    seq: int
    enqueued_at: float
    expires_at: float | None = None
    redelivered: bool = False
    priority: int = 0
    delivery_count: int = 0
    extra: dict = field(default_factory=dict)
