"""Users, vhosts, permissions and SASL mechanisms (RabbitMQ's internal auth backend).

PLAIN (RFC 4616: ``\\0user\\0password``) and AMQPLAIN (a field table with LOGIN and
PASSWORD) are accepted, as RabbitMQ does by default. Permission checks follow
rabbit_access_control: three regexes per user and vhost (configure, write, read), matched
against the whole resource name; the default exchange is written as ``amq.default``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from pamqp import decode

from broker_sim.errors import AMQPError

MECHANISMS = ("PLAIN", "AMQPLAIN")


@dataclass
class User:
    name: str
    password: str
    tags: tuple[str, ...] = ()


@dataclass
class Permission:
    configure: str = ".*"
    write: str = ".*"
    read: str = ".*"

    def allows(self, kind: str, name: str) -> bool:
        return _allows(getattr(self, kind), name)


@lru_cache(maxsize=4096)
def _allows(pattern: str, name: str) -> bool:
    """Permission regexes match the whole name; results are cached (hot on publish)."""
    return pattern != "" and re.fullmatch(pattern, name) is not None


@dataclass
class Users:
    users: dict[str, User] = field(default_factory=dict)
    permissions: dict[tuple[str, str], Permission] = field(default_factory=dict)

    @classmethod
    def with_guest(cls) -> Users:
        users = cls()
        users.add("guest", "guest", ("administrator",))
        users.permissions[("guest", "/")] = Permission()
        return users

    def add(self, name: str, password: str, tags: tuple[str, ...] = ()) -> None:
        if name in self.users:
            raise ValueError(f"user '{name}' already exists")
        self.users[name] = User(name, password, tuple(tags))

    def delete(self, name: str) -> None:
        if name not in self.users:
            raise KeyError(f"no user '{name}'")
        del self.users[name]
        for key in [k for k in self.permissions if k[0] == name]:
            del self.permissions[key]

    def authenticate(self, mechanism: str, response: bytes) -> User:
        """Return the user, or raise 403 ACCESS_REFUSED as rabbit_reader does."""
        if mechanism not in MECHANISMS:
            raise AMQPError.of("unknown_mechanism", mechanism=mechanism)
        try:
            name, password = _parse_response(mechanism, response)
        except (ValueError, UnicodeDecodeError, KeyError):
            raise AMQPError.of("login_refused", mechanism=mechanism) from None
        user = self.users.get(name)
        if user is None or user.password != password:
            raise AMQPError.of("login_refused", mechanism=mechanism)
        return user

    def check_vhost(self, user: User, vhost: str) -> None:
        if (user.name, vhost) not in self.permissions:
            raise AMQPError.of("vhost_refused", vhost=vhost, user=user.name)

    def check(self, user: User, vhost: str, kind: str, resource: str, name: str) -> None:
        """Raise 403 unless ``user`` may ``kind`` (configure/write/read) ``resource``."""
        perm = self.permissions.get((user.name, vhost))
        checked = name or "amq.default"
        if perm is None or not perm.allows(kind, checked):
            raise AMQPError.of(
                "resource_refused", kind=resource, name=checked, vhost=vhost, user=user.name
            )


def _parse_response(mechanism: str, response: bytes) -> tuple[str, str]:
    if mechanism == "PLAIN":
        parts = response.split(b"\x00")
        if len(parts) != 3:
            raise ValueError("PLAIN response must be authzid\\0user\\0password")
        return parts[1].decode(), parts[2].decode()
    # AMQPLAIN: a field table without its 4-byte length prefix (py-amqp, pika send it so).
    raw = len(response).to_bytes(4, "big") + response
    _, table = decode.field_table(raw)
    login, password = table["LOGIN"], table["PASSWORD"]
    login = login.decode() if isinstance(login, bytes) else login
    password = password.decode() if isinstance(password, bytes) else password
    return str(login), str(password)
