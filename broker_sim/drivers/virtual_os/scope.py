"""Who is calling: an actor of the running world, or anything else.

The layer is in force only for code running as an actor of the world whose ``run()`` is on
the stack, on the world's thread: every stand-in asks :func:`actor_world` and gives the
real behaviour to everyone else (the test process, pytest, other threads, the world's own
scheduler). Greenlets belong to one thread, so "the current greenlet is the running actor's"
already means "on the world's thread".
"""

from __future__ import annotations

from collections.abc import Callable

from greenlet import getcurrent

_running: list = []  # the world whose run() is on the stack (one at a time)


class WorldViolation(RuntimeError):
    """An actor did something the world cannot make deterministic (a real socket or file
    descriptor, DNS for a name outside the world, a real thread or process)."""


def enter(world) -> None:
    if _running:
        raise RuntimeError("a world is already running in this process")
    _running.append(world)


def leave(world) -> None:
    if _running and _running[0] is world:
        _running.clear()


def actor_world():
    """The running world when the caller is one of its actors, else None."""
    if _running:
        world = _running[0]
        actor = world.current
        if actor is not None and actor.glet is getcurrent():
            return world
    return None


def violation(world, call: str, why: str) -> WorldViolation:
    actor = world.current.name if world.current is not None else "-"
    return WorldViolation(
        f"{call} called inside the world by actor {actor!r}: {why} (it would break "
        f"determinism; seed {world.seed})"
    )


def wait_until(world, what: str, ready: Callable[[], bool], timeout: float | None) -> bool:
    """Block the calling actor until ``ready()`` or ``timeout`` virtual seconds (None:
    forever); True when ``ready()`` holds. Other actors, faults and timers run meanwhile."""
    if ready():
        return True
    clock = world.clock
    deadline = None if timeout is None else world.deadline(max(timeout, 0.0))
    while True:
        left = None if deadline is None else deadline - clock.t
        if left is not None and left <= 0:
            return ready()
        world.block(what, left, ready)
        if ready():
            return True
