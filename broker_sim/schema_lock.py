"""Which channel methods write the cluster's schema, and so wait for a hung peer.

Theory of operation. RabbitMQ 3.10 keeps exchanges, queues and bindings in Mnesia tables
replicated on every node. A schema write takes write locks on every replica
(``mnesia:wread`` in rabbit_exchange:declare and rabbit_amqqueue:internal_declare, the
global lock of rabbit_binding:lock_resource over rabbit_route's ``where_to_write``), so
while a node hangs (SIGSTOP) and its peers still take it for alive (before
``net_ticktime``), the write waits: the channel's process is stuck in the transaction and
every later frame on that channel queues behind it. Other channels go on. Re-declaring an
existing exchange or queue does not wait: rabbit_channel looks it up first (a dirty read).
When the hang is seen (nodedown) or ends, the transactions complete in order.

``NEEDS_LOCK`` maps each schema-writing method to a predicate on (channel, method): always
for bindings and deletes, only for a new entity for declares.
"""

from __future__ import annotations

from pamqp import commands as C

from broker_sim import reply_to


def _always(ch, m) -> bool:
    return True


def _new_exchange(ch, m: C.Exchange.Declare) -> bool:
    return not m.passive and m.exchange not in ch.vhost.exchanges


def _new_queue(ch, m: C.Queue.Declare) -> bool:
    if m.passive or m.queue.startswith(reply_to.REPLY_TO):
        return False
    return not m.queue or m.queue not in ch.vhost.queues  # a server-named queue is new


NEEDS_LOCK = {
    C.Exchange.Declare: _new_exchange,
    C.Exchange.Delete: _always,
    C.Exchange.Bind: _always,
    C.Exchange.Unbind: _always,
    C.Queue.Declare: _new_queue,
    C.Queue.Delete: _always,
    C.Queue.Bind: _always,
    C.Queue.Unbind: _always,
}


def needs_lock(ch, method) -> bool:
    """True when ``method`` on ``ch`` is a schema write (a Mnesia transaction on every node)."""
    check = NEEDS_LOCK.get(type(method))
    return check is not None and check(ch, method)
