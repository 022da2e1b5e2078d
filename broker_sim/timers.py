"""A heap of one-shot timers driven by an injected clock (sans-IO).

The driver asks :meth:`Timers.next_deadline` when to wake up and calls :meth:`Timers.run_due`
with the current time. Cancelled timers stay in the heap and are skipped when they surface
(lazy deletion), which keeps scheduling and cancelling O(log n).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class Timer:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """One-shot timers ordered by deadline, ties broken by scheduling order."""

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = 0

    def schedule(self, when: float, callback: Callable[[], None]) -> Timer:
        self._seq += 1
        timer = Timer(when, self._seq, callback)
        heapq.heappush(self._heap, timer)
        return timer

    def next_deadline(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def run_due(self, now: float) -> int:
        """Fire every live timer whose deadline is <= ``now``; return how many fired."""
        fired = 0
        while self._heap and self._heap[0].when <= now:
            timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback()
                fired += 1
        return fired

    def shift(self, delta: float) -> None:
        """Move every deadline by ``delta`` (a paused node's timers are frozen, then resumed)."""
        for timer in self._heap:
            timer.when += delta
        heapq.heapify(self._heap)

    def clear(self) -> None:
        for timer in self._heap:
            timer.cancelled = True
        self._heap.clear()

    def __len__(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)
