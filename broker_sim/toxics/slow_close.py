"""``slow_close``: delay the close (EOF) by ``delay`` ms (toxics/slow_close.go)."""

from broker_sim.toxics.base import CLOSE, Event, Toxic, ToxicState


class SlowCloseToxic(Toxic):
    type = "slow_close"
    ATTRIBUTES = {"delay": 0}  # noqa: RUF012

    def make_state(self, rng) -> ToxicState:
        return _SlowCloseState(self.attr("delay") / 1000.0)


class _SlowCloseState(ToxicState):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def feed(self, event: Event) -> list[Event]:
        if event.kind == CLOSE:
            return [Event(CLOSE, event.time + self.delay)]
        return [event]
