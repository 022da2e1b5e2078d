"""Blocking TCP (and TLS) transport with a timeout on every wait.

The only module of ``client`` that touches sockets. ``recv(timeout)`` returns b"" on EOF,
None when the timeout passes, and raises ConnectionError on a reset.
"""

from __future__ import annotations

import socket
import ssl as ssl_module
import struct


class SocketTransport:
    def __init__(
        self, host: str, port: int, connect_timeout: float = 5.0, ssl: bool | dict = False
    ) -> None:
        if connect_timeout is not None and connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be > 0, got {connect_timeout}")
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl:
            context = ssl_module.create_default_context()
            if isinstance(ssl, dict) and ssl.get("cert_reqs") == ssl_module.CERT_NONE:
                context.check_hostname = False
                context.verify_mode = ssl_module.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.closed = False

    def send(self, data: bytes, timeout: float = 10.0) -> None:
        if data:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)

    def recv(self, timeout: float) -> bytes | None:
        self.sock.settimeout(max(timeout, 0.0001))
        try:
            return self.sock.recv(262144)
        except TimeoutError:
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()

    def abort(self) -> None:
        """Drop the connection at once (RST), without any goodbye to a dead peer."""
        if not self.closed:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close()
