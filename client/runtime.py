"""Where the client gets time, sleep, sockets, randomness and its history from.

``REAL`` uses the operating system; the virtual-time driver (:mod:`broker_sim.drivers.virtual`)
passes its own runtime, so the same client code runs inside a deterministic world where
every wait hands control to the world's scheduler and every random draw comes from its seed.

``record(kind, **details)`` is the client's operation history (DESIGN section 5): publish
invoke / ok / fail / unknown, deliveries, acks and rejects, retried errors, reconnects.
``REAL`` drops it; :class:`RecordingRuntime` keeps it for a live run, the world's runtime
writes it into the world's history.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

from client.retry import sleep as _interruptible_sleep
from client.transport import SocketTransport


class RealRuntime:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        return _interruptible_sleep(seconds, stop)

    def connect(self, host: str, port: int, timeout: float, ssl):
        return SocketTransport(host, port, timeout, ssl)

    def random(self) -> random.Random:
        return random.Random()

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def record(self, kind: str, **details) -> None:
        pass


class RecordingRuntime(RealRuntime):
    """The real runtime, keeping the history: ``(monotonic time, kind, details)`` tuples."""

    def __init__(self) -> None:
        self.history: list[tuple[float, str, dict]] = []
        self._lock = threading.Lock()

    def record(self, kind: str, **details) -> None:
        with self._lock:
            self.history.append((time.monotonic(), kind, details))


REAL = RealRuntime()
