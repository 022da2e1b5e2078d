"""``time`` for actors: the world's virtual clock, and sleeps that hand control back.

``time.time()`` is the world's epoch (``virtual.START``, a fixed date) plus virtual time, so
timestamps in a history replay exactly; ``monotonic`` and ``perf_counter`` read the same
clock. ``sleep(s)`` blocks the actor for ``s`` virtual seconds (``sleep(0)`` yields to the
other ready actors, as the OS scheduler would).
"""

from __future__ import annotations

import time

from broker_sim.drivers.virtual_os.scope import actor_world

_real_sleep = time.sleep
_real = {name: getattr(time, name) for name in ("monotonic", "time", "perf_counter")}
_real_ns = {name: getattr(time, name) for name in ("monotonic_ns", "time_ns", "perf_counter_ns")}


def sleep(seconds: float) -> None:
    world = actor_world()
    if world is None:
        return _real_sleep(seconds)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    world.block("time.sleep", float(seconds), None)


def _clock(name: str):
    real = _real[name]

    def read() -> float:
        world = actor_world()
        return real() if world is None else world.clock.t

    read.__name__ = read.__qualname__ = name
    read.__doc__ = f"time.{name}: the world's virtual clock for its actors"
    return read


def _clock_ns(name: str):
    real = _real_ns[name]

    def read() -> int:
        world = actor_world()
        return real() if world is None else int(world.clock.t * 1e9)

    read.__name__ = read.__qualname__ = name
    return read


def replacements() -> dict[object, object]:
    """real -> stand-in, for the patcher."""
    table: dict[object, object] = {_real_sleep: sleep}
    table.update({real: _clock(name) for name, real in _real.items()})
    table.update({real: _clock_ns(name) for name, real in _real_ns.items()})
    return table
