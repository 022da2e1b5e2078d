"""``noop``: passes everything through (Toxiproxy toxics/noop.go)."""

from broker_sim.toxics.base import Toxic, ToxicState


class NoopToxic(Toxic):
    type = "noop"

    def make_state(self, rng) -> ToxicState:
        return ToxicState()
