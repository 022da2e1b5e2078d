"""The virtual OS layer: unmodified blocking client code (kombu, py-amqp, pika) as world
actors, on virtual time and the world's links (DESIGN section 7; the gevent idea).

Theory of operation. While a :class:`~broker_sim.drivers.virtual.World` runs, the objects
below are swapped for stand-ins wherever they are bound (``time.sleep`` and py-amqp's
``from time import monotonic`` alike; see :mod:`.patching`) and a few class attributes are
swapped too (``selectors``' bound pollers, ``threading.Thread.start``, ``random.Random.seed``,
the real socket's I/O methods). Each stand-in asks :func:`.scope.actor_world`: an actor of
the running world gets the virtual behaviour, everyone else (pytest, other threads, the
world's scheduler) the real one. When the run ends, or raises, every swap is undone.

=============================  ==============================================================
real                           for an actor
=============================  ==============================================================
time.sleep / monotonic / time  the world's clock; a sleep blocks the actor (:mod:`.vtime`)
/ perf_counter (and ``_ns``)
socket.socket, socketpair      TCP over the world's links (:mod:`.vsocket`)
getaddrinfo, gethostbyname     the world's names (:mod:`.names`)
select.select / poll / epoll,  readiness of virtual descriptors (:mod:`.vselect`)
selectors
threading.Lock / RLock (so     locks that block the actor; threads become actors
Event, Condition, queue.Queue  (:mod:`.vthread`)
timeouts), Thread.start
random.*, os.urandom (uuid4),  draws from the world's seed (:mod:`.entropy`)
random.Random()
asyncio's running loop         one per actor (:mod:`.vasyncio`)
fcntl.fcntl                    remembered flags on virtual descriptors (:mod:`.guards`)
subprocess.Popen, os.fork,     :class:`WorldViolation` (:mod:`.guards`)
os.system, real socket I/O,
real descriptors in select
=============================  ==============================================================
"""

from __future__ import annotations

import functools

from broker_sim.drivers.virtual_os import (
    entropy,
    guards,
    names,
    vselect,
    vsocket,
    vthread,
    vtime,
)
from broker_sim.drivers.virtual_os.patching import Swap
from broker_sim.drivers.virtual_os.scope import WorldViolation, actor_world

__all__ = ["VirtualOS", "WorldViolation", "actor_world"]

_LAYER = "broker_sim.drivers.virtual_os"
_MODULES = (vtime, vsocket, names, vselect, vthread, entropy, guards)


@functools.cache
def _replacements() -> dict[int, tuple[object, object]]:
    """id(real) -> (real, stand-in): built once, so the stand-ins are the same objects in
    every run (a module imported during one run may keep one; it still dispatches)."""
    table: dict[int, tuple[object, object]] = {}
    for module in _MODULES:
        for real, stand_in in module.replacements().items():
            table[id(real)] = (real, stand_in)
    return table


@functools.cache
def _class_attributes() -> tuple[tuple[type, str, object], ...]:
    swaps = [*vselect.class_attributes(), *vthread.class_attributes()]
    swaps += entropy.class_attributes()
    swaps += [(vsocket.RealSocket, n, vsocket.guard_real(n)) for n in vsocket.REAL_IO_METHODS]
    return tuple(swaps)


class VirtualOS:
    """``with VirtualOS():`` the layer is in force; it is undone on leaving, even on error."""

    def __init__(self, world=None) -> None:
        self.world = world
        self._swap: Swap | None = None

    def __enter__(self) -> VirtualOS:
        swap = Swap(_replacements(), skip=(_LAYER,))
        try:
            swap.install()
            for owner, attr, stand_in in _class_attributes():
                swap.attribute(owner, attr, stand_in)
        except BaseException:
            swap.restore()
            raise
        self._swap = swap
        return self

    def __exit__(self, *exc) -> None:
        if self._swap is not None:
            self._swap.restore()
            self._swap = None
        if self.world is not None:
            vthread.end_threads(self.world)
