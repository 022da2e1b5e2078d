"""A blocking AMQP 0-9-1 connection and channels on the sans-IO :class:`ClientProtocol`,
where every wait is bounded (py-amqp's Connection/Channel, without its unbounded waits).

``drain_events(timeout)`` returns or raises within ``timeout`` whatever arrives meanwhile,
sends heartbeats when they are due and declares the connection dead after two silent
heartbeat intervals (then it is torn down at once: nobody waits for a close-ok from a peer
that will never answer). RPCs and ``close`` take timeouts too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from pamqp import commands as C

from broker_sim.framing import HEARTBEAT_FRAME
from client.errors import AMQPError, ConnectionForced, RecoverableConnectionError
from client.protocol import (
    Blocked,
    ChannelClosed,
    ClientProtocol,
    Closed,
    ContentEvent,
    MethodEvent,
    Opened,
    Unblocked,
)
from client.transport import SocketTransport

DEFAULT_RPC_TIMEOUT = 30.0


class AMQPConnection:
    def __init__(
        self,
        host: str,
        port: int,
        userid: str = "guest",
        password: str = "guest",
        virtual_host: str = "/",
        heartbeat: int = 0,
        connect_timeout: float = 5.0,
        login_method: str = "PLAIN",
        ssl: bool | dict = False,
        clock: Callable[[], float] = time.monotonic,
        transport_factory: Callable | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.clock = clock
        self.transport_factory = transport_factory
        self.proto = ClientProtocol(
            userid,
            password,
            virtual_host,
            heartbeat=heartbeat,
            clock=clock,
            login_method=login_method,
        )
        self.connect_timeout = connect_timeout
        self.ssl = ssl
        self.transport: SocketTransport | None = None
        self.channels: dict[int, Channel] = {}
        self._side: Channel | None = None  # for methods sent without waiting (send_nowait)
        self.server_properties: dict = {}
        self.blocked: str | None = None
        self.on_blocked: Callable[[str], None] | None = None
        self.on_unblocked: Callable[[], None] | None = None
        self._next_channel = 1
        self.error: AMQPError | OSError | None = None
        self._send_lock = threading.Lock()
        self._read_done = clock()  # when the socket was last found empty (see _read)
        self._heartbeat_thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def connect(self) -> AMQPConnection:
        """TCP connect and handshake, both within ``connect_timeout`` in all."""
        deadline = self.clock() + self.connect_timeout
        factory = self.transport_factory or SocketTransport
        self.transport = factory(self.host, self.port, self.connect_timeout, self.ssl)
        self.proto.initiate()
        self._flush()
        while self.proto.state != "open":
            if self.clock() >= deadline:
                self.transport.abort()
                raise TimeoutError(
                    f"AMQP handshake with {self.host}:{self.port} not done within "
                    f"{self.connect_timeout} s (state {self.proto.state})"
                )
            self._read(deadline - self.clock())
        return self

    @property
    def connected(self) -> bool:
        return self.transport is not None and self.proto.state == "open" and self.error is None

    def channel(self, number: int | None = None, timeout: float = DEFAULT_RPC_TIMEOUT) -> Channel:
        if number is None:
            number = self._next_channel
            self._next_channel += 1
        channel = Channel(self, number)
        self.channels[number] = channel
        channel.rpc(C.Channel.Open(), C.Channel.OpenOk, timeout)
        return channel

    def send_nowait(self, method) -> None:
        """Send ``method`` (with ``nowait`` set) on a side channel kept for such methods:
        if the broker holds it (a schema write waiting for a hung cluster peer: RabbitMQ's
        Mnesia locks), only that channel waits. An error closes the side channel alone;
        the next call opens another."""
        side = self._side
        if side is None or self.channels.get(side.number) is not side:
            side = self._side = self.channel()
        self.proto.send_method(side.number, method)
        self._flush()

    def close(self, timeout: float = 5.0) -> None:
        """connection.close, waiting at most ``timeout`` for close-ok, then the socket goes."""
        if self.transport is None:
            return
        try:
            if self.connected:
                self.proto.close()
                self._flush()
                deadline = self.clock() + timeout
                while self.proto.state == "closing" and self.clock() < deadline:
                    self._read(deadline - self.clock())
        except (OSError, AMQPError):
            pass
        finally:
            self.collect()

    def start_heartbeat_thread(self) -> None:
        """Send heartbeats from a background thread, so a callback that runs longer than the
        heartbeat timeout does not get the connection dropped by the broker (kombu's
        heartbeats only go out while the application drains)."""
        if self.proto.heartbeat <= 0 or self._heartbeat_thread is not None:
            return

        def beat() -> None:
            while self.transport is not None and self.error is None:
                time.sleep(self.proto.heartbeat / 4)
                transport = self.transport
                if transport is None or not self.proto.heartbeat_due():
                    continue
                try:
                    with self._send_lock:
                        transport.send(HEARTBEAT_FRAME)
                        self.proto.last_sent = self.clock()
                except OSError:
                    return

        self._heartbeat_thread = threading.Thread(
            target=beat, daemon=True, name="warren-client-heartbeat"
        )
        self._heartbeat_thread.start()

    def collect(self) -> None:
        """Drop the connection without any handshake (the peer may be dead)."""
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    # -- I/O --------------------------------------------------------------------------------

    def _flush(self) -> None:
        with self._send_lock:
            data = self.proto.data_to_send()
        if data and self.transport is not None:
            try:
                with self._send_lock:
                    self.transport.send(data)
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: AMQPError | OSError) -> None:
        self.error = exc
        self.collect()
        raise exc

    def _read(self, timeout: float) -> None:
        if self.transport is None:
            raise self.error or RecoverableConnectionError("connection is closed")
        empty_since = self._read_done
        try:
            data = self.transport.recv(timeout)
        except OSError as exc:
            self._fail(exc)
        if data == b"":
            self._fail(ConnectionResetError(f"{self.host}:{self.port} closed the connection"))
        self._read_done = self.clock()
        if data:
            for event in self.proto.receive(data, empty_since):
                self._dispatch(event)
            self._flush()

    def _dispatch(self, event) -> None:
        if isinstance(event, (MethodEvent, ContentEvent)):
            channel = self.channels.get(event.channel)
            if channel is None:
                return
            if isinstance(event, ContentEvent) and type(event.method) is C.Basic.Deliver:
                channel.deliveries.append(event)  # kept apart: replies are found in O(1)
            else:
                channel.incoming.append(event)
        elif isinstance(event, ChannelClosed):
            channel = self.channels.pop(event.channel, None)
            if channel is not None:
                channel.error = event.error
        elif isinstance(event, Opened):
            self.server_properties = event.server_properties
        elif isinstance(event, Closed):
            if event.error is not None:
                self._flush()
                self._fail(event.error)
        elif isinstance(event, Blocked):
            self.blocked = event.reason
            if self.on_blocked:
                self.on_blocked(event.reason)
        elif isinstance(event, Unblocked):
            self.blocked = None
            if self.on_unblocked:
                self.on_unblocked()

    def poll(self) -> None:
        """Take in what the broker has sent, without waiting (events are queued on their
        channels, callbacks are not run)."""
        if self.transport is not None and self.error is None:
            self._read(0.0)

    def _tick_heartbeats(self) -> None:
        if self.proto.dead():
            self._fail(ConnectionForced("Too many heartbeats missed", None, 320))
        if self.proto.heartbeat_due():
            self.proto.send_heartbeat()
            self._flush()

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Read until ``ready()`` or ``timeout``; heartbeats are kept meanwhile."""
        deadline = self.clock() + timeout
        while not ready():
            self._tick_heartbeats()
            remaining = deadline - self.clock()
            if remaining <= 0:
                return False
            step = remaining
            if self.proto.heartbeat:
                step = min(step, self.proto.heartbeat / 4)
            self._read(step)
        return True

    def drain_events(self, timeout: float) -> bool:
        """Deliver pending consumer messages; return True if any were, within ``timeout``."""

        def pending() -> bool:
            return any(ch.has_deliveries() for ch in self.channels.values())

        self.wait_until(pending, timeout)
        delivered = False
        for channel in list(self.channels.values()):
            delivered |= channel.dispatch_deliveries()
        return delivered


class Channel:
    def __init__(self, connection: AMQPConnection, number: int) -> None:
        self.connection, self.number = connection, number
        self.incoming: deque = deque()  # replies, confirms, returns, cancels
        self.deliveries: deque = deque()  # basic.deliver with content, in order
        self.error: AMQPError | None = None
        self.consumers: dict[str, Callable] = {}
        self.confirm_mode = False
        self.next_publish = 1
        self.unconfirmed: dict[int, None] = {}
        self.nacked: set[int] = set()
        self.returned: list[ContentEvent] = []
        self.on_cancel: Callable[[str], None] | None = None  # server-sent basic.cancel

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def rpc(self, method, reply, timeout: float = DEFAULT_RPC_TIMEOUT):
        """Send ``method``; wait at most ``timeout`` for a reply of class ``reply``."""
        self._check()
        self.connection.proto.send_method(self.number, method)
        self.connection._flush()
        found: list = []

        def ready() -> bool:
            if self.error is not None:
                return True
            for event in list(self.incoming):
                if isinstance(event, MethodEvent) and isinstance(event.method, reply):
                    self.incoming.remove(event)
                    found.append(event.method)
                    return True
                self._absorb(event)
            return False

        if not self.connection.wait_until(ready, timeout):
            raise TimeoutError(f"no {reply.__name__} within {timeout} s")
        self._check()
        return found[0]

    def _absorb(self, event) -> None:
        """Handle confirms and returns that arrive while waiting for something else."""
        if isinstance(event, MethodEvent) and isinstance(event.method, (C.Basic.Ack, C.Basic.Nack)):
            self.incoming.remove(event)
            m = event.method
            tags = (
                [t for t in self.unconfirmed if t <= m.delivery_tag]
                if m.multiple
                else [m.delivery_tag]
            )
            for tag in tags:
                self.unconfirmed.pop(tag, None)
                if isinstance(m, C.Basic.Nack):
                    self.nacked.add(tag)
        elif isinstance(event, ContentEvent) and isinstance(event.method, C.Basic.Return):
            self.incoming.remove(event)
            self.returned.append(event)
        elif isinstance(event, MethodEvent) and isinstance(event.method, C.Basic.Cancel):
            self.incoming.remove(event)  # the broker cancelled a consumer (queue gone)
            tag = event.method.consumer_tag
            self.consumers.pop(tag, None)
            if self.on_cancel is not None:
                self.on_cancel(tag)

    # -- basic ------------------------------------------------------------------------------

    def confirm_select(self, timeout: float = DEFAULT_RPC_TIMEOUT) -> None:
        self.rpc(C.Confirm.Select(), C.Confirm.SelectOk, timeout)
        self.confirm_mode = True

    def basic_publish(
        self,
        body: bytes,
        exchange: str = "",
        routing_key: str = "",
        properties: C.Basic.Properties | None = None,
        mandatory: bool = False,
        immediate: bool = False,
    ) -> int | None:
        self._check()
        properties = properties or C.Basic.Properties()
        if immediate:  # RabbitMQ refuses it (540): sent as asked, the broker answers
            method = C.Basic.Publish(0, exchange, routing_key, mandatory, immediate)
            self.connection.proto.send_content(self.number, method, properties, body)
        else:
            self.connection.proto.send_publish(
                self.number, exchange, routing_key, mandatory, properties, body
            )
        self.connection._flush()
        if not self.confirm_mode:
            return None
        tag = self.next_publish
        self.next_publish += 1
        self.unconfirmed[tag] = None
        return tag

    def wait_for_confirms(self, timeout: float) -> bool:
        """True when every publish so far is confirmed (acked or nacked) within ``timeout``."""

        def done() -> bool:
            for event in list(self.incoming):
                self._absorb(event)
            return not self.unconfirmed or self.error is not None

        ok = self.connection.wait_until(done, timeout)
        self._check()
        return ok

    def basic_get(self, queue: str, no_ack: bool = False, timeout: float = DEFAULT_RPC_TIMEOUT):
        self._check()
        self.connection.proto.send_method(self.number, C.Basic.Get(queue=queue, no_ack=no_ack))
        self.connection._flush()
        found: list = []

        def ready() -> bool:
            for event in list(self.incoming):
                if isinstance(event, ContentEvent) and isinstance(event.method, C.Basic.GetOk):
                    self.incoming.remove(event)
                    found.append(event)
                    return True
                if isinstance(event, MethodEvent) and isinstance(event.method, C.Basic.GetEmpty):
                    self.incoming.remove(event)
                    found.append(None)
                    return True
                self._absorb(event)
            return self.error is not None

        if not self.connection.wait_until(ready, timeout):
            raise TimeoutError(f"no basic.get answer within {timeout} s")
        self._check()
        return found[0]

    def basic_consume(
        self,
        queue: str,
        callback: Callable[[ContentEvent], None],
        no_ack: bool = False,
        consumer_tag: str = "",
        timeout: float = DEFAULT_RPC_TIMEOUT,
    ) -> str:
        ok = self.rpc(
            C.Basic.Consume(queue=queue, consumer_tag=consumer_tag, no_ack=no_ack),
            C.Basic.ConsumeOk,
            timeout,
        )
        self.consumers[ok.consumer_tag] = callback
        return ok.consumer_tag

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.connection.proto.send_method(self.number, C.Basic.Ack(delivery_tag, multiple))
        self.connection._flush()

    def has_deliveries(self) -> bool:
        for event in list(self.incoming):
            self._absorb(event)
        return bool(self.deliveries)

    def dispatch_deliveries(self) -> bool:
        """Hand the deliveries received so far to their consumers' callbacks, in order."""
        delivered = False
        for _ in range(len(self.deliveries)):
            event = self.deliveries.popleft()
            callback = self.consumers.get(event.method.consumer_tag)
            if callback is not None:
                callback(event)
                delivered = True
        return delivered
