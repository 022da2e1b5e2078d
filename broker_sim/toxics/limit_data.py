"""``limit_data``: close the connection once ``bytes`` bytes have passed in this direction
(toxics/limit_data.go); the chunk that crosses the limit is truncated."""

from broker_sim.toxics.base import CLOSE, DATA, Event, Toxic, ToxicState


class LimitDataToxic(Toxic):
    type = "limit_data"
    ATTRIBUTES = {"bytes": 0}  # noqa: RUF012

    def make_state(self, rng) -> ToxicState:
        return _LimitState(self.attr("bytes"))


class _LimitState(ToxicState):
    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.closed = False

    def feed(self, event: Event) -> list[Event]:
        if self.closed:
            return []
        if event.kind != DATA:
            return [event]
        if len(event.data) < self.remaining:
            self.remaining -= len(event.data)
            return [event]
        head = event.data[: self.remaining]
        self.closed = True
        out = [Event(DATA, event.time, head)] if head else []
        return out + [Event(CLOSE, event.time)]
