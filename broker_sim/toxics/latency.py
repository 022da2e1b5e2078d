"""``latency``: delay each chunk by ``latency`` ms ± ``jitter`` ms (toxics/latency.go).

The delay counts from when the chunk was read, chunks keep their order, and stacked
latency toxics add up. EOF passes without delay.
"""

from broker_sim.toxics.base import DATA, Event, Toxic, ToxicState


class LatencyToxic(Toxic):
    type = "latency"
    ATTRIBUTES = {"latency": 0, "jitter": 0}  # noqa: RUF012

    def make_state(self, rng) -> ToxicState:
        return _LatencyState(self.attr("latency"), self.attr("jitter"), rng)


class _LatencyState(ToxicState):
    def __init__(self, latency: int, jitter: int, rng) -> None:
        self.latency, self.jitter, self.rng = latency, jitter, rng
        self.last = 0.0

    def _delay(self) -> float:
        delay = self.latency
        if self.jitter > 0:
            delay += self.rng.randrange(self.jitter * 2) - self.jitter
        return delay / 1000.0

    def feed(self, event: Event) -> list[Event]:
        if event.kind == DATA:
            event = Event(DATA, max(event.time + self._delay(), self.last), event.data)
        else:
            event = Event(event.kind, max(event.time, self.last))
        self.last = event.time
        return [event]
