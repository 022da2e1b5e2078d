"""Dead-lettering (rabbit_dead_letter.erl), with the headers RabbitMQ 3.13+ writes.

A message dropped from a queue (``expired``, ``maxlen``, ``rejected``) is republished to the
queue's dead-letter exchange with an ``x-death`` entry per (queue, reason) — its ``count``
incremented when the same pair repeats — plus ``x-first-death-*`` (set once) and
``x-last-death-*`` (3.13+). A per-message ``expiration`` moves into ``original-expiration``.
Automatic cycles (a message dead-lettered back into a queue it died in, with no rejection on
the way) are dropped.
"""

from __future__ import annotations

import datetime

from broker_sim.message import Message, Properties


def dead_letter_properties(message: Message, queue, reason: str, now: float) -> Properties:
    old = message.properties
    headers = dict(old.headers or {})
    deaths = [dict(d) for d in headers.get("x-death", [])]
    entry = next(
        (d for d in deaths if d.get("queue") == queue.name and d.get("reason") == reason), None
    )
    if entry is not None:
        deaths.remove(entry)
        entry["count"] = entry.get("count", 1) + 1
        entry["time"] = timestamp(now)
    else:
        entry = {
            "count": 1,
            "reason": reason,
            "queue": queue.name,
            "time": timestamp(now),
            "exchange": message.exchange,
            "routing-keys": [message.routing_key],
        }
        if old.expiration is not None:
            entry["original-expiration"] = old.expiration
    deaths.insert(0, entry)
    headers["x-death"] = deaths
    headers.setdefault("x-first-death-reason", reason)
    headers.setdefault("x-first-death-queue", queue.name)
    headers.setdefault("x-first-death-exchange", message.exchange)
    headers["x-last-death-reason"] = reason
    headers["x-last-death-queue"] = queue.name
    headers["x-last-death-exchange"] = message.exchange
    fields = {k: getattr(old, k) for k in old.attributes()}
    fields["headers"] = headers
    fields["expiration"] = None
    return Properties(**fields)


def timestamp(now: float):
    return datetime.datetime.fromtimestamp(int(now), tz=datetime.UTC).replace(tzinfo=None)


def is_cycle(target: str, reason: str, headers: dict | None) -> bool:
    """rabbit_dead_letter:is_cycle: drop automatic cycles, allow those through a reject."""
    deaths = (headers or {}).get("x-death", [])
    seen = [d for d in deaths if d.get("queue") == target]
    if not seen:
        return False
    return not any(d.get("reason") == "rejected" for d in deaths)
