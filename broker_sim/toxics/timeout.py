"""``timeout``: stop all data; close after ``timeout`` ms without input, or never when 0
(toxics/timeout.go). Removing the toxic closes the connection (its Cleanup)."""

from broker_sim.toxics.base import CLOSE, Event, Toxic, ToxicState


class TimeoutToxic(Toxic):
    type = "timeout"
    ATTRIBUTES = {"timeout": 0}  # noqa: RUF012

    def make_state(self, rng) -> ToxicState:
        return _TimeoutState(self.attr("timeout") / 1000.0)


class _TimeoutState(ToxicState):
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.started: float | None = None
        self.last_input: float | None = None
        self.closed = False

    def feed(self, event: Event) -> list[Event]:
        if self.closed:
            return []
        self.last_input = event.time
        if event.kind != "data":
            self.closed = True
            return [Event(event.kind, event.time)]
        return []  # data is dropped

    def start(self, now: float) -> None:
        self.last_input = now

    def deadline(self) -> float | None:
        if self.closed or self.timeout <= 0 or self.last_input is None:
            return None
        return self.last_input + self.timeout

    def fire(self, now: float) -> list[Event]:
        self.closed = True
        return [Event(CLOSE, now)]

    def remove(self, now: float) -> list[Event]:
        if self.closed:
            return []
        self.closed = True
        return [Event(CLOSE, now)]
