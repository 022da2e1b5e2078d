"""The server side of one AMQP channel (spec sections 1.5 and 1.8; rabbit_channel.erl).

Theory of operation. The connection hands every frame for this channel to :meth:`handle`.
A method frame is looked up in :data:`HANDLERS` (method class -> handler); content-carrying
methods (basic.publish) move the channel into content assembly:

    READY --basic.publish--> AWAIT_HEADER --header--> AWAIT_BODY --body*--> READY

Any other frame during assembly is UNEXPECTED_FRAME (505). Handlers raise
:class:`AMQPError`; soft codes close only this channel (the connection sends
channel.close and then ignores everything but close/close-ok until close-ok arrives, spec
2.3.7), hard codes close the connection.

Deliveries get per-channel delivery tags starting at 1. Unacked deliveries are kept in
order; ack/nack/reject/recover and channel close settle or requeue them. Publisher confirms
(RabbitMQ extension) number publishes from 1 and are flushed once per input batch, with
``multiple`` for contiguous runs. Transactions buffer publishes and acks until commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from pamqp import commands as C

from broker_sim import reply_to
from broker_sim.ack_timeout import OFF, AckTimeouts
from broker_sim.errors import AMQPError
from broker_sim.framing import (
    FRAME_BODY,
    FRAME_HEADER,
    InFrame,
    deliver_method_frame,
)
from broker_sim.message import Message, QueuedMessage
from broker_sim.queues import ClassicQueue, Consumer
from broker_sim.replies import reply_text

READY, AWAIT_HEADER, AWAIT_BODY = "ready", "await-header", "await-body"
MAX_MESSAGE_SIZE = 134217728  # RabbitMQ's default max_message_size (128 MiB)


@dataclass(slots=True)
class Unacked:
    tag: int
    queue: ClassicQueue
    qm: QueuedMessage
    consumer: Consumer | None
    epoch: int = 0
    deadline: float = OFF  # when it must be acked by (broker_sim.ack_timeout)

    @property
    def stale(self) -> bool:
        """The queue's node crashed since this delivery: the queue recovered it already."""
        return self.epoch != self.queue.epoch or self.queue.deleted


class ServerChannel:
    def __init__(self, conn, number: int) -> None:
        self.conn = conn
        self.vhost = conn.vhost  # fixed by connection.open, before any channel exists
        self.number = number
        self.state = READY
        self.closing = False
        self.next_tag = 1
        self.unacked: dict[int, Unacked] = {}
        self.ack_timeouts = AckTimeouts(self)
        self.consumers: dict[str, Consumer] = {}
        self.prefetch = 0
        self.global_prefetch = 0
        self.global_unacked = 0
        self.confirm = False
        self.tx = False
        self.publish_seq = 0
        self.pending_confirms: list[tuple[int, bool]] = []  # (publish seq, ack?)
        self.confirm_floor = 0  # every publish seq <= this one is confirmed
        self.confirmed_above_floor: set[int] = set()
        self.awaiting: dict[int, list] = {}  # seq -> [queues still to commit, all ok]
        self.tx_publishes: list[tuple[C.Basic.Publish, Message]] = []
        self.tx_settles: list[tuple[str, int, bool, bool]] = []
        self._publish: C.Basic.Publish | None = None
        self._props = None
        self._raw_header = b""
        self._body_size = 0
        self._body: list[bytes] = []
        self._received = 0
        self.last_queue: str | None = None
        self.reply_consumer = None  # broker_sim.reply_to.ReplyConsumer while consuming it
        self.schema_held: list[InFrame] | None = None  # frames waiting for the schema lock

    def hold_for_schema(self, frame: InFrame) -> None:
        """A schema write waits for a hung peer (broker_sim.schema_lock); so does every
        later frame on this channel, as in rabbit_channel's process."""
        if self.schema_held is None:
            self.schema_held = []
            self.conn.node.cluster.schema_waiters[self] = None
        self.schema_held.append(frame)

    def send(self, method) -> None:
        self.conn.send_method(self.number, method)

    # -- frame dispatch -------------------------------------------------------------------

    def handle(self, frame: InFrame) -> None:
        if self.state != READY:
            self._content_frame(frame)
            return
        if frame.kind != 1:
            raise AMQPError.of("unexpected_frame", expected="method frame", kind="method")
        if frame.body is not None:  # basic.publish with its whole content (FrameReader)
            self.on_publish(frame.method)
            self._start_content(frame)
            self._body, self._received = [frame.body], len(frame.body)
            self._finish_publish()
            return
        handler = HANDLERS.get(type(frame.method))
        if handler is None:
            raise AMQPError.of(
                "command_invalid", detail=f"unexpected method {frame.method.name} on a channel"
            )
        handler(self, frame.method)

    def _content_frame(self, frame: InFrame) -> None:
        if self.state == AWAIT_HEADER:
            if frame.kind != FRAME_HEADER:
                raise self._content_error("content header for class 60", "content header")
            if frame.method is not None:
                raise self._content_error("content header for class 60", "content header")
            self._start_content(frame)
            if self._body_size == 0:
                self._finish_publish()
            return
        if frame.kind != FRAME_BODY:
            raise self._content_error("content body", "content body")
        self._body.append(frame.payload)
        self._received += len(frame.payload)
        if self._received > self._body_size:
            raise AMQPError.of(
                "unexpected_frame",
                expected=f"{self._body_size} body bytes",
                got=f"{self._received}",
            )
        if self._received == self._body_size:
            self._finish_publish()

    def _start_content(self, frame: InFrame) -> None:
        """A content header arrived (alone, or with its method and body)."""
        if frame.body_size > MAX_MESSAGE_SIZE:
            raise AMQPError(
                406,
                f"PRECONDITION_FAILED - message size {frame.body_size} is larger "
                f"than configured max size {MAX_MESSAGE_SIZE}",
            )
        self._props, self._raw_header = frame.properties, frame.payload
        self._body_size, self._body, self._received = frame.body_size, [], 0
        self.state = AWAIT_BODY

    def _content_error(self, expected: str, kind: str) -> AMQPError:
        """505 during content assembly names the method whose content was expected."""
        err = AMQPError.of("unexpected_frame", expected=expected, kind=kind)
        err.class_id, err.method_id = 60, 40
        return err

    # -- basic.publish --------------------------------------------------------------------

    def on_publish(self, m: C.Basic.Publish) -> None:
        if m.immediate:
            raise AMQPError.of("immediate")
        ex = self.vhost.exchange(m.exchange)
        if ex.internal:
            raise AMQPError.of("exchange_internal", name=m.exchange, vhost=self.vhost.name)
        self.conn.check_permission("write", "exchange", m.exchange)
        self._publish = m
        self.state = AWAIT_HEADER

    def _finish_publish(self) -> None:
        m, props = self._publish, self._props
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._publish, self._body, self.state = None, [], READY
        raw_header = self._raw_header
        if props.reply_to == reply_to.REPLY_TO:  # direct reply-to names this channel
            props, raw_header = reply_to.rewrite(self, props), None
        if props.user_id is not None and props.user_id != self.conn.user.name:
            raise AMQPError.of("user_id_mismatch", claimed=props.user_id, user=self.conn.user.name)
        message = Message(m.exchange, m.routing_key, props, body, raw_header)
        if m.exchange == "" and reply_to.is_reply_queue(m.routing_key):
            reply_to.deliver(self, message)  # at publish time, in a transaction too
        if self.confirm:
            self.publish_seq += 1
        if self.tx:
            self.tx_publishes.append((m, message))
        else:
            self._route(m, message, self.publish_seq)

    def _route(self, m: C.Basic.Publish, message: Message, seq: int) -> None:
        vhost = self.vhost
        if m.exchange not in vhost.exchanges:  # deleted while in a transaction
            raise AMQPError.of("no_exchange", name=m.exchange, vhost=vhost.name)
        targets = vhost.route(m.exchange, m.routing_key, message.headers)
        if not targets and m.mandatory:
            self._basic_return(m, message)
        on_commit = self._confirm_later(seq) if self.confirm else None
        refused, waiting = vhost.enqueue(targets, message, on_commit)
        if self.confirm:
            if waiting:
                self.awaiting[seq] = [waiting, not refused]
            else:
                self._confirm(seq, not refused)

    def _confirm(self, seq: int, ok: bool) -> None:
        self.pending_confirms.append((seq, ok))
        self.conn.mark_confirms(self)

    def _confirm_later(self, seq: int):
        """A callback for queues that commit later (quorum queues waiting for a majority)."""

        def committed(ok: bool) -> None:
            entry = self.awaiting.get(seq)
            if entry is None or self.closing:
                return
            entry[0] -= 1
            entry[1] = entry[1] and ok
            if entry[0] == 0:
                del self.awaiting[seq]
                self._confirm(seq, entry[1])

        return committed

    def _basic_return(self, m: C.Basic.Publish, message: Message) -> None:
        code, text = reply_text("no_route")
        self.send(C.Basic.Return(code, text, m.exchange, m.routing_key))
        self.conn.send_content(self.number, message)

    def flush_confirms(self) -> None:
        """Send pending confirms in order; a contiguous run above the confirmed floor goes
        out as one ``multiple=True`` ack (or nack), as RabbitMQ coalesces them."""
        pending = sorted(self.pending_confirms)
        self.pending_confirms = []
        i = 0
        while i < len(pending):
            first, ok = pending[i]
            j = i
            while j + 1 < len(pending) and pending[j + 1] == (pending[j][0] + 1, ok):
                j += 1
            last = pending[j][0]
            cls = C.Basic.Ack if ok else C.Basic.Nack
            if first == self.confirm_floor + 1:
                self.send(cls(delivery_tag=last, multiple=last > first))
                self.confirm_floor = last
                while self.confirm_floor + 1 in self.confirmed_above_floor:
                    self.confirm_floor += 1
                    self.confirmed_above_floor.discard(self.confirm_floor)
            else:
                for seq, _ in pending[i : j + 1]:
                    self.send(cls(delivery_tag=seq, multiple=False))
                    self.confirmed_above_floor.add(seq)
            i = j + 1

    # -- deliveries -----------------------------------------------------------------------

    def can_deliver(self, consumer: Consumer) -> bool:
        if self.closing or not self.conn.writable:
            return False
        conn_node = self.conn.node
        if not conn_node.cluster.delivers_to(consumer.queue.serving_node, conn_node.name):
            return False
        if consumer.no_ack or self.global_prefetch == 0:
            return True
        return self.global_unacked < self.global_prefetch

    def deliver(self, consumer: Consumer, queue: ClassicQueue, qm: QueuedMessage) -> None:
        tag = self._track(queue, qm, consumer, consumer.no_ack)
        msg = qm.message
        self.conn.send_content(
            self.number,
            msg,
            deliver_method_frame(
                self.number, consumer.tag, tag, qm.redelivered, msg.exchange, msg.routing_key
            ),
        )

    def _track(self, queue, qm, consumer, no_ack: bool) -> int:
        tag = self.next_tag
        self.next_tag += 1
        if not no_ack:
            deadline = self.ack_timeouts.deadline(queue)
            self.unacked[tag] = Unacked(tag, queue, qm, consumer, queue.epoch, deadline)
            self.global_unacked += 1
            if consumer is not None:
                consumer.unacked += 1
        return tag

    def _take_unacked(self, tag: int, multiple: bool) -> list[Unacked]:
        if multiple:
            if tag != 0 and tag not in self.unacked:
                raise AMQPError.of("unknown_delivery_tag", tag=tag)
            tags = [t for t in self.unacked if tag == 0 or t <= tag]
        else:
            if tag not in self.unacked:
                raise AMQPError.of("unknown_delivery_tag", tag=tag)
            tags = [tag]
        taken = [self.unacked.pop(t) for t in tags]
        for u in taken:
            self.global_unacked -= 1
            if u.consumer is not None:
                u.consumer.unacked -= 1
            self.vhost.dirty[u.queue] = None
        return taken

    def settle(self, kind: str, tag: int, multiple: bool, requeue: bool) -> None:
        """Apply ack / nack / reject (spec 1.8.3.13, 1.8.3.14; RabbitMQ basic.nack)."""
        taken = self._take_unacked(tag, multiple)
        if kind == "ack":
            for u in taken:
                if not u.stale:
                    u.queue.settle(u.qm)
            return
        self._reject(taken, requeue)

    def _reject(self, taken: list[Unacked], requeue: bool) -> None:
        by_queue: dict[ClassicQueue, list[QueuedMessage]] = {}
        for u in taken:
            if not u.stale:
                by_queue.setdefault(u.queue, []).append(u.qm)
        for queue, qms in by_queue.items():
            if requeue:
                queue.requeue(qms)
                self.vhost.dirty[queue] = None
            else:
                for qm in qms:
                    queue.settle(qm)
                    self.vhost.dead_letter(queue, qm, "rejected")

    def release_queue(self, queue: ClassicQueue) -> None:
        """The queue gave up on this channel (its node is down or cut off): unacked
        deliveries from that queue go back to it, marked redelivered."""
        tags = [tag for tag, u in self.unacked.items() if u.queue is queue]
        if tags:
            taken = [self.unacked.pop(tag) for tag in tags]
            for u in taken:
                self.global_unacked -= 1
                if u.consumer is not None:
                    u.consumer.unacked -= 1
            self._reject(taken, requeue=True)

    def requeue_all(self) -> None:
        """Channel closing or basic.recover: every unacked delivery goes back."""
        if self.unacked:
            self._reject(self._take_unacked(0, True), requeue=True)

    def close_down(self) -> None:
        """The channel is gone: cancel consumers, requeue unacked (spec 1.5.2.5)."""
        self.closing = True
        for consumer in list(self.consumers.values()):
            self._remove_consumer(consumer)
        self.requeue_all()

    def _remove_consumer(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.tag, None)
        queue = getattr(consumer, "queue", None)
        if queue is not None and not queue.deleted:
            queue.remove_consumer(consumer)

    def server_cancel(self, consumer: Consumer) -> None:
        """The consumed queue went away: basic.cancel to the client (consumer_cancel_notify)."""
        self.consumers.pop(consumer.tag, None)
        if self.conn.client_capability("consumer_cancel_notify") and not self.closing:
            self.send(C.Basic.Cancel(consumer_tag=consumer.tag, nowait=True))


def _frame_name(kind: int) -> str:
    return {1: "method frame", 2: "content header", 3: "content body", 8: "heartbeat"}.get(
        kind, f"frame type {kind}"
    )


from broker_sim.channel_methods import HANDLERS  # noqa: E402  (tables refer to the class)
