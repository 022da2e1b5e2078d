"""kombu.common helpers."""

from __future__ import annotations

from collections.abc import Iterator


def eventloop(
    conn, limit: int | None = None, timeout: float | None = None, ignore_timeouts: bool = False
) -> Iterator:
    """Yield after each ``drain_events``; ``limit`` bounds the iterations (kombu.common)."""
    count = 0
    while limit is None or count < limit:
        count += 1
        try:
            yield conn.drain_events(timeout=timeout)
        except TimeoutError:
            if timeout and not ignore_timeouts:
                raise
