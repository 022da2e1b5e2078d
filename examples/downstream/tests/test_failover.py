"""The order service through node faults, with Warren's `warren` fixture (its pytest
plugin is active once Warren is installed). In virtual time a test is a function of its
seed: a failure prints the fault schedule, the seed and the command that replays it."""

from __future__ import annotations

import pytest
from orders import OrderWorker, connect, place_order

ORDERS = 30


def publish_orders(warren, placed: list, read_timeout: float | None = 5.0) -> None:
    with connect(warren.url, heartbeat=4, read_timeout=read_timeout) as conn:
        producer = conn.Producer()
        for n in range(ORDERS):
            place_order(producer, {"id": f"order-{n}", "n": n})
            placed.append(n)
            warren.sleep(0.2)


def work(warren, processed: list, read_timeout: float | None = 5.0) -> None:
    with connect(warren.url, heartbeat=4, read_timeout=read_timeout) as conn:
        worker = OrderWorker(
            conn,
            lambda order: processed.append(order["n"]),
            stop_when=lambda: len(set(processed)) >= ORDERS,
        )
        worker.run()


@pytest.mark.warren(backend="virtual", nodes=3)
@pytest.mark.parametrize("fault, repair", [("kill", "start"), ("stop", "start")])
def test_every_order_is_processed_through_a_node_fault(warren, fault, repair):
    placed, processed = [], []
    warren.spawn("shop", publish_orders, warren, placed)
    warren.spawn("worker", work, warren, processed)
    warren.at(1.5, fault, "node1")  # the node both clients start on
    warren.at(20, repair, "node1")
    warren.run(until=120)
    assert placed == list(range(ORDERS))
    assert sorted(set(processed)) == list(range(ORDERS))
    figures = warren.figures()
    assert figures["lost"] == 0 and figures["unexpected"] == 0


HUNG_AT, BACK_AT = 1.5, 60.0


@pytest.mark.warren(backend="virtual", nodes=3, net_ticktime=10)
@pytest.mark.parametrize("read_timeout", [5.0, None], ids=["read-timeout", "no-read-timeout"])
def test_a_hung_node_is_left_only_with_a_read_timeout(warren, read_timeout):
    """A paused (SIGSTOP-ed) node accepts TCP but answers nothing. The heartbeat (4 s)
    notices; with ``read_timeout`` both clients then fail over while the node is still hung,
    without it they wait in Channel.Close until the node comes back (kombu 5, py-amqp 5).
    If the second case ever recovers early, kombu fixed it and the setting may go."""
    placed, processed = [], []
    warren.spawn("shop", publish_orders, warren, placed, read_timeout)
    warren.spawn("worker", work, warren, processed, read_timeout)
    warren.at(HUNG_AT, "pause", "node1")
    warren.at(BACK_AT, "resume", "node1")
    warren.run(until=200)
    assert sorted(set(processed)) == list(range(ORDERS))
    figures = warren.figures()
    assert figures["lost"] == 0
    recovery = max(figures["max_publish_recovery"], figures["max_delivery_recovery"])
    if read_timeout:
        assert recovery < 30, figures  # heartbeat + read timeouts, while node1 is still hung
    else:
        assert recovery >= BACK_AT - HUNG_AT, figures  # stalled until the node returned


@pytest.mark.warren(backend="live", nodes=3)
def test_the_worker_on_real_sockets_survives_a_kill(warren):
    """The live backend: a simulated cluster on loopback TCP, real time, real threads."""
    placed, processed = [], []
    warren.spawn("shop", publish_orders, warren, placed)
    warren.spawn("worker", work, warren, processed)
    warren.at(1.0, "kill", "node1")
    warren.run(until=30)
    assert sorted(set(processed)) == list(range(ORDERS))
