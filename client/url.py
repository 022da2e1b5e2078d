"""Broker URLs: kombu's ``parse_url`` and a validated, per-host list for failover.

kombu parses URLs with HTTP semantics (kombu/utils/url.py): the path after the first ``/``
is the vhost, percent-decoded (``amqp://h//`` and ``amqp://h/%2F`` are vhost ``/``; no path
means the default). kombu validates almost nothing and lets settings of one URL leak into
the next; :func:`parse_hosts` validates every URL of a ``;``-separated list when the
connection is built and keeps each host's settings to itself. Errors name the URL (by
position, password masked) and the bad part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlparse

from client.errors import ConfigurationError

SCHEMES = {"amqp": 5672, "pyamqp": 5672, "amqps": 5671}
DEFAULTS = {"hostname": "localhost", "userid": "guest", "password": "guest", "virtual_host": "/"}
#: Query values Warren understands, with the type each must parse as.
QUERY_TYPES = {
    "heartbeat": float,
    "connect_timeout": float,
    "ssl": bool,
    "frame_max": int,
    "channel_max": int,
}


def parse_url(url: str) -> dict:
    """kombu.utils.url.parse_url: the URL's parts as Connection keyword arguments."""
    scheme = urlparse(url).scheme
    rest = urlparse("http://" + url[len(scheme) + 3 :])
    path = rest.path[1:] if rest.path.startswith("/") else rest.path
    return dict(
        transport=scheme,
        hostname=unquote(rest.hostname or "") or None,
        port=rest.port,
        userid=unquote(rest.username or "") or None,
        password=unquote(rest.password or "") or None,
        virtual_host=unquote(path) or None,
        **dict(parse_qsl(rest.query)),
    )


@dataclass(frozen=True)
class HostSpec:
    """One broker of a failover list, with its own settings."""

    transport: str
    hostname: str
    port: int
    userid: str
    password: str
    virtual_host: str
    options: dict = field(default_factory=dict, hash=False)

    @property
    def ssl(self) -> bool:
        return self.transport == "amqps" or bool(self.options.get("ssl"))

    def as_url(self, mask: str | None = "**") -> str:
        password = mask if mask is not None else quote(self.password, safe="")
        return (
            f"{self.transport}://{quote(self.userid, safe='')}:{password}@{self.hostname}:"
            f"{self.port}/{quote(self.virtual_host, safe='')}"
        )


def parse_hosts(urls: str | list[str], **defaults) -> list[HostSpec]:
    """Validate every URL of a ``;``-separated string (or list); raise ConfigurationError."""
    items = urls.split(";") if isinstance(urls, str) else list(urls)
    items = [item.strip() for item in items]
    if not items or any(not item for item in items):
        raise ConfigurationError(f"empty URL in the broker list {urls!r}")
    first = items[0].split("://", 1)[0] if "://" in items[0] else "amqp"
    return [_host(item, i + 1, len(items), first, defaults) for i, item in enumerate(items)]


def _host(url: str, position: int, total: int, first: str, defaults: dict) -> HostSpec:
    where = f"URL {position} of {total} ({_masked(url)})"
    if "://" not in url:
        url = f"{first}://{url}"  # kombu: later URLs may omit the first URL's transport
    scheme = url.split("://", 1)[0]
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"{where}: transport '{scheme}' is not supported (use one of {', '.join(SCHEMES)})"
        )
    try:
        parts = parse_url(url)
    except ValueError as exc:  # urllib: "Port out of range 0-65535", bad port text, ...
        raise ConfigurationError(f"{where}: {exc}") from None
    port = parts.pop("port") or defaults.get("port") or SCHEMES[scheme]
    if not 1 <= int(port) <= 65535:
        raise ConfigurationError(f"{where}: port {port} is not in 1..65535")
    fixed = {k: parts.pop(k) or defaults.get(k) or DEFAULTS[k] for k in DEFAULTS}
    parts.pop("transport")
    options = {k: _query_value(where, k, v) for k, v in parts.items()}
    return HostSpec(
        scheme,
        fixed["hostname"],
        int(port),
        fixed["userid"],
        fixed["password"],
        fixed["virtual_host"],
        options,
    )


def _query_value(where: str, key: str, value: str):
    kind = QUERY_TYPES.get(key)
    if kind is None:
        return value
    try:
        if kind is bool:
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes")
        parsed = kind(value)
    except ValueError:
        raise ConfigurationError(
            f"{where}: query value {key}={value!r} is not a valid {kind.__name__}"
        ) from None
    if parsed < 0:
        raise ConfigurationError(f"{where}: query value {key}={value!r} must not be negative")
    return parsed


def _masked(url: str) -> str:
    """The URL with its password replaced by ``**``."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:**@{host}" if ":" in creds else url
