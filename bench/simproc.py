"""Start ``warren sim`` as a child process (so clients and broker don't share a GIL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


class SimProcess:
    def __init__(self, nodes: int = 1, extra: tuple[str, ...] = ()) -> None:
        self.nodes = nodes
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.urls: list[str] = []

    def __enter__(self) -> SimProcess:
        cmd = [
            sys.executable,
            "-m",
            "scenarios.cli",
            "sim",
            "--nodes",
            str(self.nodes),
            *self.extra,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while len(self.urls) < self.nodes and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"warren sim exited with {self.proc.wait()}")
            if line.startswith("amqp://"):
                self.urls.append(line.strip())
        if len(self.urls) < self.nodes:
            raise RuntimeError("warren sim did not print its URLs within 20 s")
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
