"""Handlers for the channel-level methods, one small function per method, and the table
that maps each pamqp method class to its handler (see :mod:`broker_sim.channel`).

Each docstring names the AMQP 0-9-1 spec section (amqp0-9-1.xml class/method) and the
rabbit_channel.erl behaviour it follows.
"""

from __future__ import annotations

from pamqp import commands as C

from broker_sim import reply_to
from broker_sim.errors import AMQPError
from broker_sim.framing import PublishMethod
from broker_sim.queues import Consumer


def _queue_name(ch, name: str) -> str:
    """An empty queue name means the channel's last declared queue (spec 1.7.2.3)."""
    if name:
        return name
    if ch.last_queue is None:
        raise AMQPError.of("no_previous_queue")
    return ch.last_queue


def _queue(ch, name: str, need: str | None = None):
    name = _queue_name(ch, name)
    q = ch.vhost.usable_queue(name, ch.conn)
    if need:
        ch.conn.check_permission(need, "queue", name)
    return q


# -- channel class (spec 1.5) -------------------------------------------------------------


def channel_close(ch, m: C.Channel.Close) -> None:
    ch.close_down()
    ch.send(C.Channel.CloseOk())
    ch.conn.forget_channel(ch)


def channel_close_ok(ch, m: C.Channel.CloseOk) -> None:
    ch.conn.forget_channel(ch)


def channel_flow(ch, m: C.Channel.Flow) -> None:
    """RabbitMQ refuses client-initiated flow stop: 540 ``active=false``."""
    if not m.active:
        raise AMQPError.of("flow_inactive")
    ch.send(C.Channel.FlowOk(active=True))


def channel_reopen(ch, m: C.Channel.Open) -> None:
    raise AMQPError.of("channel_reopen")


# -- exchange class (spec 1.6) ------------------------------------------------------------


def exchange_declare(ch, m: C.Exchange.Declare) -> None:
    """rabbit_channel refuses the default exchange to every declare, passive ones too."""
    if m.exchange == "":
        raise AMQPError.of("default_exchange_op")
    if not m.passive:
        ch.conn.check_permission("configure", "exchange", m.exchange)

    def check_alternate(ae: str) -> None:
        """Creating an exchange with an alternate: read on it, write on the alternate."""
        ch.conn.check_permission("read", "exchange", m.exchange)
        ch.conn.check_permission("write", "exchange", ae)

    ch.vhost.declare_exchange(
        m.exchange,
        m.exchange_type,
        m.passive,
        m.durable,
        m.auto_delete,
        m.internal,
        m.arguments,
        check_alternate,
    )
    if not m.nowait:
        ch.send(C.Exchange.DeclareOk())


def exchange_delete(ch, m: C.Exchange.Delete) -> None:
    ch.conn.check_permission("configure", "exchange", m.exchange)
    ch.vhost.delete_exchange(m.exchange, m.if_unused)
    if not m.nowait:
        ch.send(C.Exchange.DeleteOk())


def _exchange_binding(ch, m, bind: bool) -> None:
    ch.conn.check_permission("write", "exchange", m.destination)
    ch.conn.check_permission("read", "exchange", m.source)
    action = ch.vhost.bind if bind else ch.vhost.unbind
    action(m.source, m.destination, "exchange", m.routing_key, m.arguments)
    if not m.nowait:
        ch.send(C.Exchange.BindOk() if bind else C.Exchange.UnbindOk())


def exchange_bind(ch, m: C.Exchange.Bind) -> None:
    _exchange_binding(ch, m, True)


def exchange_unbind(ch, m: C.Exchange.Unbind) -> None:
    _exchange_binding(ch, m, False)


# -- queue class (spec 1.7) ---------------------------------------------------------------


def queue_declare(ch, m: C.Queue.Declare) -> None:
    if m.queue.startswith(reply_to.REPLY_TO):  # passive whatever the flags, no permission
        return reply_to.declare(ch, m)
    name = m.queue or ch.conn.node.generate_name("amq.gen-")
    if not m.passive:
        ch.conn.check_permission("configure", "queue", name)
    result = ch.vhost.declare_queue(
        name,
        m.passive,
        m.durable,
        m.exclusive,
        m.auto_delete,
        m.arguments,
        ch.conn,
        server_named=not m.queue,
    )
    if result.created and m.exclusive:
        ch.conn.exclusive_queues.append(result.queue)
    ch.last_queue = name
    q = result.queue
    if not m.nowait:
        ch.send(C.Queue.DeclareOk(name, q.message_count, len(q.consumers)))


def _queue_binding(ch, m, bind: bool) -> None:
    name = _queue_name(ch, m.queue)
    ch.conn.check_permission("write", "queue", name)
    ch.conn.check_permission("read", "exchange", m.exchange)
    if name in ch.vhost.queues:
        ch.vhost.check_exclusive(ch.vhost.queues[name], ch.conn)
    action = ch.vhost.bind if bind else ch.vhost.unbind
    action(m.exchange, name, "queue", m.routing_key, m.arguments)
    if bind and not m.nowait:
        ch.send(C.Queue.BindOk())
    elif not bind:
        ch.send(C.Queue.UnbindOk())


def queue_bind(ch, m: C.Queue.Bind) -> None:
    _queue_binding(ch, m, True)


def queue_unbind(ch, m: C.Queue.Unbind) -> None:
    _queue_binding(ch, m, False)


def queue_purge(ch, m: C.Queue.Purge) -> None:
    q = _queue(ch, m.queue, "read")
    count = q.purge()
    if not m.nowait:
        ch.send(C.Queue.PurgeOk(message_count=count))


def queue_delete(ch, m: C.Queue.Delete) -> None:
    """Deleting a missing queue answers delete-ok with 0 (RabbitMQ 3.x)."""
    name = _queue_name(ch, m.queue)
    ch.conn.check_permission("configure", "queue", name)

    def reply(count: int) -> None:
        if not m.nowait:
            ch.send(C.Queue.DeleteOk(message_count=count))

    if name not in ch.vhost.queues:
        return reply(0)
    ch.vhost.usable_queue(name, ch.conn)
    ch.vhost.delete_queue(name, m.if_unused, m.if_empty, on_deleted=reply)


# -- basic class (spec 1.8) ---------------------------------------------------------------


def basic_qos(ch, m: C.Basic.Qos) -> None:
    """global=false limits consumers created afterwards; global=true the whole channel."""
    if m.prefetch_size:
        raise AMQPError.of("prefetch_size", size=m.prefetch_size)
    if m.global_:
        ch.global_prefetch = m.prefetch_count
    else:
        ch.prefetch = m.prefetch_count
    ch.send(C.Basic.QosOk())
    for consumer in ch.consumers.values():
        ch.vhost.dirty[consumer.queue] = None


def basic_consume(ch, m: C.Basic.Consume) -> None:
    if _queue_name(ch, m.queue) == reply_to.REPLY_TO:
        return reply_to.consume(ch, m)
    q = _queue(ch, m.queue, "read")
    tag = m.consumer_tag or ch.conn.node.generate_name("amq.ctag-")
    if tag in ch.consumers:
        raise AMQPError.of("consumer_tag_reused", tag=tag)
    args = m.arguments or {}
    consumer = Consumer(
        tag,
        ch,
        m.no_ack,
        m.exclusive,
        int(args.get("x-priority", 0) or 0),
        ch.prefetch,
        arguments=dict(args),
    )
    q.add_consumer(consumer, ch.vhost.name)
    consumer.queue = q
    ch.consumers[tag] = consumer
    if not m.nowait:
        ch.send(C.Basic.ConsumeOk(consumer_tag=tag))
    ch.vhost.dirty[q] = None


def basic_cancel(ch, m: C.Basic.Cancel) -> None:
    if reply_to.cancel(ch, m):
        return
    consumer = ch.consumers.get(m.consumer_tag)
    if consumer is not None:
        ch._remove_consumer(consumer)
    if not m.nowait:
        ch.send(C.Basic.CancelOk(consumer_tag=m.consumer_tag))


def basic_get(ch, m: C.Basic.Get) -> None:
    q = _queue(ch, m.queue, "read")
    # A quorum queue without a leader serves nothing (RabbitMQ's get would wait, then time
    # out); the simulation answers get-empty at once.
    qm = q.get() if q.available() else None
    if qm is None:
        ch.send(C.Basic.GetEmpty())
        return
    if not m.no_ack:
        q.track_unacked(qm)
    tag = ch._track(q, qm, None, m.no_ack)
    msg = qm.message
    ch.send(C.Basic.GetOk(tag, qm.redelivered, msg.exchange, msg.routing_key, q.message_count))
    ch.conn.send_content(ch.number, msg)


def _settle(ch, kind: str, tag: int, multiple: bool, requeue: bool) -> None:
    if ch.tx:
        taken = ch._take_unacked(tag, multiple)
        ch.tx_settles.append((kind, taken, requeue))
        return
    ch.settle(kind, tag, multiple, requeue)


def basic_ack(ch, m: C.Basic.Ack) -> None:
    _settle(ch, "ack", m.delivery_tag, m.multiple, False)


def basic_nack(ch, m: C.Basic.Nack) -> None:
    _settle(ch, "nack", m.delivery_tag, m.multiple, m.requeue)


def basic_reject(ch, m: C.Basic.Reject) -> None:
    _settle(ch, "reject", m.delivery_tag, False, m.requeue)


def basic_recover(ch, m: C.Basic.Recover) -> None:
    basic_recover_async(ch, m)
    ch.send(C.Basic.RecoverOk())


def basic_recover_async(ch, m) -> None:
    """Requeue every unacked delivery, no reply (deprecated in 0-9-1, kept by RabbitMQ);
    requeue=false is 540 NOT_IMPLEMENTED, a connection error."""
    if not m.requeue:
        raise AMQPError.of("not_implemented", detail="requeue=false")
    ch.requeue_all()


# -- confirm and tx classes (RabbitMQ extension; spec 1.9) -------------------------------


def confirm_select(ch, m: C.Confirm.Select) -> None:
    if ch.tx:
        raise AMQPError.of("tx_to_confirm")
    ch.confirm = True
    if not m.nowait:
        ch.send(C.Confirm.SelectOk())


def tx_select(ch, m: C.Tx.Select) -> None:
    if ch.confirm:
        raise AMQPError.of("confirm_to_tx")
    ch.tx = True
    ch.send(C.Tx.SelectOk())


def tx_commit(ch, m: C.Tx.Commit) -> None:
    if not ch.tx:
        raise AMQPError.of("not_transactional")
    publishes, settles = ch.tx_publishes, ch.tx_settles
    ch.tx_publishes, ch.tx_settles = [], []
    for method, message in publishes:
        ch._route(method, message, 0)
    for kind, taken, requeue in settles:
        if kind == "ack":
            for u in taken:
                u.queue.settle(u.qm)
        else:
            ch._reject(taken, requeue)
    ch.send(C.Tx.CommitOk())


def tx_rollback(ch, m: C.Tx.Rollback) -> None:
    """Discard publishes; acks not committed put their deliveries back as unacked."""
    if not ch.tx:
        raise AMQPError.of("not_transactional")
    for _kind, taken, _requeue in ch.tx_settles:
        for u in taken:
            ch.unacked[u.tag] = u
            ch.global_unacked += 1
            if u.consumer is not None:
                u.consumer.unacked += 1
    ch.unacked = dict(sorted(ch.unacked.items()))
    ch.tx_publishes, ch.tx_settles = [], []
    ch.send(C.Tx.RollbackOk())


HANDLERS = {
    C.Channel.Open: channel_reopen,
    C.Channel.Close: channel_close,
    C.Channel.CloseOk: channel_close_ok,
    C.Channel.Flow: channel_flow,
    C.Exchange.Declare: exchange_declare,
    C.Exchange.Delete: exchange_delete,
    C.Exchange.Bind: exchange_bind,
    C.Exchange.Unbind: exchange_unbind,
    C.Queue.Declare: queue_declare,
    C.Queue.Bind: queue_bind,
    C.Queue.Unbind: queue_unbind,
    C.Queue.Purge: queue_purge,
    C.Queue.Delete: queue_delete,
    C.Basic.Qos: basic_qos,
    C.Basic.Consume: basic_consume,
    C.Basic.Cancel: basic_cancel,
    C.Basic.Publish: lambda ch, m: ch.on_publish(m),
    PublishMethod: lambda ch, m: ch.on_publish(m),
    C.Basic.Get: basic_get,
    C.Basic.Ack: basic_ack,
    C.Basic.Nack: basic_nack,
    C.Basic.Reject: basic_reject,
    C.Basic.Recover: basic_recover,
    C.Basic.RecoverAsync: basic_recover_async,
    C.Confirm.Select: confirm_select,
    C.Tx.Select: tx_select,
    C.Tx.Commit: tx_commit,
    C.Tx.Rollback: tx_rollback,
}
