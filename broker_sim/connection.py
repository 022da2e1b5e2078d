"""The server side of one AMQP 0-9-1 connection, sans-IO (spec 2.2.4, 4.2; rabbit_reader.erl).

Theory of operation. Bytes go in through :meth:`ServerConnection.receive`; frames and
requests to close the transport come out through the node (``take_output``). The
connection negotiates in a fixed order, driven by :data:`TRANSITIONS`:

    HEADER --protocol header--> START_OK --start-ok--> TUNE_OK --tune-ok--> OPEN_WAIT
    OPEN_WAIT --connection.open--> OPEN --(error or close)--> CLOSING --close-ok--> CLOSED

A wrong protocol header is answered with the server's header and the socket closes
(rabbit_reader refuse_connection). A method that the table does not allow in the current
state is a 503 COMMAND_INVALID hard error. Hard errors send connection.close and enter
CLOSING, where every frame but close/close-ok is discarded (spec 2.3.7). Heartbeats follow
rabbit_heartbeat: every H/2 seconds a heartbeat frame goes out if nothing else was sent;
every H seconds the receive side checks for traffic and drops the socket (no close frame)
after the second silent check.

Resource alarms follow rabbit_reader's ``blocked`` state: while any node of the cluster is
in alarm, the first basic.publish method frame a connection sends is held unprocessed, the
connection stops reading (its bytes stay buffered, drivers stop reading the socket) and
connection.blocked goes out; when the alarm clears, the held publish and everything
buffered behind it are processed in order. A connection that never publishes keeps
working, as on RabbitMQ.
"""

from __future__ import annotations

from pamqp import commands as C

from broker_sim.channel import ServerChannel
from broker_sim.errors import AMQPError
from broker_sim.framing import (
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    FrameReader,
    InFrame,
    PublishMethod,
    content_frames,
    method_frame,
)
from broker_sim.inspection import FrameCounts
from broker_sim.schema_lock import needs_lock

HEADER, START_OK, TUNE_OK, OPEN_WAIT, OPEN, CLOSING, CLOSED = (
    "header",
    "start-ok",
    "tune-ok",
    "open-wait",
    "open",
    "closing",
    "closed",
)
#: rabbit_reader also accepts AMQP 0-9 and the mistaken 1,1,9,1 header some clients send
#: and answers both in 0-9-1; anything else gets the server's header and a closed socket.
ACCEPTED_HEADERS = frozenset({PROTOCOL_HEADER, b"AMQP\x01\x01\x00\x09", b"AMQP\x01\x01\x09\x01"})
FRAME_MIN_SIZE = 4096  # frame_max before tuning (spec 4.2.1; RabbitMQ ?FRAME_MIN_SIZE)
HANDSHAKE_TIMEOUT = 10.0  # RabbitMQ handshake_timeout
CLOSING_TIMEOUT = 30.0  # RabbitMQ's longest wait for close-ok, or for the client's own close
PUBLISH_METHODS = (C.Basic.Publish, PublishMethod)  # what an alarm holds


class ServerConnection:
    def __init__(self, node, conn_id: int, peer: str) -> None:
        self.node = node
        self.cluster = node.cluster
        self.id = conn_id
        self.peer = peer
        self.state = HEADER
        self.reader = FrameReader(FRAME_MIN_SIZE, whole_content=C.Basic.Publish)
        self._header = b""
        self.out: list[bytes] = []
        self.close_transport = False
        self.reset_transport = False  # the node crashed: the driver resets the socket (RST)
        self.writable = True
        self.channels: dict[int, ServerChannel] = {}
        self.closing_channels: set[int] = set()
        self.exclusive_queues: list = []
        self.user = None
        self.vhost = None
        self.client_properties: dict = {}
        self.mechanism = "PLAIN"
        self.frame_max = node.config.frame_max
        self.channel_max = node.config.channel_max
        self.heartbeat = 0
        self.bytes_in = self.bytes_out = 0
        self.counts = FrameCounts()
        self._ended = False  # its handshake-failed / connection-closed event is logged
        self._hb_seen_in = self._hb_seen_out = -1
        self._hb_misses = 0
        self._timers: list = []
        self.reading_blocked = False  # an alarm holds this publisher (see the module doc)
        self.held_frame: InFrame | None = None  # the publish that found the alarm on
        self.blocked_sent = False
        self.confirm_channels: dict[ServerChannel, None] = {}
        self.current_method = None
        self._arm(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    # -- I/O surface ----------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        if self.state == CLOSED or self.close_transport:
            return
        self.bytes_in += len(data)
        if self.state == HEADER:
            data = self._protocol_header(data)
            if not data:
                return
        self.reader.feed(data)
        if not self.reading_blocked:  # a blocked connection's bytes wait, unread
            self.process()

    def process(self) -> None:
        """Handle buffered frames until the buffer is empty or reading is blocked."""
        self._guarded(self._process_buffered)

    def _process_buffered(self) -> None:
        if self.held_frame is not None:  # the alarm that held it has cleared
            frame, self.held_frame = self.held_frame, None
            self.current_method = frame.method
            self._channel_frame(frame)
            self.current_method = None
        if not (self.reading_blocked or self.state == CLOSED or self.close_transport):
            self._process_frames()

    def _guarded(self, work) -> None:
        """Run ``work``; a protocol error closes this connection, and so does a simulator
        bug (logged), never another connection."""
        try:
            work()
        except AMQPError as err:
            # a refused login and errors naming their own method carry their own ids
            own_ids = err.class_id or self.state == START_OK
            self.hard_error(err, None if own_ids else self.current_method)
        except Exception as exc:  # a simulator bug must only cost this connection
            self.node.log_event("internal-error", conn=self.id, error=repr(exc))
            self.hard_error(AMQPError(541, f"INTERNAL_ERROR - {type(exc).__name__}: {exc}"))
        if self.confirm_channels:
            self._flush_confirms()

    def _process_frames(self) -> None:
        counts = self.counts
        for frame in self.reader.frames():
            counts.add_in(frame.kind, frame.body is not None)
            if frame.channel and self.state == OPEN and frame.kind != FRAME_HEARTBEAT:
                # the hot path (every publish, body and ack): _frame's last branch
                if self.cluster.alarm_count and self._held_by_alarm(frame):
                    break
                self.current_method = frame.method if frame.kind == FRAME_METHOD else None
                self._channel_frame(frame)
            else:
                self._frame(frame)
            self.current_method = None
            if self.reading_blocked or self.state == CLOSED or self.close_transport:
                break

    def send_raw(self, data: bytes) -> None:
        self.out.append(data)
        self.bytes_out += len(data)
        self.node.mark_output(self)

    def send_method(self, channel: int, method) -> None:
        self.counts.methods_out += 1
        self.send_raw(method_frame(channel, method))

    def send_content(self, channel: int, message, method_frame_bytes: bytes = b"") -> None:
        """A message's header and body frames, after its method frame when given."""
        counts = self.counts
        if method_frame_bytes:
            counts.methods_out += 1
        counts.add_content_out(len(message.body), self.frame_max)
        content = content_frames(channel, message.header_bytes(), message.body, self.frame_max)
        self.send_raw(method_frame_bytes + content)

    def take_output(self) -> bytes:
        data = b"".join(self.out)
        self.out.clear()
        return data

    def set_writable(self, writable: bool) -> None:
        """Driver back-pressure: deliveries to this connection pause while False."""
        self.writable = writable
        if writable:
            for ch in self.channels.values():
                for consumer in ch.consumers.values():
                    self.vhost.dirty[consumer.queue] = None

    # -- protocol header ------------------------------------------------------------------

    def _protocol_header(self, data: bytes) -> bytes:
        self._header += data
        if len(self._header) < 8:
            return b""
        header, rest = self._header[:8], self._header[8:]
        if header not in ACCEPTED_HEADERS:
            self.log_end("broker", reason=f"bad protocol header {header!r}")
            self.send_raw(PROTOCOL_HEADER)
            self._drop()
            return b""
        self.state = START_OK
        self.send_method(0, self.node.start_method())
        return rest

    # -- frames ---------------------------------------------------------------------------

    def _frame(self, frame: InFrame) -> None:
        self.current_method = frame.method if frame.kind == FRAME_METHOD else None
        if frame.kind == FRAME_HEARTBEAT:
            if frame.channel != 0:
                raise AMQPError.of("heartbeat_channel")
            return
        if self.state == CLOSING:
            self._closing_frame(frame)
        elif frame.channel == 0:
            self._connection_frame(frame)
        elif self.state != OPEN:
            raise AMQPError.of(
                "command_invalid", detail=f"channel {frame.channel} used before connection.open"
            )
        else:
            self._channel_frame(frame)

    def _connection_frame(self, frame: InFrame) -> None:
        if frame.kind != FRAME_METHOD:
            raise AMQPError.of("unexpected_frame", expected="method frame", kind="method")
        key = (self.state, type(frame.method))
        transition = TRANSITIONS.get(key)
        if transition is None:
            if self.state == OPEN and type(frame.method) not in CONNECTION_METHODS:
                raise AMQPError.of("channel_zero", state="running")
            raise AMQPError.of(
                "command_invalid", detail=f"unexpected {frame.method.name} in state {self.state}"
            )
        handler, next_state = transition
        before = self.state
        handler(self, frame.method)
        if self.state == before:
            self.state = next_state

    def _closing_frame(self, frame: InFrame) -> None:
        if frame.channel == 0 and frame.kind == FRAME_METHOD:
            if isinstance(frame.method, C.Connection.CloseOk):
                self._drop()
            elif isinstance(frame.method, C.Connection.Close):
                self.send_method(0, C.Connection.CloseOk())

    def _channel_frame(self, frame: InFrame) -> None:
        number = frame.channel
        ch = self.channels.get(number)
        if ch is None:
            self._open_channel(number, frame)
            return
        if number in self.closing_channels:
            self._closing_channel_frame(ch, frame)
            return
        if ch.schema_held is not None or self._waits_for_schema(ch, frame):
            ch.hold_for_schema(frame)
            return
        try:
            ch.handle(frame)
        except AMQPError as err:
            if err.hard:
                raise
            self._channel_error(ch, frame, err)

    def _waits_for_schema(self, ch: ServerChannel, frame: InFrame) -> bool:
        return (
            frame.kind == FRAME_METHOD
            and needs_lock(ch, frame.method)
            and self.node.cluster.schema_locked()
        )

    def release_schema_wait(self, ch: ServerChannel) -> None:
        """The schema lock is free: the channel's waiting frames run, in order (a frame
        that finds the lock taken again waits once more, with the rest behind it)."""
        frames, ch.schema_held = ch.schema_held or [], None
        if self.state == CLOSED or self.channels.get(ch.number) is not ch:
            return
        for frame in frames:
            if self.state == CLOSED or self.close_transport:
                return
            self.current_method = frame.method
            self._guarded(lambda f=frame: self._channel_frame(f))
            self.current_method = None

    def _open_channel(self, number: int, frame: InFrame) -> None:
        if frame.kind != FRAME_METHOD or not isinstance(frame.method, C.Channel.Open):
            raise AMQPError.of("channel_not_open")
        if self.channel_max and len(self.channels) >= self.channel_max:
            raise AMQPError.of("channel_max", count=len(self.channels), max=self.channel_max)
        self.channels[number] = ServerChannel(self, number)
        self.send_method(number, C.Channel.OpenOk())

    def _closing_channel_frame(self, ch: ServerChannel, frame: InFrame) -> None:
        """After channel.close we wait for close-ok; everything else is discarded."""
        if frame.kind != FRAME_METHOD:
            return
        if isinstance(frame.method, C.Channel.CloseOk):
            self.forget_channel(ch)
        elif isinstance(frame.method, C.Channel.Close):
            self.send_method(ch.number, C.Channel.CloseOk())
            self.forget_channel(ch)

    def _channel_error(self, ch: ServerChannel, frame: InFrame, err: AMQPError) -> None:
        method = frame.method if frame.kind == FRAME_METHOD else None
        self.close_channel(ch, err, *_ids(method))

    def close_channel(self, ch: ServerChannel, err: AMQPError, class_id=0, method_id=0) -> None:
        """channel.close for a channel error; ids 0/0 when no method caused it (a timer's)."""
        ch.close_down()
        self.closing_channels.add(ch.number)
        self.send_method(ch.number, C.Channel.Close(err.code, err.text[:255], class_id, method_id))

    def forget_channel(self, ch: ServerChannel) -> None:
        if not ch.closing:
            ch.close_down()
        self.channels.pop(ch.number, None)
        self.closing_channels.discard(ch.number)
        self.confirm_channels.pop(ch, None)

    # -- errors and closing ---------------------------------------------------------------

    def log_end(self, by: str, code: int | None = None, text: str = "", reason: str = "") -> None:
        """This connection's one ``handshake-failed`` / ``connection-closed`` event (see
        broker_sim.inspection); later calls add nothing."""
        if self._ended:
            return
        self._ended = True
        kind = "connection-closed" if self.state in (OPEN, CLOSING, CLOSED) else "handshake-failed"
        details = {"conn": self.id, "peer": self.peer, "by": by}
        details.update({"code": code, "text": text} if code is not None else {"reason": reason})
        self.node.log_event(kind, **details)

    def hard_error(self, err: AMQPError, method=None) -> None:
        """Send connection.close for a hard error (or any error during the handshake)."""
        if self.state in (CLOSING, CLOSED):
            return
        self.log_end("broker", err.code, err.text)
        if self.state in (HEADER, START_OK, TUNE_OK) and not (
            err.code == 403 and self.client_capability("authentication_failure_close")
        ):
            # rabbit_reader trusts no client before tuning is done: it closes the socket
            # without a connection.close (a refused login is the one exception).
            self._drop()
            return
        if method is not None:
            class_id, method_id = _ids(method)
        else:
            class_id, method_id = err.class_id, err.method_id
        self.send_method(0, C.Connection.Close(err.code, err.text[:255], class_id, method_id))
        self._enter_closing()

    def _enter_closing(self) -> None:
        self._teardown_channels()
        self.state = CLOSING
        self._arm(CLOSING_TIMEOUT, self._drop)

    def server_close(self, code: int, text: str) -> None:
        """Broker-initiated close, e.g. 320 CONNECTION_FORCED on shutdown."""
        self.hard_error(AMQPError(code, text))

    def leave_socket_to_client(self) -> None:
        """rabbit_reader:close_connection after the client's connection.close: close-ok
        is sent, the channels and exclusive queues go, and the socket is the client's to
        close; the node ends it itself after the heartbeat interval (at most 30 s)."""
        if self.state != CLOSED:
            self._teardown_channels()
        self.state = CLOSED
        self._cancel_timers()
        wait = self.heartbeat if 0 < self.heartbeat < CLOSING_TIMEOUT else CLOSING_TIMEOUT
        self._arm(wait, self._drop)

    def _drop(self) -> None:
        """Close the transport once the pending output is written."""
        if self.state != CLOSED:
            self._teardown_channels()
        self.state = CLOSED
        self.close_transport = True
        self._cancel_timers()
        self.node.mark_output(self)

    def connection_lost(self) -> None:
        """The transport is gone (peer closed, reset, or node killed)."""
        if self.reset_transport:
            self.log_end("broker", reason="node crashed (sockets reset)")
        else:
            self.log_end("peer", reason="socket closed without connection.close")
        if self.state != CLOSED:
            self._teardown_channels()
        self.state = CLOSED
        self._cancel_timers()

    def _teardown_channels(self) -> None:
        for ch in list(self.channels.values()):
            ch.close_down()
        self.channels.clear()
        self.closing_channels.clear()
        self.confirm_channels.clear()
        for q in self.exclusive_queues:
            if not q.deleted and self.vhost is not None and q.name in self.vhost.queues:
                self.vhost.delete_queue(q.name)
        self.exclusive_queues.clear()

    # -- helpers used by channels ---------------------------------------------------------

    def client_capability(self, name: str) -> bool:
        caps = self.client_properties.get("capabilities") or {}
        return bool(caps.get(name, False))

    def check_permission(self, kind: str, resource: str, name: str) -> None:
        self.node.users.check(self.user, self.vhost.name, kind, resource, name)

    def mark_confirms(self, ch: ServerChannel) -> None:
        self.confirm_channels[ch] = None
        self.node.confirm_pending[self] = None

    def _flush_confirms(self) -> None:
        if self.confirm_channels:
            for ch in self.confirm_channels:
                ch.flush_confirms()
            self.confirm_channels.clear()

    def _held_by_alarm(self, frame: InFrame) -> bool:
        """Under a resource alarm a publish blocks its connection before it is processed
        (rabbit_reader: a ``blocking`` connection becomes ``blocked`` when it publishes);
        connection.blocked goes out once, to clients that asked for it."""
        if frame.kind != FRAME_METHOD or type(frame.method) not in PUBLISH_METHODS:
            return False
        self.reading_blocked = True
        self.held_frame = frame
        self.node.log_event("connection-blocked", conn=self.id, reason="low on memory")
        self.node._send_blocked(self)
        return True

    def unblock(self) -> None:
        """The alarm cleared: process the held publish and what was buffered behind it."""
        if self.reading_blocked:
            self.reading_blocked = False
            self.node.log_event("connection-unblocked", conn=self.id)
            self.process()

    # -- timers ---------------------------------------------------------------------------

    def _arm(self, delay: float, callback) -> None:
        self.arm_at(self.node.now() + delay, callback)

    def arm_at(self, when: float, callback) -> None:
        """A timer that goes with this connection (cancelled when it closes)."""
        if len(self._timers) >= 8:  # heartbeats re-arm for ever: forget the fired ones
            self._timers = [t for t in self._timers if not t.cancelled]
        self._timers.append(self.node.timers.schedule(when, callback))

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _handshake_timeout(self) -> None:
        if self.state in (HEADER, START_OK, TUNE_OK, OPEN_WAIT):
            self.log_end("broker", reason="handshake timeout")
            self._drop()

    def start_heartbeats(self) -> None:
        if self.heartbeat > 0:
            self._arm(self.heartbeat / 2, self._heartbeat_send_check)
            self._arm(self.heartbeat, self._heartbeat_recv_check)

    def _heartbeat_send_check(self) -> None:
        if self.state in (CLOSED,):
            return
        if self.bytes_out == self._hb_seen_out and not self.node.heartbeats_dropped:
            self.counts.heartbeats_out += 1
            self.send_raw(HEARTBEAT_FRAME)
        self._hb_seen_out = self.bytes_out
        self._arm(self.heartbeat / 2, self._heartbeat_send_check)

    def _heartbeat_recv_check(self) -> None:
        if self.state == CLOSED:
            return
        if self.bytes_in != self._hb_seen_in or self.reading_blocked:
            self._hb_misses = 0
        else:
            self._hb_misses += 1
            if self._hb_misses >= 2:
                self.node.log_event("missed-heartbeats", conn=self.id, timeout=self.heartbeat)
                self.log_end("broker", reason="missed heartbeats from client")
                self._drop()
                return
        self._hb_seen_in = self.bytes_in
        self._arm(self.heartbeat, self._heartbeat_recv_check)


def _ids(method) -> tuple[int, int]:
    if method is None:
        return 0, 0
    return method.index >> 16, method.index & 0xFFFF


from broker_sim.handshake import CONNECTION_METHODS, TRANSITIONS  # noqa: E402
