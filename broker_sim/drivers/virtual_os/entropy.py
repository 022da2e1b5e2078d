"""Randomness for actors: every draw comes from the world's seed.

kombu's ``shuffle`` failover strategy calls ``random.shuffle``; kombu and pika name
consumers with ``uuid4()`` (``os.urandom``); a ``random.Random()`` made without a seed
seeds itself from the OS. Inside the world all of them draw from one stream derived from
the world's seed, so consumer tags, ids and choices replay exactly. ``random.Random(x)``
with an explicit seed is left alone: it already is deterministic.
"""

from __future__ import annotations

import os
import random

from broker_sim.drivers.virtual_os.scope import actor_world

_real_urandom = os.urandom
_real_seed = random.Random.seed
# the module-level functions are bound methods of one hidden instance: random.random ...
_module_functions = {
    name: getattr(random, name)
    for name in random.__all__
    if getattr(getattr(random, name), "__self__", None) is random._inst
}


def stream(world) -> random.Random:
    """The world's stream for its actors' randomness (apart from the scheduler's)."""
    rng = getattr(world, "entropy", None)
    if rng is None:
        rng = world.entropy = random.Random(f"actors-{world.seed}")
    return rng


def urandom(size: int) -> bytes:
    world = actor_world()
    return _real_urandom(size) if world is None else stream(world).randbytes(size)


def _seed(self, a=None, version=2) -> None:
    world = actor_world()
    if a is None and world is not None:
        a = stream(world).getrandbits(64)
    _real_seed(self, a, version)


def _module_function(name: str, real):
    def draw(*args, **kwargs):
        world = actor_world()
        if world is None:
            return real(*args, **kwargs)
        return getattr(stream(world), name)(*args, **kwargs)

    draw.__name__ = draw.__qualname__ = name
    draw.__doc__ = real.__doc__
    return draw


def replacements() -> dict[object, object]:
    table: dict[object, object] = {_real_urandom: urandom}
    table.update({real: _module_function(n, real) for n, real in _module_functions.items()})
    return table


def class_attributes() -> list[tuple[type, str, object]]:
    return [(random.Random, "seed", _seed)]
