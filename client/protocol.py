"""The client side of an AMQP 0-9-1 connection, sans-IO (spec 2.2.4, 4.2; py-amqp's
connection.py and channel.py do this with their socket inside).

Theory of operation. Bytes from the broker go in through :meth:`ClientProtocol.receive`
and come back out as events; bytes for the broker accumulate and are taken with
:meth:`data_to_send`. The handshake is driven by :data:`HANDSHAKE`:

    HEADER --start--> (start-ok sent) --tune--> (tune-ok + open sent) --open-ok--> OPEN

after which methods and content are reported per channel. The clock is passed in: every
received byte counts as a sign of life whether or not the application drains events
(py-amqp only notices heartbeats while draining), :meth:`heartbeat_due` says when to send
one, and :meth:`dead` when the broker has been silent for two heartbeat intervals (py-amqp's
rule). Frames are decoded by the broker simulator's :class:`~broker_sim.framing.FrameReader`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pamqp import commands as C

from broker_sim.framing import (
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    FrameReader,
    content_frames,
    header_payload,
    method_frame,
    publish_method_frame,
)
from client.errors import AMQPError, UnexpectedFrame, error_for

CLIENT_CAPABILITIES = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
}


@dataclass
class Opened:
    server_properties: dict
    frame_max: int
    channel_max: int
    heartbeat: int


@dataclass
class MethodEvent:
    channel: int
    method: object


@dataclass
class ContentEvent:
    """basic.deliver / basic.get-ok / basic.return with their content."""

    channel: int
    method: object
    properties: C.Basic.Properties
    body: bytes


@dataclass
class Closed:
    """The connection is closed: by the broker (``error`` set) or by us (None)."""

    error: AMQPError | None


@dataclass
class ChannelClosed:
    channel: int
    error: AMQPError


@dataclass
class Blocked:
    reason: str


@dataclass
class Unblocked:
    pass


@dataclass
class _Assembly:
    method: object
    properties: C.Basic.Properties | None = None
    size: int = 0
    parts: list = field(default_factory=list)
    received: int = 0


class ClientProtocol:
    def __init__(
        self,
        userid: str,
        password: str,
        virtual_host: str = "/",
        heartbeat: int = 0,
        frame_max: int = 131072,
        channel_max: int = 2047,
        clock: Callable[[], float] = lambda: 0.0,
        client_properties: dict | None = None,
        login_method: str = "PLAIN",
    ) -> None:
        if login_method not in ("PLAIN", "AMQPLAIN"):
            raise ValueError(f"login_method must be PLAIN or AMQPLAIN, got {login_method!r}")
        self.userid, self.password, self.virtual_host = userid, password, virtual_host
        self.want = {"heartbeat": heartbeat, "frame_max": frame_max, "channel_max": channel_max}
        self.clock = clock
        self.login_method = login_method
        self.client_properties = {
            "product": "warren-client",
            "capabilities": dict(CLIENT_CAPABILITIES),
            **(client_properties or {}),
        }
        self.state = "header"
        self.reader = FrameReader(0, whole_content=C.Basic.Deliver)
        self.out = bytearray()
        self.frame_max = frame_max
        self.heartbeat = 0
        self.last_received = self.last_sent = clock()
        self.assembling: dict[int, _Assembly] = {}
        self.closing_channels: set[int] = set()

    # -- bytes in and out -----------------------------------------------------------------

    def initiate(self) -> None:
        self._write(PROTOCOL_HEADER)

    def data_to_send(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data

    def _write(self, data: bytes) -> None:
        self.out += data
        self.last_sent = self.clock()

    def send_method(self, channel: int, method) -> None:
        self._write(method_frame(channel, method))

    def send_content(self, channel: int, method, properties, body: bytes) -> None:
        self._write(
            method_frame(channel, method)
            + content_frames(channel, header_payload(properties, len(body)), body, self.frame_max)
        )

    def send_publish(
        self, channel: int, exchange: str, routing_key: str, mandatory: bool, properties, body
    ) -> None:
        """basic.publish and its content, encoded without building a method object."""
        self._write(
            publish_method_frame(channel, exchange, routing_key, mandatory)
            + content_frames(channel, header_payload(properties, len(body)), body, self.frame_max)
        )

    def receive(self, data: bytes, arrived_after: float | None = None) -> list:
        """Feed broker bytes; return the events they complete.

        ``arrived_after`` is when the socket was last found empty: bytes read later may have
        waited there since, so the broker is credited with life from that moment (no more
        than one heartbeat interval back), not from the read. An application that only
        polls (``heartbeat_check``) still finds a dead broker within two intervals of its
        last byte, and a healthy one is never judged dead."""
        now = self.clock()
        if arrived_after is None or self.heartbeat <= 0:
            self.last_received = now
        else:
            self.last_received = max(self.last_received, arrived_after, now - self.heartbeat)
        if self.state == "header" and data.startswith(b"AMQP"):
            raise error_for(
                505, f"broker refused the protocol header: {data[:8]!r}", on_connection=True
            )
        self.reader.feed(data)
        events: list = []
        for frame in self.reader.frames():
            events.extend(self._frame(frame))
        return events

    # -- heartbeats -------------------------------------------------------------------------

    def heartbeat_due(self) -> bool:
        return self.heartbeat > 0 and self.clock() - self.last_sent >= self.heartbeat / 2

    def send_heartbeat(self) -> None:
        self._write(HEARTBEAT_FRAME)

    def dead(self) -> bool:
        """True after two heartbeat intervals without a byte from the broker."""
        return self.heartbeat > 0 and self.clock() - self.last_received > 2 * self.heartbeat

    # -- frames -----------------------------------------------------------------------------

    def _frame(self, frame) -> list:
        if frame.kind == FRAME_HEARTBEAT:
            return []
        if frame.channel == 0:
            if frame.kind != FRAME_METHOD:
                raise UnexpectedFrame("content frame on channel 0", None, 505)
            return self._connection_method(frame.method)
        if frame.kind == FRAME_METHOD:
            if frame.body is not None:  # a delivery with its whole content (FrameReader)
                return [ContentEvent(frame.channel, frame.method, frame.properties, frame.body)]
            return self._channel_method(frame.channel, frame.method)
        return self._content(frame)

    def _connection_method(self, method) -> list:
        handler = HANDSHAKE.get((self.state, type(method)))
        if handler is None:
            raise error_for(
                503, f"unexpected {method.name} in state {self.state}", on_connection=True
            )
        return handler(self, method)

    def _channel_method(self, channel: int, method) -> list:
        if isinstance(method, C.Channel.Close):
            self.send_method(channel, C.Channel.CloseOk())
            self.assembling.pop(channel, None)
            sig = (method.class_id, method.method_id)
            return [ChannelClosed(channel, error_for(method.reply_code, method.reply_text, sig))]
        if isinstance(method, (C.Basic.Deliver, C.Basic.GetOk, C.Basic.Return)):
            self.assembling[channel] = _Assembly(method)
            return []
        return [MethodEvent(channel, method)]

    def _content(self, frame) -> list:
        assembly = self.assembling.get(frame.channel)
        if assembly is None:
            raise UnexpectedFrame(f"content on channel {frame.channel} without a method", None, 505)
        if frame.kind == FRAME_HEADER:
            assembly.properties, assembly.size = frame.properties, frame.body_size
        elif frame.kind == FRAME_BODY:
            assembly.parts.append(frame.payload)
            assembly.received += len(frame.payload)
        if assembly.properties is None or assembly.received < assembly.size:
            return []
        del self.assembling[frame.channel]
        body = b"".join(assembly.parts)
        return [ContentEvent(frame.channel, assembly.method, assembly.properties, body)]

    # -- closing ----------------------------------------------------------------------------

    def close(self, code: int = 200, text: str = "Normal shutdown") -> None:
        if self.state == "open":
            self.send_method(0, C.Connection.Close(code, text, 0, 0))
            self.state = "closing"


def _on_start(proto: ClientProtocol, m: C.Connection.Start) -> list:
    mechanisms = (m.mechanisms or "").split()
    if proto.login_method not in mechanisms:
        raise error_for(
            403, f"broker offers {mechanisms}, not {proto.login_method}", on_connection=True
        )
    if proto.login_method == "PLAIN":
        response = f"\0{proto.userid}\0{proto.password}"
    else:
        from pamqp import encode

        table = encode.field_table({"LOGIN": proto.userid, "PASSWORD": proto.password})
        response = table[4:].decode("utf-8")  # pamqp wants str for longstr; ASCII-safe table
    proto.send_method(
        0,
        C.Connection.StartOk(
            client_properties=proto.client_properties,
            mechanism=proto.login_method,
            response=response,
            locale="en_US",
        ),
    )
    proto.server_properties = dict(m.server_properties or {})
    proto.state = "tune"
    return []


def _negotiate(ours: int, theirs: int) -> int:
    """Spec 1.4.2.6: the lower non-zero value wins (0 means 'no limit' on either side)."""
    if ours == 0 or theirs == 0:
        return max(ours, theirs)
    return min(ours, theirs)


def negotiate_heartbeat(server: int, client: int | None) -> int:
    """py-amqp's Connection._on_tune: the smaller of the two when both are non-zero, the
    other one when either is 0 — and 0 (no heartbeats) whenever the client asked for None
    or 0, whatever the server proposed."""
    if not client:
        return 0
    server = server or 0
    return max(server, client) if server == 0 else min(server, client)


def _on_tune(proto: ClientProtocol, m: C.Connection.Tune) -> list:
    want = proto.want
    proto.frame_max = _negotiate(want["frame_max"], m.frame_max)
    channel_max = _negotiate(want["channel_max"], m.channel_max)
    proto.heartbeat = negotiate_heartbeat(m.heartbeat, want["heartbeat"])
    proto.reader.frame_max = proto.frame_max
    proto.channel_max = channel_max
    proto.send_method(0, C.Connection.TuneOk(channel_max, proto.frame_max, proto.heartbeat))
    proto.send_method(0, C.Connection.Open(virtual_host=proto.virtual_host))
    proto.state = "opening"
    return []


def _on_open_ok(proto: ClientProtocol, m: C.Connection.OpenOk) -> list:
    proto.state = "open"
    return [Opened(proto.server_properties, proto.frame_max, proto.channel_max, proto.heartbeat)]


def _on_close(proto: ClientProtocol, m: C.Connection.Close) -> list:
    proto.send_method(0, C.Connection.CloseOk())
    proto.state = "closed"
    sig = (m.class_id, m.method_id)
    return [Closed(error_for(m.reply_code, m.reply_text, sig, on_connection=True))]


def _on_close_ok(proto: ClientProtocol, m: C.Connection.CloseOk) -> list:
    proto.state = "closed"
    return [Closed(None)]


def _on_blocked(proto: ClientProtocol, m: C.Connection.Blocked) -> list:
    return [Blocked(m.reason)]


def _on_unblocked(proto: ClientProtocol, m: C.Connection.Unblocked) -> list:
    return [Unblocked()]


#: (state, method) -> handler for channel-0 methods from the broker.
HANDSHAKE = {
    ("header", C.Connection.Start): _on_start,
    ("tune", C.Connection.Tune): _on_tune,
    ("opening", C.Connection.OpenOk): _on_open_ok,
    **{(state, C.Connection.Close): _on_close for state in ("tune", "opening", "open", "closing")},
    ("closing", C.Connection.CloseOk): _on_close_ok,
    ("open", C.Connection.Blocked): _on_blocked,
    ("open", C.Connection.Unblocked): _on_unblocked,
    ("closing", C.Connection.Blocked): _on_blocked,
    ("closing", C.Connection.Unblocked): _on_unblocked,
}
