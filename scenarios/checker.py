"""The history checker: pure functions from a history to figures (DESIGN section 5).

A history is a list of ``(seconds, kind, details)`` events as the bundled client, the
adapters and the runner record them (``World.events``, ``RecordingRuntime.history``). Message
identity is the ``message_id`` every publisher sets. The checker knows nothing of backends
or clients. Its figures, each defined exactly:

Jepsen's total-queue figures (counted in distinct message ids):

- ``published``: ids with a ``publish_invoke``.
- ``confirmed``: ids with a ``publish_ok`` whose ``confirmed`` is true (the broker acked).
- ``sent``: ids with any ``publish_ok`` (confirmed or not).
- ``failed``: ids whose publish raised (``publish_fail``) and never got a ``publish_ok``.
- ``unknown``: ids reported ``publish_unknown`` (sent, confirm lost) that never got a
  ``publish_ok``.
- ``delivered``: ids with at least one ``deliver``.
- ``lost``: confirmed ids never delivered.
- ``lost_unconfirmed``: ids sent without confirms (``publish_ok`` not confirmed) never
  delivered: what a publisher without confirms loses silently.
- ``unexpected``: delivered ids never published.
- ``duplicated``: ids delivered more than once (redeliveries after a failure included:
  at-least-once delivery makes them legal; a scenario may bound them).
- ``recovered``: ids whose outcome was failed or unknown, yet delivered.
- ``redelivered``: deliveries flagged ``redelivered``.
- ``processed``: ids with a ``processed`` event (the consumer's work on it finished: the
  adapter records it after the work, before the ack).
- ``unprocessed``: confirmed ids delivered but never processed, in a history whose consumer
  reports its work (at least one ``processed`` event; 0 otherwise). Disjoint from ``lost``
  (never delivered): a consumer that acks before it works and dies in between has lost
  the message for good, delivered, not ``lost``, yet ``unprocessed``.

Liveness figures (seconds, from the events' clock):

- ``max_publish_recovery``: over the faults that were followed by a publish attempt, the
  longest time from the fault to the next ``publish_ok`` (infinite if none came).
- ``max_delivery_recovery``: the same with the next ``deliver``, over the faults after
  which a delivery was due (a message sent before the fault and not yet delivered, or one
  sent after it).
- ``max_publish_latency``: the longest ``publish_invoke`` → outcome (ok or fail) time;
  ``blocked_publishes`` counts the invokes that never got an outcome.
- ``max_consumer_silence``: the longest time some sent message waited while no delivery
  came: from the moment there was an undelivered sent message (or the last delivery, if
  later) to the next delivery, or to the end of the history.
- ``reconnects``: ``recovery_succeeded`` events; ``retries``: ``error`` events (retried
  failures); ``escaped``: ``escaped`` events (an exception left the client code: the runner
  records one per actor that raised); ``stale_acks``: acks of messages from before a
  reconnect, fenced by the client.

``probe`` events (``details`` a mapping) add ``probe.<key>`` figures as they are.
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from collections.abc import Iterable

Event = tuple[float, str, dict]

FIGURES = (
    "published",
    "confirmed",
    "sent",
    "failed",
    "unknown",
    "delivered",
    "lost",
    "lost_unconfirmed",
    "unexpected",
    "duplicated",
    "recovered",
    "redelivered",
    "processed",
    "unprocessed",
    "max_publish_recovery",
    "max_delivery_recovery",
    "max_publish_latency",
    "blocked_publishes",
    "max_consumer_silence",
    "reconnects",
    "retries",
    "escaped",
    "stale_acks",
)
#: The figures a results table shows first.
KEY_FIGURES = ("confirmed", "delivered", "lost", "duplicated", "max_publish_recovery", "reconnects")

OPERATORS = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
}
_THRESHOLD = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?|inf)\s*$")


def message_id(details: dict):
    """The id an event is about (``publish_unknown`` carries it in ``details``)."""
    if "id" in details:
        return details["id"]
    extra = details.get("details")
    return extra[0] if extra else None


def figures(events: Iterable[Event]) -> dict[str, float]:
    """Every figure of the module docstring for one history."""
    events = sorted(events, key=lambda e: e[0])
    ids = _ids_by_kind(events)
    delivered_count = Counter(
        message_id(d) for _, kind, d in events if kind == "deliver" and message_id(d) is not None
    )
    invoked, confirmed, sent = ids["publish_invoke"], ids["confirmed"], ids["publish_ok"]
    delivered = set(delivered_count)
    processed = {message_id(d) for _, kind, d in events if kind == "processed"} - {None}
    failed = ids["publish_fail"] - sent
    unknown = ids["publish_unknown"] - sent
    result = {
        "published": len(invoked),
        "confirmed": len(confirmed),
        "sent": len(sent),
        "failed": len(failed),
        "unknown": len(unknown),
        "delivered": len(delivered),
        "lost": len(confirmed - delivered),
        "lost_unconfirmed": len((sent - confirmed) - delivered),
        "unexpected": len(delivered - invoked),
        "duplicated": sum(1 for n in delivered_count.values() if n > 1),
        "recovered": len((failed | unknown) & delivered),
        "redelivered": sum(1 for _, k, d in events if k == "deliver" and d.get("redelivered")),
        "processed": len(processed),
        "unprocessed": len((confirmed & delivered) - processed) if processed else 0,
        "reconnects": _count(events, "recovery_succeeded"),
        "retries": _count(events, "error"),
        "escaped": _count(events, "escaped"),
        "stale_acks": sum(1 for _, k, d in events if k == "ack" and d.get("stale")),
    }
    result.update(_recoveries(events))
    result.update(_latency(events))
    result["max_consumer_silence"] = _consumer_silence(events)
    for _, kind, details in events:
        if kind == "probe":
            for key, value in details.items():
                if key != "actor":
                    result[f"probe.{key}"] = value
    return result


def lost_ids(events: Iterable[Event]) -> list:
    """The confirmed ids never delivered, in publish order."""
    events = list(events)
    ids = _ids_by_kind(events)
    delivered = {message_id(d) for _, k, d in events if k == "deliver"}
    order = [message_id(d) for _, k, d in events if k == "publish_invoke"]
    return [i for i in dict.fromkeys(order) if i in ids["confirmed"] and i not in delivered]


def _ids_by_kind(events: list[Event]) -> dict[str, set]:
    ids: dict[str, set] = {
        k: set() for k in ("publish_invoke", "publish_ok", "publish_fail", "publish_unknown")
    }
    ids["confirmed"] = set()
    for _, kind, details in events:
        if kind in ids:
            mid = message_id(details)
            if mid is not None:
                ids[kind].add(mid)
                if kind == "publish_ok" and details.get("confirmed"):
                    ids["confirmed"].add(mid)
    return ids


def _count(events: list[Event], kind: str) -> int:
    return sum(1 for _, k, _ in events if k == kind)


def _recoveries(events: list[Event]) -> dict[str, float]:
    publish_times = [t for t, kind, _ in events if kind == "publish_invoke"]
    ok_times = [t for t, kind, _ in events if kind == "publish_ok"]
    deliver_times = [t for t, kind, _ in events if kind == "deliver"]
    worst_publish = worst_delivery = 0.0
    undelivered: set = set()  # sent so far and not delivered yet
    for t, kind, details in events:
        if kind == "publish_ok":
            undelivered.add(message_id(details))
        elif kind == "deliver":
            undelivered.discard(message_id(details))
        elif kind == "fault":
            if any(p >= t for p in publish_times):
                worst_publish = max(worst_publish, _first_after(ok_times, t) - t)
            if undelivered or any(p >= t for p in ok_times):  # a delivery is due
                worst_delivery = max(worst_delivery, _first_after(deliver_times, t) - t)
    return {"max_publish_recovery": worst_publish, "max_delivery_recovery": worst_delivery}


def _first_after(times: list[float], moment: float) -> float:
    return next((t for t in times if t >= moment), math.inf)


def _latency(events: list[Event]) -> dict[str, float]:
    started: dict = {}
    worst = 0.0
    for t, kind, details in events:
        mid = message_id(details)
        if kind == "publish_invoke":
            started[mid] = t
        elif kind in ("publish_ok", "publish_fail") and mid in started:
            worst = max(worst, t - started.pop(mid))
    return {"max_publish_latency": worst, "blocked_publishes": len(started)}


def _consumer_silence(events: list[Event]) -> float:
    waiting: set = set()
    since: float | None = None  # when the current wait for a delivery began
    worst = 0.0
    for t, kind, details in events:
        mid = message_id(details)
        if kind == "publish_ok":
            if not waiting and since is None:
                since = t
            waiting.add(mid)
        elif kind == "deliver":
            if since is not None:
                worst = max(worst, t - since)
            waiting.discard(mid)
            since = t if waiting else None
    if since is not None and events:
        worst = max(worst, events[-1][0] - since)
    return worst


# -- expectations --------------------------------------------------------------------------


def parse_threshold(figure: str, threshold: str) -> tuple[str, float]:
    """``("<=", 10.0)`` from ``"<= 10"``; unknown figures and bad texts raise ValueError."""
    if figure not in FIGURES and not figure.startswith("probe."):
        raise ValueError(
            f"unknown figure {figure!r} (figures: {', '.join(FIGURES)}, or probe.<key>)"
        )
    match = _THRESHOLD.match(str(threshold))
    if match is None:
        raise ValueError(
            f"threshold {threshold!r} for {figure!r}: expected '<op> <number>' with op one "
            f"of {' '.join(OPERATORS)}"
        )
    return match.group(1), float(match.group(2))


def evaluate(values: dict, expectations: dict) -> list[str]:
    """The expectations ``values`` miss, one line each (empty when all are met)."""
    misses = []
    for figure, threshold in expectations.items():
        op, limit = parse_threshold(figure, threshold)
        value = values.get(figure)
        if value is None:
            misses.append(f"{figure} {op} {limit:g}: no such figure in this run")
        elif isinstance(value, str) or not OPERATORS[op](value, limit):
            misses.append(f"{figure} {op} {limit:g}: got {format_value(value)}")
    return misses


def format_value(value) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.3g}"
    return str(value)
