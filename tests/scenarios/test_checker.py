"""The checker on hand-made histories: each figure, an empty history, duplicates, late
deliveries, unknown outcomes, thresholds."""

from __future__ import annotations

import math

import pytest

from scenarios.checker import FIGURES, evaluate, figures, lost_ids, parse_threshold


def ok(t, mid, confirmed=True):
    return (t, "publish_ok", {"id": mid, "confirmed": confirmed})


def inv(t, mid):
    return (t, "publish_invoke", {"id": mid})


def dlv(t, mid, redelivered=False):
    return (t, "deliver", {"id": mid, "redelivered": redelivered})


def test_an_empty_history_has_every_figure_at_zero():
    values = figures([])
    assert set(FIGURES) <= set(values)
    assert all(values[f] == 0 for f in FIGURES)


def test_total_queue_figures():
    history = [
        inv(0, "a"), ok(0.1, "a"),
        inv(1, "b"), ok(1.1, "b"),
        inv(2, "c"), (2.1, "publish_unknown", {"details": ["c"]}),
        inv(3, "d"), (3.1, "publish_fail", {"id": "d", "error": "OperationalError"}),
        inv(4, "e"), ok(4.1, "e", confirmed=False),
        dlv(5, "a"), dlv(6, "a", redelivered=True), dlv(7, "c"), dlv(8, "zz"),
    ]  # fmt: skip
    values = figures(history)
    assert values["published"] == 5 and values["confirmed"] == 2 and values["sent"] == 3
    assert values["failed"] == 1 and values["unknown"] == 1
    assert values["delivered"] == 3  # a, c, zz
    assert values["lost"] == 1 and lost_ids(history) == ["b"]
    assert values["lost_unconfirmed"] == 1  # e was sent without confirms, never delivered
    assert values["unexpected"] == 1  # zz was never published
    assert values["duplicated"] == 1 and values["redelivered"] == 1
    assert values["recovered"] == 1  # c: outcome unknown, yet delivered


def test_a_late_delivery_is_not_lost_and_sets_the_consumer_silence():
    history = [inv(0, "a"), ok(1, "a"), (2, "fault", {"action": "kill node1"}), dlv(31, "a")]
    values = figures(history)
    assert values["lost"] == 0
    assert values["max_consumer_silence"] == 30
    assert values["max_delivery_recovery"] == 29


def test_recovery_after_a_fault_and_an_unrecovered_one():
    history = [
        inv(0, "a"), ok(0.5, "a"), dlv(0.8, "a"),
        (1, "fault", {"action": "kill node1"}),
        inv(1.2, "b"), ok(4, "b"), dlv(4.5, "b"),
        (5, "fault", {"action": "kill node2"}),
        inv(6, "c"),
    ]  # fmt: skip
    values = figures(history)
    assert math.isinf(values["max_publish_recovery"])  # c never came back
    assert values["blocked_publishes"] == 1
    assert values["max_publish_latency"] == pytest.approx(2.8)
    recovered = figures(history[:-1])
    assert recovered["max_publish_recovery"] == 3
    assert recovered["max_delivery_recovery"] == 3.5


def test_liveness_counters_and_probe_figures():
    history = [
        (1, "error", {"error": "ConnectionResetError", "retry": 1}),
        (2, "recovery_succeeded", {"details": []}),
        (3, "ack", {"id": "x", "stale": True}),
        (4, "escaped", {"role": "consumer", "error": "boom"}),
        (5, "probe", {"retries": 3, "raised": 1, "actor": "probe"}),
    ]
    values = figures(history)
    assert values["retries"] == 1 and values["reconnects"] == 1
    assert values["stale_acks"] == 1 and values["escaped"] == 1
    assert values["probe.retries"] == 3 and "probe.actor" not in values


def test_thresholds():
    values = {"lost": 0, "max_publish_recovery": 12.5, "probe.node": 1}
    assert evaluate(values, {"lost": "== 0", "probe.node": ">= 1"}) == []
    assert evaluate(values, {"max_publish_recovery": "<= 10"}) == [
        "max_publish_recovery <= 10: got 12.5"
    ]
    assert evaluate(values, {"probe.other": "== 1"}) == [
        "probe.other == 1: no such figure in this run"
    ]
    with pytest.raises(ValueError, match="unknown figure 'lots'"):
        parse_threshold("lots", "== 0")
    with pytest.raises(ValueError, match="threshold 'zero' for 'lost'"):
        parse_threshold("lost", "zero")


def test_unprocessed_counts_confirmed_deliveries_whose_work_never_finished():
    history = [
        inv(0, "a"), ok(0.1, "a"), inv(1, "b"), ok(1.1, "b"), inv(2, "c"), ok(2.1, "c"),
        dlv(3, "a"), (3.5, "processed", {"id": "a"}),
        dlv(4, "b"),  # acked first, then the worker died: never processed
    ]  # fmt: skip
    values = figures(history)
    assert (values["processed"], values["unprocessed"], values["lost"]) == (1, 1, 1)
    without_reports = [e for e in history if e[1] != "processed"]
    assert figures(without_reports)["unprocessed"] == 0, "a consumer that reports no work"
