"""``time`` for actors: the world's virtual clock, and sleeps that hand control back.

``time.time()`` is the world's epoch (``virtual.START``, a fixed date) plus virtual time, so
timestamps in a history replay exactly. ``monotonic`` and ``perf_counter`` read the same
clock as an uptime (:data:`UPTIME` plus virtual time), as the OS's do: small numbers, so a
nanosecond still counts (asyncio adds its clock resolution, 1e-9, to ``monotonic()`` and
expects a bigger number; at 1.7e9 a float cannot hold it and a due timer never runs).
``sleep(s)`` blocks the actor for ``s`` virtual seconds (``sleep(0)`` yields to the other
ready actors, as the OS scheduler would).
"""

from __future__ import annotations

import time

from broker_sim.drivers.virtual_os.scope import actor_world

UPTIME = 100_000.0  # what monotonic() reads when a world starts: a day after boot
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


def _clock(name: str, real, scale=None):
    """A stand-in for ``time.<name>``: ``time``/``time_ns`` read the world's epoch clock,
    the others its uptime; ``scale`` turns seconds into the real function's unit (ns)."""
    uptime = not name.startswith("time")

    def read():
        world = actor_world()
        if world is None:
            return real()
        clock = world.clock
        seconds = clock.t - clock.start + UPTIME if uptime else clock.t
        return seconds if scale is None else scale(seconds)

    read.__name__ = read.__qualname__ = name
    read.__doc__ = f"time.{name}: the world's virtual clock for its actors"
    return read


def _nanoseconds(seconds: float) -> int:
    return int(seconds * 1e9)


def replacements() -> dict[object, object]:
    """real -> stand-in, for the patcher."""
    table: dict[object, object] = {_real_sleep: sleep}
    table.update({real: _clock(name, real) for name, real in _real.items()})
    table.update({real: _clock(name, real, _nanoseconds) for name, real in _real_ns.items()})
    return table
