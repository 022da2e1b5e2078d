"""One direction of a link through a toxic chain, without a clock of its own (sans-IO).

A :class:`ToxicPipe` takes chunks and closes stamped with the driver's time, runs them through
the direction's :class:`~broker_sim.toxics.base.Chain` and holds the timestamped events that
come out. The driver asks :meth:`next_time` when to come back and :meth:`due` for what is
due by then: events come out in order and never before one already applied, so bytes are
never reordered. The live driver calls back on asyncio timers (``drivers/pipes.py``); the
virtual world polls pipes on its clock (``drivers/virtual.py``).
"""

from __future__ import annotations

from collections import deque

from broker_sim.toxics.base import CLOSE, DATA, RESET, Chain, Event, ToxicState


class ToxicPipe:
    def __init__(self) -> None:
        self.chain = Chain()
        self.queue: deque[Event] = deque()
        self.last = 0.0  # time of the last event applied: nothing goes out before it
        self.closed = False

    @property
    def transparent(self) -> bool:
        """No toxic and nothing held: a chunk may go straight through."""
        return not self.chain.states and not self.queue

    def push(self, data: bytes, now: float) -> None:
        if self.closed:
            return
        if self.chain.states:
            self.queue.extend(self.chain.feed(Event(DATA, now, data)))
        else:
            self.queue.append(Event(DATA, now, data))

    def push_close(self, reset: bool, now: float) -> None:
        if not self.closed:
            self.queue.extend(self.chain.feed(Event(RESET if reset else CLOSE, now)))

    def add(self, name: str, state: ToxicState, now: float) -> None:
        self.chain.add(name, state, now)

    def remove(self, name: str, now: float) -> None:
        """Remove a toxic. What the link holds is released at once, in order: Toxiproxy
        interrupts a removed toxic, and a latency toxic then forwards its chunk undelayed."""
        for event in self.queue:
            event.time = min(event.time, now)
        self.last = min(self.last, now)
        self.queue.extend(self.chain.remove(name, now))

    def next_time(self) -> float | None:
        """When something will be due (an event to apply or a toxic's own deadline)."""
        at = max(self.queue[0].time, self.last) if self.queue else None
        if self.chain.states and not self.closed:
            deadline = self.chain.deadline()
            if deadline is not None and (at is None or deadline < at):
                return deadline
        return at

    def due(self, now: float) -> list[Event]:
        """Pop the events due by ``now``, in order; a close ends the pipe."""
        if self.chain.states and not self.closed:
            deadline = self.chain.deadline()
            if deadline is not None and deadline <= now:
                self.queue.extend(self.chain.fire(now))
        out: list[Event] = []
        while self.queue and not self.closed and max(self.queue[0].time, self.last) <= now:
            event = self.queue.popleft()
            self.last = max(event.time, self.last)
            out.append(event)
            if event.kind != DATA:
                self.closed = True
        if self.closed:
            self.queue.clear()
        return out
