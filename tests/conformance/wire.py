"""A raw-socket AMQP peer for malformed-input tests (what no real client will send)."""

from __future__ import annotations

import socket
import struct
import time

from pamqp import commands as C
from pamqp import frame as pframe

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"


class RawClient:
    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buffer = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frames(self, channel: int, *frames) -> None:
        self.send(b"".join(pframe.marshal(f, channel) for f in frames))

    def read_raw(self, timeout: float = 5.0) -> bytes:
        """Everything the server sends until it closes the socket or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        data = b""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                self.eof = True
                break
            if not chunk:
                self.eof = True
                break
            data += chunk
        return data

    def next_frame(self, timeout: float = 5.0):
        """The next decoded frame ``(channel, value)``, or None on EOF/timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 7:
                size = struct.unpack(">I", self.buffer[3:7])[0]
                if len(self.buffer) >= size + 8:
                    used, channel, value = pframe.unmarshal(self.buffer)
                    self.buffer = self.buffer[used:]
                    return channel, value
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.eof:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                continue
            self.buffer += chunk

    def next_method(self, timeout: float = 5.0, skip_heartbeats: bool = True):
        while True:
            got = self.next_frame(timeout)
            if got is None:
                return None
            _, value = got
            if skip_heartbeats and type(value).__name__ == "Heartbeat":
                continue
            return value

    def handshake(self, heartbeat: int = 0, frame_max: int = 131072) -> None:
        self.send(PROTOCOL_HEADER)
        assert isinstance(self.next_method(), C.Connection.Start)
        self.send_frames(
            0,
            C.Connection.StartOk(
                client_properties={
                    "capabilities": {
                        "authentication_failure_close": True,
                        "consumer_cancel_notify": True,
                    }
                },
                mechanism="PLAIN",
                response="\0guest\0guest",
            ),
        )
        tune = self.next_method()
        assert isinstance(tune, C.Connection.Tune)
        self.send_frames(
            0,
            C.Connection.TuneOk(tune.channel_max, frame_max, heartbeat),
            C.Connection.Open(virtual_host="/"),
        )
        assert isinstance(self.next_method(), C.Connection.OpenOk)

    def open_channel(self, number: int = 1) -> None:
        self.send_frames(number, C.Channel.Open())
        assert isinstance(self.next_method(), C.Channel.OpenOk)

    def close(self) -> None:
        self.sock.close()
