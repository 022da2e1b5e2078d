"""The delivery acknowledgement timeout (RabbitMQ 3.8.15+ ``consumer_timeout``).

Theory of operation. Every delivery a channel must see acknowledged (basic.deliver to a
manual-ack consumer, basic.get-ok without no-ack) gets a deadline when it goes out: its
time plus the queue's ``x-consumer-timeout`` argument (3.12+) or else the node's
``consumer_timeout`` (rabbitmq.conf, ms, default 30 min; ``None`` turns it off). One timer
per channel waits for the earliest deadline; when it fires and a delivery is still unacked
past its deadline, the channel is closed with 406 PRECONDITION_FAILED "delivery
acknowledgement on channel N timed out. Timeout value used: T ms. ..." and, as for every
channel close, its unacked deliveries go back to their queues. RabbitMQ looks on its channel
tick (``channel_tick_interval``, 1 min by default), so its close comes up to a tick late;
the simulator closes at the deadline, which is what a test of the timeout wants.
"""

from __future__ import annotations

import math

from broker_sim.errors import AMQPError

OFF = math.inf


def timeout_ms(queue, config) -> int | None:
    """The timeout that applies to deliveries from ``queue`` (ms), or None."""
    value = queue.settings.get("x-consumer-timeout")  # its argument or its policy's
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return config.consumer_timeout


class AckTimeouts:
    """One channel's watch over its unacked deliveries' deadlines."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self.armed_for = OFF

    def deadline(self, queue) -> float:
        """The deadline of a delivery from ``queue`` going out now (``OFF`` if none)."""
        ms = timeout_ms(queue, self.channel.conn.node.config)
        if ms is None:
            return OFF
        deadline = self.channel.conn.node.now() + ms / 1000
        if deadline < self.armed_for:
            self.armed_for = deadline
            self.channel.conn.arm_at(deadline, self._check)
        return deadline

    def _check(self) -> None:
        ch = self.channel
        self.armed_for = OFF
        if ch.closing or ch.conn.channels.get(ch.number) is not ch or not ch.unacked:
            return
        oldest = min(ch.unacked.values(), key=lambda u: u.deadline)
        if oldest.deadline == OFF:
            return
        if oldest.deadline <= ch.conn.node.now():
            ms = timeout_ms(oldest.queue, ch.conn.node.config)
            ch.conn.node.log_event("ack-timeout", conn=ch.conn.id, channel=ch.number, ms=ms)
            ch.conn.close_channel(ch, AMQPError.of("ack_timeout", channel=ch.number, ms=ms))
            return
        self.armed_for = oldest.deadline
        ch.conn.arm_at(oldest.deadline, self._check)
