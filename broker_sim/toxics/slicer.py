"""``slicer``: cut each chunk into pieces of about ``average_size`` bytes (± up to
``size_variation``), sent ``delay`` µs apart (toxics/slicer.go's recursive halving)."""

from broker_sim.toxics.base import DATA, Event, Toxic, ToxicState


class SlicerToxic(Toxic):
    type = "slicer"
    ATTRIBUTES = {"average_size": 0, "size_variation": 0, "delay": 0}  # noqa: RUF012

    def make_state(self, rng) -> ToxicState:
        return _SlicerState(
            self.attr("average_size"), self.attr("size_variation"), self.attr("delay"), rng
        )


class _SlicerState(ToxicState):
    def __init__(self, average: int, variation: int, delay_us: int, rng) -> None:
        self.average, self.variation, self.delay, self.rng = average, variation, delay_us, rng
        self.last = 0.0

    def _cuts(self, start: int, end: int) -> list[int]:
        if (end - start) - self.average <= self.variation:
            return [start, end]
        mid = start + (end - start) // 2
        if self.variation > 0:
            mid += self.rng.randrange(self.variation * 2) - self.variation
        return self._cuts(start, mid) + self._cuts(mid, end)

    def feed(self, event: Event) -> list[Event]:
        t = max(event.time, self.last)
        if event.kind != DATA or self.average <= 0:
            self.last = t
            return [Event(event.kind, t, event.data)]
        cuts = self._cuts(0, len(event.data))
        out = []
        for i in range(0, len(cuts), 2):
            piece = event.data[cuts[i] : cuts[i + 1]]
            if piece:
                out.append(Event(DATA, t, piece))
                t += self.delay / 1e6
        self.last = t
        return out
