"""``socket`` for actors: TCP streams over the world's links, names from the world.

A :class:`VirtualSocket` behaves as a Linux TCP socket does for a client: ``connect`` (with
``settimeout``, or non-blocking with ``EINPROGRESS`` then ``SO_ERROR``), ``recv`` /
``recv_into`` / ``send`` / ``sendall`` honouring the socket's timeout (``None`` blocks,
``0.0`` raises ``BlockingIOError``, a number raises ``socket.timeout`` after that many
*virtual* seconds), ``shutdown``, ``close``, the options clients set, peer and local names,
and a ``fileno`` that the world's ``select`` / ``poll`` / ``epoll`` / ``fcntl`` know. Its bytes
go through a :class:`~broker_sim.drivers.world_links.WorldTransport`, the bundled client's
link: same toxics, same jitter, same pulled cable. Errors are the OS's own classes with the
OS's errno and text (``ConnectionRefusedError(111, 'Connection refused')``).

Names come from the world's DNS (:mod:`.names`); connecting where nothing of the world
listens is refused. ``socketpair()`` gives two connected in-memory ends,
and an actor may listen on a loopback address and accept (pika makes its wake-up pair that
way). UDP, TLS and sockets over real descriptors are not part of the world and raise
``WorldViolation``.
"""

from __future__ import annotations

import errno
import socket
import struct

from broker_sim.drivers.virtual_os.names import resolve
from broker_sim.drivers.virtual_os.scope import actor_world, violation, wait_until
from broker_sim.drivers.world_links import (
    WORLD_IP,
    WorldTransport,
    os_error,
    refused,
)

RealSocket = socket.socket
_real_socketpair = socket.socketpair

CLIENT_IP = "127.254.1.1"  # what actors' sockets are bound to
ANY = "0.0.0.0"
LOCAL = ("127.0.0.1", CLIENT_IP, ANY)  # where an actor's own listening socket may be
SYN_TIMEOUT = 127.0  # Linux gives up a blocking connect after ~127 s (6 SYN retries)
FD_BASE = 1_000_000  # virtual descriptors never collide with real ones
STREAM_TYPES = (socket.SOCK_STREAM,)
TYPE_FLAGS = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC

# getsockopt answers for options never set: Linux's defaults (measured on this kernel)
TIMEVAL = struct.Struct("ll")  # struct timeval, as SO_RCVTIMEO takes it
OPTION_DEFAULTS = {
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE): 0,
    (socket.SOL_SOCKET, socket.SO_REUSEADDR): 0,
    (socket.SOL_SOCKET, socket.SO_RCVBUF): 131072,
    (socket.SOL_SOCKET, socket.SO_SNDBUF): 16384,
    (socket.SOL_SOCKET, socket.SO_LINGER): 0,
    (socket.SOL_SOCKET, socket.SO_TYPE): socket.SOCK_STREAM,
    (socket.SOL_TCP, socket.TCP_NODELAY): 0,
    (socket.SOL_TCP, socket.TCP_CORK): 0,
    (socket.SOL_TCP, socket.TCP_DEFER_ACCEPT): 0,
    (socket.SOL_TCP, socket.TCP_KEEPCNT): 9,
    (socket.SOL_TCP, socket.TCP_KEEPIDLE): 7200,
    (socket.SOL_TCP, socket.TCP_KEEPINTVL): 75,
    (socket.SOL_TCP, socket.TCP_LINGER2): 60,
    (socket.SOL_TCP, socket.TCP_MAXSEG): 536,
    (socket.SOL_TCP, socket.TCP_QUICKACK): 1,
    (socket.SOL_TCP, socket.TCP_SYNCNT): 6,
    (socket.SOL_TCP, socket.TCP_USER_TIMEOUT): 0,
    (socket.SOL_TCP, socket.TCP_WINDOW_CLAMP): 0,
}
SETTABLE_LEVELS = (socket.SOL_SOCKET, socket.SOL_TCP)


class Descriptors:
    """The world's file descriptor table: number -> virtual socket or poller."""

    def __init__(self) -> None:
        self.table: dict[int, object] = {}
        self._next = FD_BASE
        self.ports = 40000  # ephemeral ports of actors' sockets
        self.listeners: dict[tuple[str, int], VirtualSocket] = {}  # actors' own servers

    def open(self, obj) -> int:
        fd, self._next = self._next, self._next + 1
        self.table[fd] = obj
        return fd

    def close(self, fd: int) -> None:
        self.table.pop(fd, None)

    def port(self) -> int:
        self.ports += 1
        return self.ports


def descriptors(world) -> Descriptors:
    table = getattr(world, "descriptors", None)
    if table is None:
        table = world.descriptors = Descriptors()
    return table


# -- sockets ----------------------------------------------------------------------------------


class PairEnd:
    """One end of ``socketpair()``: what the other end sends lands in ``inbox``."""

    def __init__(self) -> None:
        self.inbox = bytearray()
        self.closed: str | None = None
        self.peer: PairEnd | None = None

    def readable(self) -> bool:
        return bool(self.inbox) or self.closed is not None

    def take(self, limit: int) -> bytes:
        data = bytes(self.inbox[:limit])
        del self.inbox[:limit]
        return data

    def send(self, data: bytes, timeout=None) -> None:
        if self.closed is not None:
            raise os_error(BrokenPipeError, errno.EPIPE)
        self.peer.inbox += data

    def close(self) -> None:
        if self.closed is None:
            self.closed = "close"
            if self.peer.closed is None:
                self.peer.closed = "close"


class VirtualSocket:
    """A TCP (or socketpair) stream socket inside the world (see the module docstring)."""

    def __init__(self, world, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
        if type & ~TYPE_FLAGS not in STREAM_TYPES:
            raise violation(world, "socket.socket", "only TCP streams are part of the world")
        if family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
            raise violation(world, "socket.socket", f"address family {family} is not simulated")
        self.world = world
        self.family, self.type, self.proto = family, type & ~TYPE_FLAGS, proto
        self._timeout = 0.0 if type & socket.SOCK_NONBLOCK else socket.getdefaulttimeout()
        self._fds = descriptors(world)
        self._fd = self._fds.open(self)
        self.link: WorldTransport | PairEnd | None = None
        self._options: dict[tuple[int, int], object] = {}
        self._so_error = 0
        self._reset_reported = False
        self._shut_read = False
        self._local: tuple[str, int] | None = None
        self._remote: tuple[str, int] | None = None
        self._backlog: list[VirtualSocket] | None = None  # set by listen()

    # -- what select asks ------------------------------------------------------------------

    def readable(self) -> bool:
        link = self.link
        if self._backlog is not None:
            return bool(self._backlog) or self._fd < 0
        return self._fd < 0 or self._shut_read or (link is not None and link.readable())

    def writable(self) -> bool:
        return self._fd < 0 or self.link is not None or self._so_error != 0

    def _pump(self) -> None:
        if isinstance(self.link, WorldTransport) and not self.link.inbox:
            self.link._arrived()  # what is due by now reaches the socket

    # -- connecting -----------------------------------------------------------------------------

    def connect(self, address) -> None:
        code = self._connect(address)
        if code == errno.EINPROGRESS:
            raise os_error(BlockingIOError, code)
        if code:
            raise os_error(ConnectionRefusedError if code == errno.ECONNREFUSED else OSError, code)

    def connect_ex(self, address) -> int:
        try:
            return self._connect(address)
        except TimeoutError as exc:
            return exc.errno or errno.EAGAIN

    def _connect(self, address) -> int:
        """Connect; 0, or the errno ``connect_ex`` gives (``EINPROGRESS`` when non-blocking:
        the answer is then in ``SO_ERROR`` and the socket is writable)."""
        self._check_open()
        if self.link is not None:
            return errno.EISCONN
        address, port = resolve(self.world, address[0], int(address[1]), "socket.connect")
        self._wait_for_cable()
        server = self._fds.listeners.get((address, port)) or self._fds.listeners.get((ANY, port))
        if server is not None and address in LOCAL:
            server._connected_from(self)
        else:
            proxy = self.world.proxies.proxy_at(port) if address == WORLD_IP else None
            try:
                if proxy is None:
                    raise refused()
                self.link = WorldTransport(self.world, proxy, self._actor())
            except ConnectionRefusedError:
                if self._timeout != 0.0:
                    return errno.ECONNREFUSED
                self._so_error = errno.ECONNREFUSED
                return errno.EINPROGRESS
            self._remote, self._local = (address, port), (CLIENT_IP, self._fds.port())
        return errno.EINPROGRESS if self._timeout == 0.0 else 0

    def _wait_for_cable(self) -> None:
        """An isolated actor's SYN is lost: wait for the rejoin up to the socket's timeout
        (or the kernel's ~127 s of SYN retries)."""
        world, actor = self.world, self._actor()
        if actor not in world.isolated:
            return
        limit = SYN_TIMEOUT if self._timeout is None else self._timeout
        if not wait_until(world, "socket.connect", lambda: actor not in world.isolated, limit):
            if self._timeout is None:
                raise os_error(TimeoutError, errno.ETIMEDOUT)
            raise TimeoutError("timed out")

    def _actor(self) -> str:
        current = self.world.current
        return getattr(current, "group", None) or current.name if current else "-"

    # -- data ------------------------------------------------------------------------------------

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._wait("socket.recv", self.readable, self._receive_timeout())
        link = self.link
        if link is None or self._shut_read:
            if link is None and not self._shut_read:
                raise os_error(OSError, errno.ENOTCONN)
            return b""
        if link.inbox:
            data = bytes(link.inbox[:bufsize])
            if not flags & socket.MSG_PEEK:
                del link.inbox[:bufsize]
            return data
        if link.closed == "reset" and not self._reset_reported:
            self._reset_reported = True  # Linux reports a reset once, then EOF
            raise os_error(ConnectionResetError, errno.ECONNRESET)
        return b""

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    def send(self, data, flags: int = 0) -> int:
        self._check_open()
        if self.link is None:
            raise os_error(BrokenPipeError if self._remote else OSError, errno.ENOTCONN)
        payload = bytes(data)
        self.link.send(payload)
        return len(payload)

    def sendall(self, data, flags: int = 0) -> None:
        self.send(data, flags)

    def _wait(self, what: str, ready, kernel_timeout: float | None = None) -> None:
        """Block until ``ready()``: up to the socket's timeout (Python's ``settimeout``:
        TimeoutError), or on a blocking socket up to ``kernel_timeout`` (SO_RCVTIMEO: EAGAIN,
        as Linux fails the read)."""
        self._check_open()
        self._pump()
        if ready():
            return
        if self._timeout == 0.0:
            raise os_error(BlockingIOError, errno.EAGAIN)
        if self._timeout is None and kernel_timeout is not None:
            if not wait_until(self.world, what, ready, kernel_timeout):
                raise os_error(BlockingIOError, errno.EAGAIN)
            return
        if not wait_until(self.world, what, ready, self._timeout):
            raise TimeoutError("timed out")

    def _receive_timeout(self) -> float | None:
        """SO_RCVTIMEO as a ``struct timeval`` (py-amqp's ``read_timeout``); None if unset."""
        value = self._options.get((socket.SOL_SOCKET, socket.SO_RCVTIMEO))
        if not isinstance(value, (bytes, bytearray)) or len(value) != TIMEVAL.size:
            return None
        seconds, micros = TIMEVAL.unpack(value)
        total = seconds + micros / 1e6
        return total if total > 0 else None  # a zero timeval means: no timeout

    # -- ending ----------------------------------------------------------------------------------

    def shutdown(self, how: int) -> None:
        self._check_open()
        if self.link is None:
            raise os_error(OSError, errno.ENOTCONN)
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self._shut_read = True
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.link.close()

    def close(self) -> None:
        if self._fd >= 0:
            self._fds.close(self._fd)
            self._fd = -1
            if self.link is not None:
                self.link.close()
            if self._backlog is not None:
                self._fds.listeners.pop(self._local, None)

    # -- an actor's own loopback server (pika makes its wake-up pair this way) ---------------------

    def bind(self, address) -> None:
        self._check_open()
        host, port = address[0] or ANY, int(address[1])
        host = "127.0.0.1" if host == "localhost" else host
        if host not in LOCAL:
            raise os_error(OSError, errno.EADDRNOTAVAIL)
        port = port or self._fds.port()
        if (host, port) in self._fds.listeners:
            raise os_error(OSError, errno.EADDRINUSE)
        self._local = (host, port)

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self._local is None:
            self.bind((ANY, 0))
        self._backlog = []
        self._fds.listeners[self._local] = self

    def accept(self):
        if self._backlog is None:
            raise os_error(OSError, errno.EINVAL)
        self._wait("socket.accept", self.readable)
        served = self._backlog.pop(0)
        return served, served._remote

    def _connected_from(self, client: VirtualSocket) -> None:
        """A loopback connect to this listening socket: a connected pair, one end queued
        for accept()."""
        served = VirtualSocket(self.world, self.family, self.type, self.proto)
        client.link, served.link = PairEnd(), PairEnd()
        client.link.peer, served.link.peer = served.link, client.link
        client._local = ("127.0.0.1", self._fds.port())
        client._remote = served._local = self._local
        served._remote = client._local
        self._backlog.append(served)

    def detach(self):
        raise violation(self.world, "socket.detach", "TLS and real descriptors are not simulated")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._fd < 0:
            raise os_error(OSError, errno.EBADF)

    # -- options and names -----------------------------------------------------------------------

    def fileno(self) -> int:
        return self._fd

    def settimeout(self, value) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = None if value is None else float(value)

    def gettimeout(self):
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def setsockopt(self, level: int, option: int, value, optlen=None) -> None:
        self._check_open()
        if level not in SETTABLE_LEVELS:
            raise os_error(OSError, errno.ENOPROTOOPT)
        self._options[(level, option)] = value

    def getsockopt(self, level: int, option: int, buflen: int = 0):
        self._check_open()
        if (level, option) == (socket.SOL_SOCKET, socket.SO_ERROR):
            code, self._so_error = self._so_error, 0
            return code
        key = (level, option)
        if key in self._options:
            value = self._options[key]
        elif key in OPTION_DEFAULTS:
            value = OPTION_DEFAULTS[key]
        else:
            raise os_error(OSError, errno.ENOPROTOOPT)
        if buflen and isinstance(value, int):
            return value.to_bytes(4, "little").ljust(buflen, b"\0")[:buflen]
        return value

    def getpeername(self):
        if self._remote is None:
            raise os_error(OSError, errno.ENOTCONN)
        return self._remote

    def getsockname(self):
        return self._local or ("0.0.0.0", 0)

    def __repr__(self) -> str:
        return (
            f"<VirtualSocket fd={self._fd}, laddr={self.getsockname()}, raddr={self._remote}, "
            f"actor={self._actor()}>"
        )

    def _unsupported(name: str):  # noqa: N805 (builds methods)
        def refuse(self, *args, **kwargs):
            raise violation(self.world, f"socket.{name}", "servers and datagrams are not simulated")

        refuse.__name__ = name
        return refuse

    sendto = _unsupported("sendto")
    recvfrom = _unsupported("recvfrom")
    makefile = _unsupported("makefile")
    del _unsupported


def socketpair(family=None, type=socket.SOCK_STREAM, proto=0):
    world = actor_world()
    if world is None:
        return _real_socketpair(*(a for a in (family, type, proto) if a is not None))
    left = VirtualSocket(world, socket.AF_UNIX, type, proto)
    right = VirtualSocket(world, socket.AF_UNIX, type, proto)
    left.link, right.link = PairEnd(), PairEnd()
    left.link.peer, right.link.peer = right.link, left.link
    left._remote = right._remote = left._local = right._local = ""
    return left, right


class _SocketClass(type):
    """``socket.socket`` while the layer is in force: actors get a VirtualSocket, everyone
    else a real socket; ``isinstance(s, socket.socket)`` holds for both."""

    def __call__(cls, family=-1, type=-1, proto=-1, fileno=None):
        world = actor_world()
        if world is None:
            return RealSocket(family, type, proto, fileno)
        if fileno is not None:
            raise violation(world, "socket.socket", "a socket over a real file descriptor")
        family = socket.AF_INET if family == -1 else family
        return VirtualSocket(world, family, socket.SOCK_STREAM if type == -1 else type, proto)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, (RealSocket, VirtualSocket))

    def __subclasscheck__(cls, sub) -> bool:
        return issubclass(sub, (RealSocket, VirtualSocket))


class Socket(metaclass=_SocketClass):
    """Stands in for ``socket.socket`` (see :class:`_SocketClass`)."""


# a real socket made before the run (a fixture's, a pool's) used by an actor would do real,
# blocking I/O: these methods of the real class refuse inside the world
REAL_IO_METHODS = ("connect", "connect_ex", "recv", "recv_into", "send", "sendall", "accept")


def guard_real(name: str):
    real = getattr(RealSocket, name)

    def guarded(self, *args, **kwargs):
        world = actor_world()
        if world is not None:
            raise violation(world, f"socket.{name}", f"a real socket ({self!r}) does real I/O")
        return real(self, *args, **kwargs)

    guarded.__name__ = name
    return guarded


def replacements() -> dict[object, object]:
    return {RealSocket: Socket, _real_socketpair: socketpair}
