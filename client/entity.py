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

    def declare(self, nowait: bool = False, passive: bool | None = None, channel=None) -> None:
        """kombu's declare. ``nowait`` is accepted and ignored: every declaration waits for
        its -ok, so an error names this declaration instead of closing the channel later."""
        if not isinstance(nowait, bool):  # kombu <= 4 call sites pass the channel first
            nowait, channel = False, nowait
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


class binding:  # noqa: N801 (kombu's name)
    """One more binding of a queue (kombu.entity.binding): ``Queue(bindings=[...])``."""

    def __init__(
        self,
        exchange: Exchange | str | None = None,
        routing_key: str = "",
        arguments: dict | None = None,
        unbind_arguments: dict | None = None,
    ) -> None:
        self.exchange = Exchange(exchange) if isinstance(exchange, str) else exchange
        self.routing_key = routing_key
        self.arguments = arguments or {}
        self.unbind_arguments = unbind_arguments or {}

    def __repr__(self) -> str:
        return f"<binding: {self.exchange!r} -> {self.routing_key}>"


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
        bindings: list[binding] | None = None,
        on_declared=None,
    ) -> None:
        self.name = name
        self.exchange = Exchange(exchange) if isinstance(exchange, str) else exchange
        self.routing_key = routing_key
        self.durable, self.exclusive, self.auto_delete = durable, exclusive, auto_delete
        self.queue_arguments = queue_arguments or {}
        self.binding_arguments = binding_arguments or {}
        self.no_ack = no_ack
        self.passive = passive
        self.bindings = list(bindings or [])
        self.on_declared = on_declared
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
            self.bindings,
            self.on_declared,
        )

    def declare(self, nowait: bool = False, channel=None) -> str:
        """Declare the exchange, the queue and its bindings (kombu's Queue.declare);
        ``on_declared(name, messages, consumers)`` runs after the queue's declare-ok.
        ``nowait`` is accepted and ignored (see Exchange.declare)."""
        if not isinstance(nowait, bool):  # declare(channel), as older kombu code calls it
            nowait, channel = False, nowait
        channel = channel or self.channel
        if self.exchange is not None and self.exchange.name:
            self.exchange.declare(channel=channel)
        for extra in self.bindings:
            if extra.exchange is not None and extra.exchange.name:
                extra.exchange.declare(channel=channel)
        ok = channel.declare_queue(self, self.passive)
        self.name = ok.queue
        if self.on_declared is not None:
            self.on_declared(ok.queue, ok.message_count, ok.consumer_count)
        if self.exchange is not None and self.exchange.name:
            channel.bind_queue(self)
        for extra in self.bindings:
            channel.bind_queue(self, extra.exchange, extra.routing_key, extra.arguments)
        return self.name

    def queue_declare(self, nowait: bool = False, passive: bool = False, channel=None):
        if isinstance(nowait, bool) is False:  # queue_declare(passive) from older code
            nowait, passive = False, nowait
        return (channel or self.channel).queue_declare_ok(self, passive)

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

    def purge(self, nowait: bool = False) -> int:
        return self.channel.purge_queue(self.name)

    def delete(self, if_unused: bool = False, if_empty: bool = False, nowait: bool = False) -> int:
        return self.channel.delete_queue(self.name, if_unused, if_empty)

    def __repr__(self) -> str:
        return f"<Queue {self.name} -> {self.exchange!r} -> {self.routing_key}>"
