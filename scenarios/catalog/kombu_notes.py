"""Why unmodified kombu (5.x on py-amqp) fails a scenario, one line each, as measured on the
live backend (``warren compare``) and read in kombu's source; shown in the comparison table.
tests/scenarios/test_kombu_weakness.py checks that kombu fails for these reasons."""

from __future__ import annotations

#: Connection.ensure -> maybe_switch_next -> switch -> close, and ConsumerMixin's connection
#: context exit -> release: py-amqp's channel.close() waits for close-ok with no timeout.
POLITE_CLOSE = (
    "kombu leaves a dead connection politely: channel.close() waits for close-ok with no "
    "timeout, so it stalls until the node answers again"
)
#: the same, after py-amqp's confirm wait (confirm_timeout) noticed the silence.
CONFIRM_THEN_CLOSE = (
    "kombu waits out confirm_timeout, then its host switch closes the dead channel "
    "politely (close-ok, no timeout): stuck until the link drops or the node answers"
)
#: Consumer.revive -> declare on the new node; a durable classic queue whose home node is
#: down answers 404, which kombu treats as irrecoverable and lets out of ensure().
REDECLARE_404 = (
    "kombu re-declares the queue on revive; its home node is down, the 404 NOT_FOUND is "
    "irrecoverable and escapes ensure()"
)
#: SimpleQueue -> Consumer.declare -> queue.bind on every revive, waiting for bind-ok;
#: RabbitMQ holds queue.bind while a cluster peer hangs unseen (rabbit_binding's global
#: Mnesia lock, until net_ticktime; broker_sim.schema_lock).
REBIND_WAITS = (
    "kombu's SimpleQueue re-binds its queue on every revive and waits for bind-ok, which "
    "RabbitMQ holds while a cluster peer hangs unseen (a Mnesia lock until net_ticktime)"
)
