"""``bandwidth``: limit the rate to ``rate`` KB/s (toxics/bandwidth.go).

A chunk leaves after len/rate ms (rate in bytes per ms); chunks larger than 100 ms worth of
bytes are cut into 100 ms pieces.
"""

from broker_sim.toxics.base import DATA, Event, Toxic, ToxicState


class BandwidthToxic(Toxic):
    type = "bandwidth"
    ATTRIBUTES = {"rate": 0}  # noqa: RUF012

    def make_state(self, rng) -> ToxicState:
        return _BandwidthState(self.attr("rate"))


class _BandwidthState(ToxicState):
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.free_at = 0.0  # when the simulated link is free again

    def feed(self, event: Event) -> list[Event]:
        start = max(event.time, self.free_at)
        if event.kind != DATA or self.rate <= 0:
            self.free_at = start
            return [Event(event.kind, start, event.data)]
        out = []
        data, piece = event.data, self.rate * 100
        t = start
        while len(data) > piece:
            t += 0.1
            out.append(Event(DATA, t, data[:piece]))
            data = data[piece:]
        t += len(data) / self.rate / 1000.0
        out.append(Event(DATA, t, data))
        self.free_at = t
        return out
