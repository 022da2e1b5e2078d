"""Plain kombu, written as kombu's failover guide recommends."""

from __future__ import annotations

from collections.abc import Callable

import kombu
from kombu.mixins import ConsumerMixin

ORDERS = kombu.Queue("orders", routing_key="orders", queue_arguments={"x-queue-type": "quorum"})

# Retry forever (kombu: max_retries=None), backing off to 2 s between attempts.
RETRY_FOREVER = {
    "max_retries": None,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 2.0,
}


CONFIRM_TIMEOUT = 5.0  # a confirm that never comes (a hung node) is an error to retry


def connect(
    urls: str | list[str], heartbeat: float = 10, read_timeout: float | None = 5.0
) -> kombu.Connection:
    """A connection over the failover URL list, with publisher confirms on.

    ``read_timeout`` (py-amqp's SO_RCVTIMEO) is what lets this code leave a hung node
    (SIGSTOP-ed, or its VM frozen): the heartbeat notices it, but closing the dead channel
    then waits for a Close-Ok that never comes, with no timeout of its own, until the node
    returns. tests/test_failover.py shows both."""
    options = {"confirm_publish": True}
    if read_timeout is not None:
        options["read_timeout"] = read_timeout
    return kombu.Connection(urls, heartbeat=heartbeat, transport_options=options)


def place_order(producer: kombu.Producer, order: dict, queue: kombu.Queue = ORDERS) -> None:
    """Publish ``order``; returns once the broker confirmed it (retrying through failover)."""
    producer.publish(
        order,
        routing_key=queue.routing_key,
        declare=[queue],
        retry=True,
        retry_policy=RETRY_FOREVER,
        message_id=order["id"],
        confirm_timeout=CONFIRM_TIMEOUT,
    )


class OrderWorker(ConsumerMixin):
    """Processes orders with ``handle(order)`` and acks each one after ``handle`` returns
    (a crash before the ack leaves the order in the queue for another worker)."""

    def __init__(
        self,
        connection: kombu.Connection,
        handle: Callable[[dict], None],
        queue: kombu.Queue = ORDERS,
        stop_when: Callable[[], bool] = lambda: False,
    ) -> None:
        self.connection = connection
        self.handle = handle
        self.queue = queue
        self.stop_when = stop_when

    def get_consumers(self, Consumer, channel):
        return [Consumer(queues=[self.queue], callbacks=[self.on_order], prefetch_count=10)]

    def on_order(self, body: dict, message) -> None:
        self.handle(body)
        message.ack()

    def on_iteration(self) -> None:
        if self.stop_when():
            self.should_stop = True
