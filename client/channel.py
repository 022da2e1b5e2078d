"""Channels that survive reconnects (RabbitMQ Java client's automatic recovery; aio-pika's
robust channel).

Theory of operation. A :class:`RecoverableChannel` is what applications hold; underneath
is a low-level :class:`client.amqp.Channel` of the current connection. After a reconnect,
:meth:`rebind` opens a new low-level channel, bumps the *generation* (fencing delivery tags
from before: acks of stale messages are dropped, not sent), and restores prefetch, confirm
mode and the consumers, re-registered with their callbacks. Declarations go through the
connection's :class:`Topology`, which records them (exchanges, queues, bindings, in order;
server-named queues renamed on replay) so the connection can replay them first.
"""

from __future__ import annotations

from dataclasses import dataclass

from pamqp import commands as C

from client.errors import AMQPChannelError, AMQPError, MessageNacked, PublishTimeout
from client.message import Message, accept_content_types


@dataclass
class ConsumerRecord:
    queue: str
    callback: object
    no_ack: bool
    accept: set[str] | None


class RecoverableChannel:
    def __init__(self, connection) -> None:
        self.connection = connection
        self.low = None
        self.generation = 0
        self.prefetch: tuple[int, bool] | None = None
        self.confirm = False
        self.consumers: dict[str, ConsumerRecord] = {}
        self.cancelled: dict[str, ConsumerRecord] = {}  # by the server; re-registered later
        self.closed = False

    # -- recovery ---------------------------------------------------------------------------

    def rebind(self, amqp, renames: dict[str, str] | None = None, missing=()) -> None:
        """Open on ``amqp`` (a new connection) and restore this channel's state; consumers
        of server-named queues follow the queues' new names. A consumer whose queue is not
        there (``missing``: its replay failed, e.g. a classic queue whose node is down; or
        basic.consume answers 404) waits with the broker-cancelled ones and comes back with
        its queue (see :meth:`retry_cancelled`)."""
        self.generation += 1
        self._open_low(amqp)
        records, self.consumers = self.consumers, {}
        for tag, record in records.items():
            record.queue = (renames or {}).get(record.queue, record.queue)
            if record.queue in missing:
                self._wait_for_queue(tag, record)
                continue
            try:
                self._start_consumer(record, tag)
            except AMQPChannelError:  # the broker closed this channel: open another
                self._open_low(amqp)
                self._wait_for_queue(tag, record)

    def _open_low(self, amqp) -> None:
        self.low = amqp.channel()
        self.low.on_cancel = self._server_cancelled
        if self.prefetch is not None:
            count, global_ = self.prefetch
            self.low.rpc(C.Basic.Qos(prefetch_count=count, global_=global_), C.Basic.QosOk)
        if self.confirm:
            self.low.confirm_select()

    def _wait_for_queue(self, tag: str, record: ConsumerRecord) -> None:
        self.cancelled[tag] = record
        self.connection.cancel_noticed()
        self.connection.notify("consumer_cancelled", tag, record.queue)

    def _server_cancelled(self, tag: str) -> None:
        record = self.consumers.pop(tag, None)
        if record is not None:
            self.cancelled[tag] = record
            self.connection.cancel_noticed()
            self.connection.notify("consumer_cancelled", tag, record.queue)

    def retry_cancelled(self) -> None:
        """Re-register consumers the broker cancelled (their queue was deleted).

        The rule (kombu's and aio-pika's robust consumers): a queue this connection
        declared itself (it is in the recorded topology) is declared again, with its
        arguments and bindings, and consumed from at once; a queue it did not declare is
        someone else's to bring back, so a passive declare checks for it and the consumer
        comes back when it is there. Both run on a throwaway channel, so a failure (404,
        406) never closes this one."""
        if not self.cancelled or self.low is None or self.low.error is not None:
            return
        amqp = self.low.connection
        topology = self.connection.topology
        for tag, record in list(self.cancelled.items()):
            probe = amqp.channel()
            try:
                if topology.declared(record.queue):
                    record.queue = topology.redeclare_queue(probe, record.queue)
                else:
                    probe.rpc(
                        C.Queue.Declare(queue=record.queue, passive=True),
                        C.Queue.DeclareOk,
                        timeout=5,
                    )
            except (AMQPError, TimeoutError):  # a 404 closes only the probe channel
                amqp.channels.pop(probe.number, None)
                continue
            _close_quietly(probe)
            del self.cancelled[tag]
            self._start_consumer(record, tag)
            self.connection.notify("consumer_recovered", tag, record.queue)

    def _ready(self):
        if self.closed:
            raise RuntimeError("channel is closed")
        low = self.low
        if (
            low is None
            or low.error is not None
            or low.connection is not self.connection._amqp  # the connection was replaced
            or not low.connection.connected
        ):
            self.connection.revive_channel(self)
        return self.low

    # -- declarations (recorded for replay) ----------------------------------------------------

    def declare_exchange(self, exchange, passive: bool) -> None:
        self._ready().rpc(exchange.method(passive), C.Exchange.DeclareOk)
        if not passive:
            self.connection.topology.record("exchange", exchange.name, exchange)

    def declare_queue(self, queue, passive: bool):
        """queue.declare; the broker's declare-ok (name, message and consumer counts)."""
        server_named = queue.name == ""
        ok = self._ready().rpc(queue.method(passive), C.Queue.DeclareOk)
        if not passive:
            recorded = queue.bind(None)
            recorded.name = ok.queue
            recorded.server_named = server_named
            self.connection.topology.record("queue", ok.queue, recorded)
        return ok

    def queue_declare_ok(self, queue, passive: bool):
        return self._ready().rpc(queue.method(passive), C.Queue.DeclareOk)

    def bind_queue(self, queue, exchange=None, routing_key=None, arguments=None) -> None:
        """queue.bind to the queue's own exchange and key, or to those given."""
        exchange = exchange or queue.exchange
        routing_key = queue.routing_key if routing_key is None else routing_key
        method = C.Queue.Bind(
            queue=queue.name,
            exchange=exchange.name,
            routing_key=routing_key,
            arguments=queue.binding_arguments if arguments is None else arguments,
        )
        key = (queue.name, exchange.name, routing_key)
        topology = self.connection.topology
        if topology.bound(key, method):  # a re-bind (a revive): it must not hold this channel
            self._ready().connection.send_nowait(_nowait(method))
            return
        self._ready().rpc(method, C.Queue.BindOk)
        topology.record("binding", key, method)

    def purge_queue(self, name: str) -> int:
        return self._ready().rpc(C.Queue.Purge(queue=name), C.Queue.PurgeOk).message_count

    def delete_queue(self, name: str, if_unused: bool = False, if_empty: bool = False) -> int:
        ok = self._ready().rpc(
            C.Queue.Delete(queue=name, if_unused=if_unused, if_empty=if_empty), C.Queue.DeleteOk
        )
        self.connection.topology.forget_queue(name)
        return ok.message_count

    # -- basic ----------------------------------------------------------------------------------

    def basic_qos(
        self, prefetch_size: int = 0, prefetch_count: int = 0, a_global: bool = False
    ) -> None:
        self.prefetch = (prefetch_count, a_global)
        self._ready().rpc(
            C.Basic.Qos(prefetch_count=prefetch_count, global_=a_global), C.Basic.QosOk
        )

    def confirm_select(self) -> None:
        self.confirm = True
        self._ready().confirm_select()

    def publish(
        self,
        body: bytes,
        exchange: str,
        routing_key: str,
        properties,
        mandatory: bool = False,
        immediate: bool = False,
        confirm_timeout: float | None = None,
        deadline: float | None = None,
    ) -> None:
        """basic.publish; with confirms, wait ``confirm_timeout`` for the broker's ack. By
        ``deadline`` (the publish's own timeout), a connection that connection.blocked
        holds has not sent it and the confirm wait has ended: PublishTimeout."""
        low = self._ready()
        clock = self.connection.runtime.monotonic
        if low.connection.blocked is not None and deadline is not None:
            unblocked = low.connection.wait_until(
                lambda: low.connection.blocked is None, max(0.0, deadline - clock())
            )
            if not unblocked:
                raise PublishTimeout(
                    f"publish not sent: the connection is blocked by the broker "
                    f"({low.connection.blocked})",
                    sent=False,
                )
        tag = low.basic_publish(body, exchange, routing_key, properties, mandatory, immediate)
        if not self.confirm or confirm_timeout is None:
            return
        wait = confirm_timeout if deadline is None else min(confirm_timeout, deadline - clock())
        if not low.wait_for_confirms(max(0.0, wait)):
            if deadline is not None and clock() >= deadline:
                raise PublishTimeout("publish not confirmed before its timeout", sent=True)
            raise TimeoutError(f"publish not confirmed within {confirm_timeout} s")
        if tag in low.nacked:  # answered, but the broker does not have it: not confirmed
            low.nacked.discard(tag)
            raise MessageNacked(f"publish {tag} on channel {low.number} nacked by the broker")

    def get_message(self, queue: str, no_ack: bool, accept=None) -> Message | None:
        event = self._ready().basic_get(queue, no_ack=no_ack)
        if event is None:
            return None
        message = Message(self, event, accept_content_types(accept))
        self._record_delivery(message)  # basic.get-ok is a delivery too (DESIGN section 5)
        return message

    def consume(
        self, queue: str, callback, no_ack: bool = False, accept=None, consumer_tag: str = ""
    ) -> str:
        record = ConsumerRecord(queue, callback, no_ack, accept_content_types(accept))
        return self._start_consumer(record, consumer_tag)

    def _start_consumer(self, record: ConsumerRecord, tag: str) -> str:
        def deliver(event, record=record):
            message = Message(self, event, record.accept)
            self._record_delivery(message)
            record.callback(message)

        tag = self._ready().basic_consume(
            record.queue, deliver, no_ack=record.no_ack, consumer_tag=tag
        )
        self.consumers[tag] = record
        return tag

    def _record_delivery(self, message: Message) -> None:
        self.connection.runtime.record(
            "deliver",
            id=message.properties.get("message_id"),
            tag=message.delivery_tag,
            redelivered=message.redelivered,
            broker=self.connection.broker(),
        )

    def cancel(self, tag: str) -> None:
        if self.consumers.pop(tag, None) is not None and self.low and self.low.error is None:
            self.low.rpc(C.Basic.Cancel(consumer_tag=tag), C.Basic.CancelOk)
            self.low.consumers.pop(tag, None)

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._ready().basic_ack(delivery_tag, multiple)

    def basic_reject(self, delivery_tag: int, requeue: bool = False) -> None:
        low = self._ready()
        low.connection.proto.send_method(low.number, C.Basic.Reject(delivery_tag, requeue))
        low.connection._flush()

    def abandon(self) -> None:
        """Its connection was collected: closed, with nothing left to recover."""
        self.closed = True
        self.consumers.clear()
        self.cancelled.clear()

    def close(self) -> None:
        if not self.closed and self.low is not None and self.connection.connected:
            try:
                self.low.rpc(
                    C.Channel.Close(200, "Normal shutdown", 0, 0), C.Channel.CloseOk, timeout=5
                )
            except (OSError, TimeoutError):
                pass
        self.closed = True
        self.connection.forget_channel(self)

    def __enter__(self) -> RecoverableChannel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Topology:
    """Declarations recorded in order, replayed after a reconnect (Java client's recovery)."""

    def __init__(self) -> None:
        self.entries: dict[tuple, object] = {}

    def record(self, kind: str, key, entity) -> None:
        self.entries.setdefault((kind, key), entity)

    def forget_queue(self, name: str) -> None:
        for key in [k for k in self.entries if k[0] == "queue" and k[1] == name]:
            del self.entries[key]
        for key in [k for k in self.entries if k[0] == "binding" and k[1][0] == name]:
            del self.entries[key]

    def declared(self, queue: str) -> bool:
        return ("queue", queue) in self.entries

    def bound(self, key, method) -> bool:
        """This binding was made before (bind-ok seen), with the same arguments."""
        known = self.entries.get(("binding", key))
        return known is not None and known.arguments == method.arguments

    def replay(self, amqp) -> tuple[dict[str, str], set[str]]:
        """Re-declare everything on a new connection ``amqp``: (renames of server-named
        queues, queues that could not be declared). A declaration the broker refuses (a
        classic queue whose home node is down: 404) closes only the replay channel; the
        replay goes on on a fresh one, skipping that queue's bindings (the Java client
        reports such errors and goes on, too)."""
        renames: dict[str, str] = {}
        missing: set[str] = set()
        low = amqp.channel()
        for (kind, key), entity in list(self.entries.items()):
            if (kind == "binding" and key[0] in missing) or (kind == "queue" and key in missing):
                continue
            try:
                if kind == "exchange":
                    low.rpc(entity.method(), C.Exchange.DeclareOk)
                elif kind == "queue":
                    self._declare_queue(low, key, entity, renames)
                else:
                    self._bind(low, entity, renames)
            except AMQPChannelError:
                if kind != "exchange":
                    missing.add(key if kind == "queue" else key[0])
                amqp.channels.pop(low.number, None)
                low = amqp.channel()
        _close_quietly(low)
        self._rename(renames)
        return renames, missing

    def redeclare_queue(self, low, name: str) -> str:
        """Declare one recorded queue again, then its recorded bindings; its name now."""
        renames: dict[str, str] = {}
        self._declare_queue(low, name, self.entries[("queue", name)], renames)
        for (kind, key), method in list(self.entries.items()):
            if kind == "binding" and key[0] == name:
                self._bind(low, method, renames)
        self._rename(renames)
        return renames.get(name, name)

    @staticmethod
    def _declare_queue(low, key: str, entity, renames: dict[str, str]) -> None:
        if getattr(entity, "server_named", False):
            entity.name = ""  # ask for a fresh name, as the Java client does
        ok = low.rpc(entity.method(), C.Queue.DeclareOk)
        if ok.queue != key:
            renames[key] = ok.queue
        entity.name = ok.queue

    @staticmethod
    def _bind(low, method, renames: dict[str, str]) -> None:
        """A recorded binding again, without waiting: it exists on the cluster unless its
        queue was lost, and RabbitMQ holds every queue.bind while a cluster peer hangs
        unseen (a global Mnesia lock, until net_ticktime), which must not stall the
        recovery (scenario consume.simple-hung-node)."""
        method.queue = renames.get(method.queue, method.queue)
        low.connection.send_nowait(_nowait(method))

    def _rename(self, renames: dict[str, str]) -> None:
        """Later replays start from the current names."""
        if renames:
            self.entries = {
                (kind, _renamed(kind, key, renames)): entity
                for (kind, key), entity in self.entries.items()
            }


def _renamed(kind: str, key, renames: dict[str, str]):
    if kind == "queue":
        return renames.get(key, key)
    if kind == "binding":
        return (renames.get(key[0], key[0]), *key[1:])
    return key


def _nowait(method: C.Queue.Bind) -> C.Queue.Bind:
    return C.Queue.Bind(
        queue=method.queue,
        exchange=method.exchange,
        routing_key=method.routing_key,
        nowait=True,
        arguments=method.arguments,
    )


def _close_quietly(channel) -> None:
    try:
        channel.rpc(C.Channel.Close(200, "probe done", 0, 0), C.Channel.CloseOk, timeout=2)
    except (AMQPError, TimeoutError, OSError):
        pass
    channel.connection.channels.pop(channel.number, None)
