"""The Toxiproxy-compatible server: HTTP control plane and TCP data plane on asyncio.

``ToxiproxyServer`` runs an event loop in a background thread (``with ToxiproxyServer() as
srv: srv.url``) or in the foreground (``warren proxy``). The sans-IO
:class:`~broker_sim.toxiproxy.api.ToxiproxyAPI` decides every API answer and
:mod:`broker_sim.drivers.http` parses HTTP/1.1; this module owns the sockets and moves
bytes through each connection's toxic chains (:mod:`broker_sim.toxics`), applying their
timestamped output in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from broker_sim.drivers.http import serve_http
from broker_sim.toxics import CLOSE, DATA, RESET, Event, Toxic
from broker_sim.toxics.pipe import ToxicPipe
from broker_sim.toxiproxy.api import Proxy, ToxiproxyAPI

_LINGER_RESET = struct.pack("ii", 1, 0)


class Direction:
    """One direction of one proxied connection: a :class:`ToxicPipe` and a pump task that
    writes what is due, in order, awaiting the writer's drain (back-pressure)."""

    def __init__(self, link: Link, stream: str) -> None:
        self.link, self.stream = link, stream
        self.pipe = ToxicPipe()
        self.writer: asyncio.StreamWriter | None = None  # set when the pump starts
        self._wake = asyncio.Event()  # new events, a removed toxic, or a new deadline

    def feed(self, event: Event) -> None:
        if event.kind == DATA:
            self.pipe.push(event.data, event.time)
        else:
            self.pipe.push_close(event.kind == RESET, event.time)
        self._wake.set()

    def add(self, toxic: Toxic, rng, now: float) -> None:
        self.pipe.add(toxic.name, toxic.new_state(rng), now)
        self._wake.set()

    def remove(self, name: str, now: float) -> None:
        self.pipe.remove(name, now)
        self._wake.set()

    async def pass_through(self, data: bytes) -> None:
        """No toxic and nothing held: straight to the writer, no hop through the pump."""
        if self.pipe.transparent and self.writer is not None:
            self.writer.write(data)
            await self.writer.drain()
        else:
            self.feed(Event(DATA, time.monotonic(), data))

    async def pump(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        while True:
            for event in self.pipe.due(time.monotonic()):
                if event.kind != DATA:
                    self.link.finish(reset=event.kind == RESET)
                    return
                writer.write(event.data)
                await writer.drain()
            at = self.pipe.next_time()
            self._wake.clear()
            if at is None:
                await self._wake.wait()
            elif at > time.monotonic():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), at - time.monotonic())


class Link:
    """A client connection and its upstream connection (Toxiproxy's ToxicLink pair)."""

    def __init__(self, server: ToxiproxyServer, proxy: Proxy, client_r, client_w) -> None:
        self.server, self.proxy = server, proxy
        self.client_r, self.client_w = client_r, client_w
        self.up = Direction(self, "upstream")
        self.down = Direction(self, "downstream")
        self.tasks: list[asyncio.Task] = []
        self.upstream_w: asyncio.StreamWriter | None = None
        now = time.monotonic()
        for toxic in proxy.toxics.values():
            self.add_toxic(toxic, now)

    def direction(self, stream: str) -> Direction:
        return self.up if stream == "upstream" else self.down

    def add_toxic(self, toxic: Toxic, now: float) -> None:
        self.direction(toxic.stream).add(toxic, self.server.rng, now)

    def remove_toxic(self, toxic: Toxic, now: float) -> None:
        self.direction(toxic.stream).remove(toxic.name, now)

    async def run(self) -> None:
        host, _, port = self.proxy.upstream.rpartition(":")
        try:
            up_r, up_w = await asyncio.open_connection(host or "127.0.0.1", int(port))
        except (OSError, ValueError):
            self.client_w.close()  # a dead upstream: accept, then EOF (as Toxiproxy)
            return
        self.upstream_w = up_w
        self.tasks = [
            asyncio.create_task(self._read(self.client_r, self.up)),
            asyncio.create_task(self._read(up_r, self.down)),
            asyncio.create_task(self.up.pump(up_w)),
            asyncio.create_task(self.down.pump(self.client_w)),
        ]
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _read(self, reader: asyncio.StreamReader, direction: Direction) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                data = await reader.read(32768)
                if not data:
                    break
                await direction.pass_through(data)
        direction.feed(Event(CLOSE, time.monotonic()))

    def finish(self, reset: bool = False) -> None:
        for writer in (self.client_w, self.upstream_w):
            if writer is None or writer.is_closing():
                continue
            if reset:
                sock = writer.get_extra_info("socket")
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                writer.transport.abort()
            else:
                writer.close()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.server.links.get(self.proxy.name, set()).discard(self)


class ToxiproxyServer:
    """Toxiproxy-compatible API on ``host:port`` (8474 by default, as Toxiproxy)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        seed: int | None = None,
        config: Path | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(32)
        self.rng = random.Random(self.seed)
        self.api = ToxiproxyAPI(self, self.rng)
        self.config = config
        self.listeners: dict[str, asyncio.base_events.Server] = {}
        self.links: dict[str, set[Link]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._http: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- ProxyBackend -----------------------------------------------------------------------

    def start(self, proxy: Proxy) -> str:
        host, _, port = proxy.listen.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host or "127.0.0.1", int(port or 0)))
            sock.listen(128)
        except (OSError, ValueError) as exc:
            sock.close()
            raise OSError(getattr(exc, "errno", None), getattr(exc, "strerror", str(exc))) from None
        sock.setblocking(False)
        loop = asyncio.get_running_loop()

        async def serve() -> None:
            self.listeners[proxy.name] = await loop.create_server(
                lambda: asyncio.StreamReaderProtocol(
                    asyncio.StreamReader(), lambda r, w: self._accept(proxy, r, w)
                ),
                sock=sock,
            )

        loop.create_task(serve())
        self.links.setdefault(proxy.name, set())
        bound = sock.getsockname()
        return f"{bound[0]}:{bound[1]}"

    def _accept(self, proxy: Proxy, reader, writer) -> None:
        link = Link(self, proxy, reader, writer)
        self.links.setdefault(proxy.name, set()).add(link)
        asyncio.get_running_loop().create_task(link.run())

    def stop(self, proxy: Proxy) -> None:
        server = self.listeners.pop(proxy.name, None)
        if server is not None:
            server.close()
        for link in list(self.links.pop(proxy.name, set())):
            link.finish()

    def toxic_added(self, proxy: Proxy, toxic: Toxic) -> None:
        now = time.monotonic()
        for link in self.links.get(proxy.name, ()):
            link.add_toxic(toxic, now)

    def toxic_removed(self, proxy: Proxy, toxic: Toxic) -> None:
        now = time.monotonic()
        for link in list(self.links.get(proxy.name, ())):
            link.remove_toxic(toxic, now)

    def toxic_updated(self, proxy: Proxy, toxic: Toxic) -> None:
        self.toxic_removed(proxy, toxic)
        self.toxic_added(proxy, toxic)

    # -- HTTP -------------------------------------------------------------------------------

    async def _http_client(self, reader: asyncio.StreamReader, writer) -> None:
        await serve_http(reader, writer, self.api.handle)

    # -- lifecycle --------------------------------------------------------------------------

    async def serve(self) -> None:
        self._http = await asyncio.start_server(self._http_client, self.host, self.port)
        self.port = self._http.sockets[0].getsockname()[1]
        if self.config is not None:
            status, _, body = self.api.handle(
                "POST", "/populate", {}, Path(self.config).read_bytes()
            )
            if status >= 400:
                raise ValueError(f"--config {self.config}: {json.loads(body)['error']}")

    def start_background(self) -> ToxiproxyServer:
        ready: Future = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.serve())
            except BaseException as exc:
                ready.set_exception(exc)
                loop.close()
                return
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="warren-toxiproxy")
        self._thread.start()
        ready.result(timeout=10)
        return self

    async def _shutdown(self) -> None:
        for proxy in list(self.api.proxies.values()):
            if proxy.enabled:
                self.stop(proxy)
        if self._http is not None:
            self._http.close()

    def stop_background(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = None

    def __enter__(self) -> ToxiproxyServer:
        return self.start_background()

    def __exit__(self, *exc: object) -> None:
        self.stop_background()
