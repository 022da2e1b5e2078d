"""One direction of a live client link through a toxic chain, on the asyncio event loop.

With no toxics the pipe is transparent (bytes go straight through, no scheduling cost).
With toxics, :class:`~broker_sim.toxics.pipe.ToxicPipe` holds the timestamped events and
this driver wakes on a loop timer to apply what is due, in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from broker_sim.drivers.loop_timer import LoopTimer
from broker_sim.toxics import DATA, RESET
from broker_sim.toxics.pipe import ToxicPipe


class TimedPipe:
    def __init__(self, deliver: Callable[[bytes], None], close: Callable[[bool], None]) -> None:
        self.deliver = deliver
        self.close = close  # close(reset)
        self.core = ToxicPipe()
        self._timer = LoopTimer(time.monotonic, self._run)

    @property
    def closed(self) -> bool:
        return self.core.closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self.core.closed = value

    @property
    def transparent(self) -> bool:
        return self.core.transparent

    def push(self, data: bytes) -> None:
        if self.core.closed:
            return
        if self.core.transparent:
            self.deliver(data)
        else:
            self.core.push(data, time.monotonic())
            self._run()

    def push_close(self, reset: bool = False) -> None:
        if self.core.closed:
            return
        if self.core.transparent:
            self.core.closed = True
            self.close(reset)
        else:
            self.core.push_close(reset, time.monotonic())
            self._run()

    def add(self, name: str, state) -> None:
        self.core.add(name, state, time.monotonic())
        self._timer.arm(self.core.next_time())

    def remove(self, name: str) -> None:
        self.core.remove(name, time.monotonic())
        self._run()

    def _run(self) -> None:
        """Apply what is due now, then sleep until the next event or toxic deadline."""
        for event in self.core.due(time.monotonic()):
            if event.kind == DATA:
                self.deliver(event.data)
            else:
                self.close(event.kind == RESET)
        self._timer.arm(self.core.next_time())
