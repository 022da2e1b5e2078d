"""A kombu connection waiting for py-amqp's heartbeat check to fail (shared by tests)."""

from __future__ import annotations

import time

import kombu
import pytest


def kombu_heartbeat_failure(url: str, fault, seconds: float = 10) -> tuple[Exception, float]:
    """Connect with heartbeat=2, apply ``fault``, wait for the heartbeat check to raise.

    The connection is collected, not closed: kombu's close waits for a close-ok from a
    hung peer without a timeout (a kombu pitfall the bundled client fixes)."""
    conn = kombu.Connection(url, heartbeat=2)
    try:
        conn.connect()
        fault()
        started = time.monotonic()
        with pytest.raises(conn.connection_errors) as info:
            while time.monotonic() - started < seconds:
                conn.heartbeat_check()
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
        return info.value, time.monotonic() - started
    finally:
        conn.collect()
