"""Toxiproxy's toxics, one small file each, registered by name (see ``base``)."""

from broker_sim.toxics.bandwidth import BandwidthToxic
from broker_sim.toxics.base import CLOSE, DATA, RESET, Chain, Event, Toxic, ToxicError
from broker_sim.toxics.latency import LatencyToxic
from broker_sim.toxics.limit_data import LimitDataToxic
from broker_sim.toxics.noop import NoopToxic
from broker_sim.toxics.reset_peer import ResetPeerToxic
from broker_sim.toxics.slicer import SlicerToxic
from broker_sim.toxics.slow_close import SlowCloseToxic
from broker_sim.toxics.timeout import TimeoutToxic

TOXICS: dict[str, type[Toxic]] = {
    cls.type: cls
    for cls in (
        NoopToxic,
        LatencyToxic,
        BandwidthToxic,
        SlowCloseToxic,
        TimeoutToxic,
        ResetPeerToxic,
        SlicerToxic,
        LimitDataToxic,
    )
}

__all__ = ["CLOSE", "DATA", "RESET", "TOXICS", "Chain", "Event", "Toxic", "ToxicError"]
