"""History for unmodified clients: a thin layer over kombu's and pika's public calls.

The bundled client records DESIGN section 5's history itself. kombu and pika do not, and a
user's code must not have to: while a run records, :func:`recording` wraps the calls a
client makes for each event (one table per library: :mod:`.kombu`, :mod:`.pika`,
:mod:`.aio_pika`) and
writes the events into the run's history: ``publish_invoke`` / ``publish_ok`` (with
``confirmed``) / ``publish_fail``, ``deliver`` (message id, redelivered), ``ack`` /
``reject`` / ``requeue``, a retried or surfaced connection ``error``, and
``recovery_succeeded`` for every connection an actor opens after its first. A publish
without a ``message_id`` gets one from the run's ids (the seed's, in a world), so the
checker can follow it. The wrappers are class attributes swapped for the run and put
back after it (the same swap as the virtual OS layer's), so nothing of the clients' code
changes and nothing is left behind.

``with recording(world): world.run()`` records into a world; the scenario runner records
for any adapter that declares ``instruments = ("kombu",)`` (or ``"pika"``, ``"aio_pika"``).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from broker_sim.drivers.virtual_os.patching import Swap

LIBRARIES = ("kombu", "pika", "aio_pika")


class Recorder:
    """Where the wrappers write: ``record(kind, **details)``, ``who()`` names the caller
    (a world's actor, or the thread on a live run), ``new_id()`` makes message ids."""

    def __init__(self, record: Callable, who: Callable[[], str], new_id: Callable[[], str]):
        self.record, self.who, self.new_id = record, who, new_id
        self._connected: set[str] = set()  # callers that have had a connection
        # the last exception recorded per caller: the object itself, never its id(), which
        # a later exception may reuse (memory addresses differ between processes: a digest
        # would too)
        self._errors: dict[str, BaseException] = {}

    def connected(self, broker: str | None) -> None:
        """A connection was established: a recovery when the caller had one before."""
        who = self.who()
        if who in self._connected:
            self.record("recovery_succeeded", broker=broker, details=[])
        self._connected.add(who)

    def error(self, exc: BaseException, broker: str | None = None) -> None:
        """A connection error the client handles or raises; once per exception."""
        who = self.who()
        if self._errors.get(who) is not exc:
            self._errors[who] = exc
            self.record("error", error=type(exc).__name__, broker=broker)


def for_world(world) -> Recorder:
    def who() -> str:
        actor = world.current
        return (actor.group or actor.name) if actor is not None else "-"

    return Recorder(world.runtime.record, who, world.runtime.new_id)


def for_runtime(runtime) -> Recorder:
    return Recorder(runtime.record, lambda: threading.current_thread().name, runtime.new_id)


@contextmanager
def recording(target, libraries: tuple[str, ...] = LIBRARIES) -> Iterator[Recorder]:
    """Record the history of ``libraries``' calls into ``target`` (a World, or a runtime
    with ``record`` and ``new_id``) while the block runs; undone on leaving."""
    recorder = for_world(target) if hasattr(target, "runtime") else for_runtime(target)
    swap = Swap({})
    try:
        for name in libraries:
            if name not in LIBRARIES:
                raise ValueError(f"no instrumentation for {name!r}: one of {', '.join(LIBRARIES)}")
            table = importlib.import_module(f"scenarios.instrument.{name}").wrappers(recorder)
            for owner, attr, wrapper in table:
                swap.attribute(owner, attr, wrapper)
        yield recorder
    finally:
        swap.restore()
