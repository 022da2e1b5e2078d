"""``threading`` for actors: locks that wait on the world's clock, threads that are actors.

Locks an actor creates (``threading.Lock()``, ``RLock()``, and so the locks inside the
``Condition``, ``Event``, ``queue.Queue`` and ``Timer`` it creates) are :class:`VirtualLock`
/ :class:`VirtualRLock`: a contended acquire blocks the actor, not the world's one thread,
and ``Event.wait(5)`` / ``queue.get(timeout=5)`` time out after 5 *virtual* seconds.

A thread an actor starts runs as a new actor of the world (as gevent runs threads as
greenlets): pika resolves host names on a ``threading.Timer``; a user's heartbeat thread
is a thread too. It is scheduled by the world's seed like any actor, so the run stays
deterministic; a daemon thread does not keep the world running. ``World(threads="forbid")``
makes a thread start a :class:`~.scope.WorldViolation` instead.

``queue.SimpleQueue`` (C code whose ``get`` would block the world's thread) is the
pure-Python ``queue._PySimpleQueue`` for actors. Not covered: a *real* lock created before
the run and contended between two actors blocks the world's thread (the C lock cannot
hand control back).
"""

from __future__ import annotations

import queue
import threading
import time

from greenlet import getcurrent

from broker_sim.drivers.virtual_os.scope import actor_world, violation, wait_until

_real_simple_queue = queue.SimpleQueue  # C code: its get() would block the world's thread
_real_lock = threading.Lock
_real_rlock = threading.RLock
_real_sleep = time.sleep
_thread_methods = {name: getattr(threading.Thread, name) for name in ("start", "join", "is_alive")}
THREAD_IDENT_BASE = 2_000_000


def _wait_outside(ready, timeout) -> bool:
    """A virtual lock contended outside any actor (after the run): poll in real time."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not ready():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        _real_sleep(0.0005)
    return True


def _acquire(lock, blocking: bool, timeout: float, free) -> bool:
    if free():
        return True
    if not blocking:
        return False
    limit = None if timeout is None or timeout < 0 else timeout
    world = actor_world()
    if world is None:
        return _wait_outside(free, limit)
    return wait_until(world, "lock.acquire", free, limit)


class VirtualLock:
    """``threading.Lock`` for actors."""

    def __init__(self) -> None:
        self._locked = False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if _acquire(self, blocking, timeout, lambda: not self._locked):
            self._locked = True
            return True
        return False

    def release(self) -> None:
        if not self._locked:
            raise RuntimeError("release unlocked lock")
        self._locked = False

    def locked(self) -> bool:
        return self._locked

    def _at_fork_reinit(self) -> None:
        self._locked = False

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()


class VirtualRLock:
    """``threading.RLock`` for actors: owned by one greenlet, re-entrant."""

    def __init__(self) -> None:
        self._owner = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = getcurrent()
        if self._owner is me:
            self._count += 1
            return True
        if _acquire(self, blocking, timeout, lambda: self._owner is None):
            self._owner, self._count = me, 1
            return True
        return False

    def release(self) -> None:
        if self._owner is not getcurrent():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()

    # what threading.Condition uses when the lock has it
    def _is_owned(self) -> bool:
        return self._owner is getcurrent()

    def _release_save(self):
        state = (self._count, self._owner)
        self._owner, self._count = None, 0
        return state

    def _acquire_restore(self, state) -> None:
        self.acquire()
        self._count, self._owner = state

    def _at_fork_reinit(self) -> None:
        self._owner, self._count = None, 0


def Lock():  # noqa: N802 (threading's name)
    return _real_lock() if actor_world() is None else VirtualLock()


def RLock(*args, **kwargs):  # noqa: N802
    return _real_rlock(*args, **kwargs) if actor_world() is None else VirtualRLock()


# -- threads ------------------------------------------------------------------------------------


def _start(self) -> None:
    world = actor_world()
    if world is None:
        return _thread_methods["start"](self)
    if getattr(world, "threads", "green") == "forbid":
        raise violation(world, f"threading.Thread.start ({self.name})", "a real thread")
    if not self._initialized:
        raise RuntimeError("thread.__init__() not called")
    if self._started.is_set():
        raise RuntimeError("threads can only be started once")
    parent = world.current
    group = parent.group or parent.name
    actor = world.spawn(f"{group}/{self.name}", self._warren_run, daemon=self.daemon, group=group)
    self._warren_actor = actor
    self._ident = THREAD_IDENT_BASE + len(world.actors)
    world.__dict__.setdefault("green_threads", []).append(self)
    self._started.set()


def _run(self) -> None:
    try:
        self.run()
    finally:
        self._is_stopped = True


def end_threads(world) -> None:
    """The run is over: a green thread still blocked (a pool's idle worker) will never run
    again. Mark it stopped, so a real ``join()`` later (``concurrent.futures`` joins its
    workers at exit) returns at once instead of waiting for a thread that never existed."""
    for thread in world.__dict__.pop("green_threads", []):
        thread._is_stopped = True
        thread._tstate_lock = None


def _join(self, timeout=None) -> None:
    actor = getattr(self, "_warren_actor", None)
    if actor is None:
        return _thread_methods["join"](self, timeout)
    world = actor_world()
    if world is not None:
        wait_until(world, f"Thread.join ({self.name})", lambda: actor.done, timeout)


def _is_alive(self) -> bool:
    actor = getattr(self, "_warren_actor", None)
    if actor is None:
        return _thread_methods["is_alive"](self)
    return not actor.done


class _SimpleQueueClass(type):
    def __call__(cls):
        return _real_simple_queue() if actor_world() is None else queue._PySimpleQueue()

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, (_real_simple_queue, queue._PySimpleQueue))


class SimpleQueue(metaclass=_SimpleQueueClass):
    """``queue.SimpleQueue`` for actors: the pure-Python one, over virtual locks
    (``concurrent.futures``' thread pools, so asyncio's ``getaddrinfo``, use it)."""


def replacements() -> dict[object, object]:
    return {_real_lock: Lock, _real_rlock: RLock, _real_simple_queue: SimpleQueue}


def class_attributes() -> list[tuple[type, str, object]]:
    return [
        (threading.Thread, "start", _start),
        (threading.Thread, "join", _join),
        (threading.Thread, "is_alive", _is_alive),
        (threading.Thread, "_warren_run", _run),
    ]
