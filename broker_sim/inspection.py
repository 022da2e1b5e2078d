"""What a test can see of one connection besides its frames: its lifecycle in the cluster's
``events`` and its frame counters (DESIGN section 2, inspection).

Lifecycle events, one ``Event(time, kind, node, details)`` each, ``conn`` naming the
connection: ``connection-accepted`` (the TCP connection reached the node; ``peer``),
``connection-refused`` (a driver found the node down or its listener/proxy closed; no
``conn``), ``connection-open`` (the handshake finished), then exactly one end:
``handshake-failed`` or ``connection-closed``, with ``by`` (``client``: its
connection.close; ``broker``: a hard error, a shutdown, missed heartbeats, a crash;
``peer``: the socket closed without a close) and ``code``/``text`` when a close method
carried them, else ``reason``. So a test counts a client's attempts per node, in order.

Frame counters: :class:`FrameCounts` per connection, by direction and frame kind (a whole
basic.publish read in one piece counts as its method, header and body frames).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class FrameCounts:
    methods_in: int = 0
    headers_in: int = 0
    bodies_in: int = 0
    heartbeats_in: int = 0
    methods_out: int = 0
    headers_out: int = 0
    bodies_out: int = 0
    heartbeats_out: int = 0

    def add_in(self, kind: int, with_content: bool) -> None:
        """One frame read (on the hot path: plain branches, no lookups)."""
        if kind == 1:
            self.methods_in += 1
            if with_content:
                self.headers_in += 1
                self.bodies_in += 1
        elif kind == 3:
            self.bodies_in += 1
        elif kind == 2:
            self.headers_in += 1
        elif kind == 8:
            self.heartbeats_in += 1

    def add_content_out(self, body_size: int, frame_max: int) -> None:
        """A content header and the body frames ``content_frames`` splits ``body_size`` into."""
        chunk = frame_max - 8 if frame_max else max(body_size, 1)
        self.headers_out += 1
        self.bodies_out += -(-body_size // chunk) if body_size else 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
