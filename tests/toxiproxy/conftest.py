"""The echo upstream the Toxiproxy tests proxy to."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.toxiproxy.support import _echo


@pytest.fixture
def echo():
    """An upstream that echoes everything back."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    listener.close()
