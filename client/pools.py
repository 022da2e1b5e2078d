"""Connection, channel and producer pools (kombu.pools, kombu.connection.ConnectionPool).

Limits are enforced: acquiring from an exhausted pool raises ``ConnectionLimitExceeded`` /
``ChannelLimitExceeded`` after ``timeout`` (kombu blocks forever when ``block=True`` and no
timeout is given; here the wait is always bounded).
"""

from __future__ import annotations

import threading
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

    def acquire(self, block: bool = True, timeout: float | None = 5.0):
        with self.cond:
            if not self.free and self.used >= self.limit and block:
                self.cond.wait_for(
                    lambda: self.free or self.used < self.limit,
                    timeout=timeout if timeout is not None else 30.0,
                )
            if self.free:
                item = self.free.pop()
            elif self.used < self.limit:
                item = self.create()
            else:
                raise self.LimitExceeded(f"pool limit of {self.limit} reached")
            self.used += 1
        return _Lease(self, item)

    def release(self, item) -> None:
        with self.cond:
            self.used -= 1
            self.free.append(item)
            self.cond.notify()

    def force_close_all(self) -> None:
        with self.cond:
            for item in self.free:
                if self.close_item:
                    self.close_item(item)
            self.free.clear()


class _Lease:
    def __init__(self, pool: Resource, item) -> None:
        self.pool, self.item = pool, item

    def __getattr__(self, name):
        return getattr(self.item, name)

    def release(self) -> None:
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
    def __init__(self, connections: ConnectionPool, limit: int | None = None) -> None:
        from client.messaging import Producer

        def create():
            conn = connections.acquire().item
            return Producer(conn)

        super().__init__(create, limit)


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
