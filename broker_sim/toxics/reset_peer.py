"""``reset_peer``: once data or EOF arrives, wait ``timeout`` ms and reset the connection
(TCP RST, SO_LINGER 0); the data itself is dropped (toxics/reset_peer.go)."""

from broker_sim.toxics.base import RESET, Event, Toxic, ToxicState


class ResetPeerToxic(Toxic):
    type = "reset_peer"
    ATTRIBUTES = {"timeout": 0}  # noqa: RUF012

    def make_state(self, rng) -> ToxicState:
        return _ResetState(self.attr("timeout") / 1000.0)


class _ResetState(ToxicState):
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.done = False

    def feed(self, event: Event) -> list[Event]:
        if self.done:
            return []
        self.done = True
        return [Event(RESET, event.time + self.timeout)]
