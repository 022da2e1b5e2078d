"""The service's own code under Warren's scenario catalog:

    warren run --client orders.warren_adapter:factory -k 'consume.*'

Warren's adapter interface (``scenarios/adapters``): ``publisher(env, spec)`` and
``consumer(env, spec)`` are ordinary blocking code; ``env`` gives the URLs, the scenario's
queue, a clock and a sleep that follow the backend's time, and the message ids to use.
The history comes from Warren's kombu instrumentation (``instruments``), so nothing here
records anything by hand."""

from __future__ import annotations

import kombu

from orders.worker import OrderWorker, connect, place_order


class OrdersAdapter:
    name = "orders"
    backends = ("virtual", "live")
    instruments = ("kombu",)

    def publisher(self, env, spec) -> None:
        with connect(env.urls(spec.nodes), heartbeat=spec.heartbeat) as conn:
            producer = conn.Producer()
            for n in range(spec.messages):
                place_order(producer, {"id": env.message_id(spec, n), "n": n}, _queue(env))
                env.sleep(spec.interval)

    def consumer(self, env, spec) -> None:
        with connect(env.urls(spec.nodes), heartbeat=spec.heartbeat) as conn:
            # the work is done when handle returns: env.processed lets Warren check that
            # no order was acked without being processed
            handle = lambda order: env.processed(order["id"])  # noqa: E731
            OrderWorker(conn, handle, _queue(env), stop_when=env.settled).run()


def _queue(env) -> kombu.Queue:
    return kombu.Queue(
        env.queue.name, routing_key=env.queue.name, queue_arguments=env.queue.queue_arguments
    )


def factory() -> OrdersAdapter:
    return OrdersAdapter()
