"""One direction of a client link through a toxic chain, applied on the event loop in order.

With no toxics the pipe is transparent (bytes go straight through, no scheduling cost).
With toxics, each chunk or close is fed to the chain and the timestamped events it returns
are applied in order, never before an earlier one (bytes are never reordered).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from broker_sim.toxics import CLOSE, DATA, RESET, Chain, Event


class TimedPipe:
    def __init__(self, deliver: Callable[[bytes], None], close: Callable[[bool], None]) -> None:
        self.deliver = deliver
        self.close = close  # close(reset)
        self.chain = Chain()
        self.queue: deque[Event] = deque()
        self.last = 0.0
        self.closed = False
        self._handle: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def transparent(self) -> bool:
        return not self.chain.states and not self.queue

    def push(self, data: bytes) -> None:
        if self.closed:
            return
        if self.transparent:
            self.deliver(data)
        else:
            self.emit(self.chain.feed(Event(DATA, time.monotonic(), data)))

    def push_close(self, reset: bool = False) -> None:
        if self.closed:
            return
        if self.transparent:
            self.closed = True
            self.close(reset)
        else:
            self.emit(self.chain.feed(Event(RESET if reset else CLOSE, time.monotonic())))

    def add(self, name: str, state) -> None:
        self.chain.add(name, state, time.monotonic())
        self._arm()

    def remove(self, name: str) -> None:
        self.emit(self.chain.remove(name, time.monotonic()))

    def emit(self, events: list[Event]) -> None:
        self.queue.extend(events)
        self._arm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        if self._handle is None and self.queue:
            at = max(self.queue[0].time, self.last)
            self._handle = loop.call_later(max(0.0, at - time.monotonic()), self._run)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        deadline = self.chain.deadline()
        if deadline is not None:
            self._deadline = loop.call_later(max(0.0, deadline - time.monotonic()), self._fire)

    def _fire(self) -> None:
        self._deadline = None
        self.emit(self.chain.fire(time.monotonic()))

    def _run(self) -> None:
        self._handle = None
        now = time.monotonic()
        while self.queue and not self.closed and max(self.queue[0].time, self.last) <= now:
            event = self.queue.popleft()
            self.last = max(event.time, self.last)
            if event.kind == DATA:
                self.deliver(event.data)
            else:
                self.closed = True
                self.close(event.kind == RESET)
        if self.closed:
            self.queue.clear()
        self._arm()
