"""Toxics as sans-IO transforms over timestamped stream events (Toxiproxy's semantics).

Theory of operation. A proxied connection has two directions (``upstream`` client→server,
``downstream`` server→client); each direction runs a chain of toxic *states*, one per toxic,
in the order the toxics were added (Toxiproxy's ToxicCollection). An event is a chunk of
bytes, an EOF (``close``) or a ``reset``, stamped with the time it happens. Each state turns
an input event into output events stamped at the same or a later time; the driver applies
them in order, never earlier than an event already applied (so bytes are never reordered).
States with their own clocks (``timeout``) expose ``deadline``/``fire``. Removing a toxic
calls ``remove``: buffered data is released, as Toxiproxy's "don't drop data on the floor".

Toxicity is decided once per connection and direction when the state is created: a state
whose draw fails behaves as ``noop``. Every random draw comes from the RNG passed in, so the
same seed gives the same jitter, slice sizes and toxicity decisions (Toxiproxy cannot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

DATA, CLOSE, RESET = "data", "close", "reset"


@dataclass(slots=True)
class Event:
    kind: str
    time: float
    data: bytes = b""


class ToxicError(ValueError):
    """An attribute has the wrong type or value."""


@dataclass
class Toxic:
    """A configured toxic (the API object); ``attributes`` are validated per type."""

    type: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[dict[str, int]] = {}  # name -> default

    name: str = ""
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        merged = dict(self.ATTRIBUTES)
        merged.update(self.attributes or {})
        self.attributes = {k: _integer(k, v) for k, v in merged.items() if k in self.ATTRIBUTES}

    def attr(self, name: str) -> int:
        return self.attributes[name]

    def new_state(self, rng) -> ToxicState:
        """The per-connection state; the toxicity draw happens here."""
        enabled = self.toxicity >= 1.0 or rng.random() < self.toxicity
        return self.make_state(rng) if enabled else ToxicState()

    def make_state(self, rng) -> ToxicState:
        raise NotImplementedError

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ToxicError(f"attribute '{name}' must be an integer, got {value!r}")
    return int(value)


class ToxicState:
    """Pass-through (also what a toxic whose toxicity draw failed does)."""

    def start(self, now: float) -> None:
        """The toxic began acting on this connection at ``now``."""

    def feed(self, event: Event) -> list[Event]:
        return [event]

    def deadline(self) -> float | None:
        return None

    def fire(self, now: float) -> list[Event]:
        return []

    def remove(self, now: float) -> list[Event]:
        return []


class Chain:
    """The toxic states of one direction of one connection, in toxic order."""

    def __init__(self) -> None:
        self.states: dict[str, ToxicState] = {}

    def add(self, name: str, state: ToxicState, now: float) -> None:
        state.start(now)
        self.states[name] = state

    def feed(self, event: Event) -> list[Event]:
        return self._through(list(self.states.values()), [event])

    def _through(self, states: list[ToxicState], events: list[Event]) -> list[Event]:
        for state in states:
            out: list[Event] = []
            for ev in events:
                out.extend(state.feed(ev))
            events = out
        return events

    def remove(self, name: str, now: float) -> list[Event]:
        """Remove a toxic; what it releases continues through the toxics after it."""
        names = list(self.states)
        if name not in self.states:
            return []
        after = [self.states[n] for n in names[names.index(name) + 1 :]]
        released = self.states.pop(name).remove(now)
        return self._through(after, released)

    def deadline(self) -> float | None:
        times = [t for t in (s.deadline() for s in self.states.values()) if t is not None]
        return min(times) if times else None

    def fire(self, now: float) -> list[Event]:
        names = list(self.states)
        out: list[Event] = []
        for i, name in enumerate(names):
            state = self.states[name]
            deadline = state.deadline()
            if deadline is not None and deadline <= now:
                after = [self.states[n] for n in names[i + 1 :]]
                out.extend(self._through(after, state.fire(now)))
        return out
