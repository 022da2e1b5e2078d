"""Exchanges and queues as kombu declares them (kombu.entity): declarations are also
recorded in the connection's topology so that recovery can replay them after a reconnect."""

from __future__ import annotations

from pamqp import commands as C


class Exchange:
    def __init__(
        self,
        name: str = "",
        type: str = "direct",
        channel=None,
        durable: bool = True,
        auto_delete: bool = False,
        delivery_mode: int | None = None,
        arguments: dict | None = None,
        passive: bool = False,
    ) -> None:
        self.name, self.type = name, type
        self.durable, self.auto_delete = durable, auto_delete
        self.delivery_mode = delivery_mode
        self.arguments = arguments or {}
        self.passive = passive
        self.channel = channel

    def __call__(self, channel) -> Exchange:
        return self.bind(channel)

    def bind(self, channel) -> Exchange:
        return Exchange(
            self.name,
            self.type,
            channel,
            self.durable,
            self.auto_delete,
            self.delivery_mode,
            self.arguments,
            self.passive,
        )

    def declare(self, channel=None, passive: bool | None = None) -> None:
        if self.name == "":
            return  # the default exchange always exists
        channel = channel or self.channel
        channel.declare_exchange(self, self.passive if passive is None else passive)

    def method(self, passive: bool = False) -> C.Exchange.Declare:
        return C.Exchange.Declare(
            exchange=self.name,
            exchange_type=self.type,
            passive=passive,
            durable=self.durable,
            auto_delete=self.auto_delete,
            arguments=self.arguments,
        )

    def __repr__(self) -> str:
        return f"<Exchange {self.name or '(default)'}({self.type})>"


class Queue:
    def __init__(
        self,
        name: str = "",
        exchange: Exchange | str | None = None,
        routing_key: str = "",
        channel=None,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        queue_arguments: dict | None = None,
        binding_arguments: dict | None = None,
        no_ack: bool | None = None,
        passive: bool = False,
    ) -> None:
        self.name = name
        self.exchange = Exchange(exchange) if isinstance(exchange, str) else exchange
        self.routing_key = routing_key
        self.durable, self.exclusive, self.auto_delete = durable, exclusive, auto_delete
        self.queue_arguments = queue_arguments or {}
        self.binding_arguments = binding_arguments or {}
        self.no_ack = no_ack
        self.passive = passive
        self.channel = channel

    def __call__(self, channel) -> Queue:
        return self.bind(channel)

    def bind(self, channel) -> Queue:
        return Queue(
            self.name,
            self.exchange,
            self.routing_key,
            channel,
            self.durable,
            self.exclusive,
            self.auto_delete,
            self.queue_arguments,
            self.binding_arguments,
            self.no_ack,
            self.passive,
        )

    def declare(self, channel=None) -> str:
        """Declare the exchange, the queue and the binding (kombu's Queue.declare)."""
        channel = channel or self.channel
        if self.exchange is not None and self.exchange.name:
            self.exchange.declare(channel)
        self.name = channel.declare_queue(self, self.passive)
        if self.exchange is not None and self.exchange.name:
            channel.bind_queue(self)
        return self.name

    def queue_declare(self, passive: bool = False):
        return self.channel.queue_declare_ok(self, passive)

    def method(self, passive: bool = False) -> C.Queue.Declare:
        return C.Queue.Declare(
            queue=self.name,
            passive=passive,
            durable=self.durable,
            exclusive=self.exclusive,
            auto_delete=self.auto_delete,
            arguments=self.queue_arguments,
        )

    def get(self, no_ack: bool | None = None, accept=None):
        return self.channel.get_message(self.name, bool(no_ack), accept)

    def purge(self) -> int:
        return self.channel.purge_queue(self.name)

    def delete(self, if_unused: bool = False, if_empty: bool = False) -> int:
        return self.channel.delete_queue(self.name, if_unused, if_empty)

    def __repr__(self) -> str:
        return f"<Queue {self.name} -> {self.exchange!r} -> {self.routing_key}>"
