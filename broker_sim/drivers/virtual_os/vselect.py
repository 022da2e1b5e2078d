"""``select``, ``poll``, ``epoll`` and ``selectors`` for actors, over virtual descriptors.

Readiness is Linux's for a TCP socket: readable when data or the end of the stream has
arrived (a reset adds ``ERR | HUP``), writable once connected (or once a non-blocking
connect has an answer in ``SO_ERROR``); a descriptor closed while polled is ``POLLNVAL``
for ``poll`` and dropped by ``epoll``, as the kernel does. Waits block the actor on the
world's clock. A real descriptor among them (a pipe, a real socket, stdin) cannot be
waited on in virtual time: :class:`~.scope.WorldViolation` names it.

``selectors`` binds ``select.epoll`` / ``select.poll`` / ``select.select`` as class
attributes when it is imported, so those class attributes are swapped too (see
:func:`class_attributes`).
"""

from __future__ import annotations

import errno
import select
import selectors

from broker_sim.drivers.virtual_os.scope import actor_world, violation, wait_until
from broker_sim.drivers.virtual_os.vsocket import descriptors
from broker_sim.drivers.world_links import os_error

_real_select = select.select
_real_poll = select.poll
RealEpoll = select.epoll

IN, PRI, OUT, ERR, HUP, NVAL = (
    select.POLLIN,
    select.POLLPRI,
    select.POLLOUT,
    select.POLLERR,
    select.POLLHUP,
    select.POLLNVAL,
)
RDHUP = select.EPOLLRDHUP
ALWAYS = ERR | HUP | NVAL  # reported whether asked for or not


def _fd_number(world, fileobj, call: str) -> int:
    fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
    if fd >= 0 and fd not in descriptors(world).table:
        raise violation(world, call, f"descriptor {fd} ({fileobj!r}) is real, not the world's")
    return fd


def revents(world, fd: int, mask: int, closed_is_nval: bool = True) -> int:
    """The events the kernel would report for ``fd`` under ``mask``."""
    obj = descriptors(world).table.get(fd)
    if obj is None:
        return NVAL if closed_is_nval else 0
    events = 0
    if obj.readable():
        events |= IN
        link = getattr(obj, "link", None)
        ended = getattr(link, "closed", None)
        if ended == "reset" and not getattr(obj, "_reset_reported", True):
            events |= ERR | HUP
        elif ended is not None and not link.inbox:
            events |= RDHUP
    if obj.writable():
        events |= OUT
    return events & (mask | ALWAYS)


def _block(world, what: str, ready, timeout) -> None:
    """Wait for ``ready()`` up to ``timeout`` virtual seconds (None: forever)."""
    for fd in list(descriptors(world).table.values()):
        pump = getattr(fd, "_pump", None)
        if pump is not None:
            pump()
    wait_until(world, what, ready, timeout)


# -- select.select ------------------------------------------------------------------------------


def select_(rlist, wlist, xlist, timeout=None):
    world = actor_world()
    if world is None:
        return _real_select(rlist, wlist, xlist, timeout)
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be non-negative")
    watched = [
        [(obj, _fd_number(world, obj, "select.select")) for obj in group]
        for group in (rlist, wlist, xlist)
    ]

    def answer():
        reads = [o for o, fd in watched[0] if revents(world, fd, IN | RDHUP)]
        writes = [o for o, fd in watched[1] if revents(world, fd, OUT) & (OUT | NVAL)]
        return reads, writes, []

    if any(fd < 0 for group in watched for _obj, fd in group):
        raise ValueError("file descriptor cannot be a negative integer")
    _block(world, "select.select", lambda: any(answer()), timeout)
    return answer()


# -- select.poll --------------------------------------------------------------------------------


class VirtualPoll:
    """``select.poll()`` for actors: timeouts in milliseconds, ``None`` or < 0 is forever."""

    call = "select.poll"
    closed_is_nval = True

    def __init__(self, world) -> None:
        self.world = world
        self.interest: dict[int, int] = {}

    def register(self, fd, eventmask: int = IN | PRI | OUT) -> None:
        self.interest[_fd_number(self.world, fd, f"{self.call}.register")] = eventmask

    def modify(self, fd, eventmask: int) -> None:
        number = _fd_number(self.world, fd, f"{self.call}.modify")
        if number not in self.interest:
            raise os_error(FileNotFoundError, errno.ENOENT)
        self.interest[number] = eventmask

    def unregister(self, fd) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()
        if self.interest.pop(number, None) is None:
            raise KeyError(number)

    def _ready(self, maxevents: int = -1) -> list[tuple[int, int]]:
        found = []
        for fd, mask in self.interest.items():
            events = revents(self.world, fd, mask, self.closed_is_nval)
            if events:
                found.append((fd, events))
                if len(found) == maxevents:
                    break
        return found

    def poll(self, timeout=None):
        seconds = None if timeout is None or timeout < 0 else timeout / 1000
        return self._poll(seconds)

    def _poll(self, seconds, maxevents: int = -1):
        world = actor_world()
        if world is not None:
            _block(world, f"{self.call}.poll", lambda: bool(self._ready(maxevents)), seconds)
        return self._ready(maxevents)


def poll():
    world = actor_world()
    return _real_poll() if world is None else VirtualPoll(world)


# -- select.epoll -------------------------------------------------------------------------------


class VirtualEpoll(VirtualPoll):
    """``select.epoll()`` for actors: timeouts in seconds; closed descriptors drop out."""

    call = "select.epoll"
    closed_is_nval = False

    def __init__(self, world, sizehint: int = -1, flags: int = 0) -> None:
        super().__init__(world)
        self._fd = descriptors(world).open(self)

    def register(self, fd, eventmask: int = IN | PRI | OUT) -> None:
        number = _fd_number(self.world, fd, "select.epoll.register")
        if number in self.interest:
            raise os_error(FileExistsError, errno.EEXIST)
        self.interest[number] = eventmask

    def unregister(self, fd) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()
        if self.interest.pop(number, None) is None:
            raise os_error(FileNotFoundError, errno.ENOENT)

    def poll(self, timeout=None, maxevents: int = -1):
        if self._fd < 0:
            raise ValueError("I/O operation on closed epoll object")
        seconds = None if timeout is None or timeout < 0 else timeout
        return self._poll(seconds, maxevents)

    def readable(self) -> bool:
        return bool(self._ready())

    def writable(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if self._fd >= 0:
            descriptors(self.world).close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _EpollClass(type):
    def __call__(cls, sizehint: int = -1, flags: int = 0):
        world = actor_world()
        if world is None:
            return RealEpoll(sizehint, flags)
        return VirtualEpoll(world, sizehint, flags)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, (RealEpoll, VirtualEpoll))


class Epoll(metaclass=_EpollClass):
    """Stands in for ``select.epoll``."""

    fromfd = staticmethod(RealEpoll.fromfd)


def replacements() -> dict[object, object]:
    return {_real_select: select_, _real_poll: poll, RealEpoll: Epoll}


def class_attributes() -> list[tuple[type, str, object]]:
    """The class attributes ``selectors`` bound at import: (class, name, stand-in)."""
    swaps = [(selectors.SelectSelector, "_select", staticmethod(select_))]
    if hasattr(selectors, "PollSelector"):
        swaps.append((selectors.PollSelector, "_selector_cls", staticmethod(poll)))
    if hasattr(selectors, "EpollSelector"):
        swaps.append((selectors.EpollSelector, "_selector_cls", Epoll))
    return swaps
