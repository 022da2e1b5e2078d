"""Connection, channel and producer pools (kombu.pools, kombu.connection.ConnectionPool,
kombu.resource.Resource), with kombu's semantics:

- ``acquire(block=False)`` raises ``ConnectionLimitExceeded`` / ``ChannelLimitExceeded`` at
  once when the pool is exhausted; ``acquire(block=True, timeout=None)`` waits until an
  item is released, ``timeout=T`` at most T seconds, then raises the same;
- items are created lazily, outside the pool's lock (creating one may connect);
- a producer from a :class:`ProducerPool` holds one connection of its connection pool
  while it is acquired and gives it back when released (kombu: ``release`` releases the
  producer's ``__connection__``), so nothing leaks however its publishes ended;
- ``used`` counts the items acquired and not released (kombu's "dirty" set).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from client.errors import ChannelLimitExceeded, ConfigurationError, ConnectionLimitExceeded

_limit = [10]


def get_limit() -> int:
    return _limit[0]


def set_limit(limit: int, force: bool = False, reset_after: bool = False) -> int:
    if not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"pool limit must be an integer >= 1, got {limit!r}")
    _limit[0] = limit
    if reset_after:
        reset()
    return limit


class Resource:
    """A bounded pool of lazily created items."""

    LimitExceeded: type[Exception] = ConnectionLimitExceeded

    def __init__(
        self, create: Callable, limit: int | None = None, close: Callable | None = None
    ) -> None:
        self.create, self.close_item = create, close
        self.limit = limit if limit is not None else get_limit()
        self.free: list = []
        self.used = 0
        self.cond = threading.Condition()

    def acquire(self, block: bool = False, timeout: float | None = None):
        """An item (a lease: use it as a context manager, or call ``release()``)."""
        with self.cond:
            self._wait_for_room(block, timeout)
            item = self.free.pop() if self.free else None
            self.used += 1
        try:
            item = self.prepare(self.create() if item is None else item)
        except BaseException:
            with self.cond:  # the slot goes back; a half-made item is not kept
                self.used -= 1
                self.cond.notify()
            raise
        return _Lease(self, item)

    def _wait_for_room(self, block: bool, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.free and self.used >= self.limit:
            left = None if deadline is None else deadline - time.monotonic()
            if not block or (left is not None and left <= 0):
                waited = f" after waiting {timeout} s" if block else ""
                raise self.LimitExceeded(f"pool limit of {self.limit} reached{waited}")
            self.cond.wait(left)

    def prepare(self, resource):
        """Make a free item ready for a new user (kombu's ``Resource.prepare``)."""
        return resource

    def release(self, resource) -> None:
        self.release_resource(resource)
        with self.cond:
            self.used -= 1
            self.free.append(resource)
            self.cond.notify()

    def release_resource(self, resource) -> None:
        """What an item gives back when released (a producer: its connection)."""

    def force_close_all(self, close_pool: bool = True) -> None:
        with self.cond:
            for item in self.free:
                if self.close_item:
                    self.close_item(item)
            self.free.clear()


class _Lease:
    def __init__(self, pool: Resource, item) -> None:
        self.pool, self.item = pool, item
        self.released = False

    def __getattr__(self, name):
        return getattr(self.item, name)

    def release(self) -> None:
        if self.released:
            raise RuntimeError(f"{self.item!r} was already released to its pool")
        self.released = True
        self.pool.release(self.item)

    def __enter__(self):
        return self.item

    def __exit__(self, *exc) -> None:
        self.release()


class ConnectionPool(Resource):
    def __init__(self, connection, limit: int | None = None) -> None:
        super().__init__(connection.clone, limit, lambda c: c.close())


class ChannelPool(Resource):
    LimitExceeded = ChannelLimitExceeded

    def __init__(self, connection, limit: int | None = None) -> None:
        super().__init__(connection.channel, limit, lambda ch: ch.close())


class ProducerPool(Resource):
    """Producers, each on a connection of ``connections`` while it is acquired."""

    def __init__(self, connections: ConnectionPool, limit: int | None = None) -> None:
        self.connections = connections
        super().__init__(self._new_producer, limit)

    def _new_producer(self):
        from client.messaging import Producer

        lease = self.connections.acquire(block=True)
        try:
            producer = Producer(lease.item)  # lazy: it connects at its first publish
        except BaseException:
            lease.release()
            raise
        producer.pool_lease = lease
        return producer

    def prepare(self, resource):
        if getattr(resource, "pool_lease", None) is None:  # back from the free list
            lease = self.connections.acquire(block=True)
            resource.revive(lease.item)
            resource.pool_lease = lease
        return resource

    def release_resource(self, resource) -> None:
        lease, resource.pool_lease = resource.pool_lease, None
        if lease is not None:
            lease.release()


class _Registry(dict):
    def __init__(self, factory: Callable) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, key):
        from client.connection import Connection

        connection = key if isinstance(key, Connection) else Connection(key)
        pool = self[key] = self.factory(connection)
        return pool


connections = _Registry(lambda conn: ConnectionPool(conn))
producers = _Registry(lambda conn: ProducerPool(connections[conn]))


def reset() -> None:
    for registry in (producers, connections):
        for pool in registry.values():
            pool.force_close_all()
        registry.clear()
