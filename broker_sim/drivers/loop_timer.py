"""One asyncio timer kept armed at a deadline (the live driver's timers and toxic pipes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class LoopTimer:
    """Calls ``callback`` when ``clock()`` reaches the deadline given to :meth:`arm`.
    Re-arming at the same deadline costs nothing; ``arm(None)`` disarms."""

    def __init__(self, clock: Callable[[], float], callback: Callable[[], None]) -> None:
        self.clock, self.callback = clock, callback
        self.when: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, when: float | None) -> None:
        if when == self.when and (when is None or self._handle is not None):
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.when = when
        if when is not None:
            delay = max(0.0, when - self.clock())
            self._handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._handle, self.when = None, None
        self.callback()
