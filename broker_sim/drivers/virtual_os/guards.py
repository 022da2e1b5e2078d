"""What an actor may not do, and the stand-ins that say so: real processes, and
``fcntl`` answered for the world's descriptors.

:data:`REFUSED` is the table of calls that would reach real I/O or real concurrency from
inside the world; each stand-in raises :class:`~.scope.WorldViolation` for an actor
and calls the real function for anyone else. (Real sockets are guarded in ``vsocket``,
real descriptors in ``vselect``.)
"""

from __future__ import annotations

import fcntl
import os
import subprocess

from broker_sim.drivers.virtual_os.scope import actor_world, violation
from broker_sim.drivers.virtual_os.vsocket import FD_BASE, descriptors

_real_fcntl = fcntl.fcntl

#: (module, attribute, what an actor calling it would do)
REFUSED = (
    (subprocess, "Popen", "a real process"),
    (os, "fork", "a real process"),
    (os, "system", "a real process"),
    (os, "posix_spawn", "a real process"),
)


def refusing(call: str, real, why: str):
    if isinstance(real, type):

        class _Refusing(type):
            def __call__(cls, *args, **kwargs):
                world = actor_world()
                if world is not None:
                    raise violation(world, call, why)
                return real(*args, **kwargs)

            def __instancecheck__(cls, obj) -> bool:
                return isinstance(obj, real)

        return _Refusing(real.__name__, (), {"__doc__": real.__doc__})

    def stand_in(*args, **kwargs):
        world = actor_world()
        if world is not None:
            raise violation(world, call, why)
        return real(*args, **kwargs)

    stand_in.__name__ = getattr(real, "__name__", call)
    return stand_in


def fcntl_(fd, cmd, arg=0):
    """``fcntl`` on a virtual descriptor: flags are remembered (py-amqp sets FD_CLOEXEC)."""
    number = fd if isinstance(fd, int) else fd.fileno()
    world = actor_world()
    if number < FD_BASE or world is None:
        return _real_fcntl(fd, cmd, arg)
    obj = descriptors(world).table.get(number)
    if obj is None:
        raise OSError(9, os.strerror(9))
    flags = obj.__dict__.setdefault("_fcntl_flags", {})
    if cmd in (fcntl.F_GETFD, fcntl.F_GETFL):
        return flags.get(cmd, 0)
    if cmd in (fcntl.F_SETFD, fcntl.F_SETFL):
        flags[cmd - 1] = arg  # F_SETFD/F_SETFL are the getters + 1
        return 0
    raise violation(world, f"fcntl.fcntl(cmd={cmd})", "not simulated for virtual descriptors")


def replacements() -> dict[object, object]:
    table: dict[object, object] = {_real_fcntl: fcntl_}
    for module, name, why in REFUSED:
        real = getattr(module, name, None)
        if real is not None:
            table[real] = refusing(f"{module.__name__}.{name}", real, why)
    return table
