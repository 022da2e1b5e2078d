"""Where the client gets time, sleep and sockets from.

``REAL`` uses the operating system; the virtual-time driver (:mod:`broker_sim.drivers.virtual`)
passes its own runtime, so the same client code runs inside a deterministic world where
every wait hands control to the world's scheduler.
"""

from __future__ import annotations

import threading
import time

from client.retry import sleep as _interruptible_sleep
from client.transport import SocketTransport


class RealRuntime:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        return _interruptible_sleep(seconds, stop)

    def connect(self, host: str, port: int, timeout: float, ssl):
        return SocketTransport(host, port, timeout, ssl)


REAL = RealRuntime()
