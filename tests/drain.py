"""Bounded event loops for tests that wait on a client over real TCP."""

from __future__ import annotations

import time


def drain_until(conn, predicate, seconds: float = 10, step: float = 0.2) -> bool:
    """Drain ``conn`` (kombu's or the bundled client's) until ``predicate()`` or ``seconds``
    have passed; return whether the predicate came true. Bounded in time by construction."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=step)
        except TimeoutError:
            pass
    return bool(predicate())
