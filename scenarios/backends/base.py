"""The admin surface every broker backend offers to tests and scenarios."""

from __future__ import annotations

from typing import Protocol


class BackendUnavailable(RuntimeError):
    """A real backend cannot start on this machine (rabbitmq-server missing, a port taken,
    a node that will not boot, no Docker engine, not root for namespaces...). The message
    is one line: what is wrong and how to fix it; ``warren run`` prints it and exits 2."""


class BrokerAdmin(Protocol):
    """What a test may ask of any broker node, simulated or real.

    Mirrors the rabbitmqctl commands of the same names.
    """

    kind: str  # "sim" or "real"
    name: str
    host: str
    port: int

    @property
    def url(self) -> str: ...

    def amqp_url(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> str: ...

    def add_user(self, name: str, password: str, tags: tuple[str, ...] = ()) -> None: ...

    def delete_user(self, name: str) -> None: ...

    def add_vhost(self, name: str) -> None: ...

    def delete_vhost(self, name: str) -> None: ...

    def set_permissions(
        self, user: str, vhost: str, configure: str = ".*", write: str = ".*", read: str = ".*"
    ) -> None: ...

    def clear_permissions(self, user: str, vhost: str) -> None: ...

    def set_vhost_limits(self, vhost: str, **limits: int) -> None:
        """rabbitmqctl set_vhost_limits: max_connections=N, max_queues=N (< 0: none)."""

    def set_memory_alarm(self, active: bool) -> None:
        """Raise or clear a memory resource alarm (publishers get connection.blocked)."""
