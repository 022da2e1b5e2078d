"""Toxiproxy's HTTP API as a sans-IO request handler (Shopify/toxiproxy api.go, 2.x).

``ToxiproxyAPI.handle(method, path, headers, body)`` returns ``(status, headers, body)``;
the driver owns the HTTP server and the sockets, and implements :class:`ProxyBackend` to
open and close listeners and to apply toxics to live connections. Routes, status codes,
error bodies (``{"error": ..., "status": ...}``), default toxic names (``<type>_<stream>``),
attribute merge on update, the 403 for browsers and the ``X-Toxiproxy-Request-Id`` header
follow Toxiproxy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Protocol

from broker_sim.toxics import TOXICS, Toxic, ToxicError

VERSION = "2.12.0-warren"
STREAMS = ("upstream", "downstream")


class ApiError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def bad_body(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
TOXIC_NOT_FOUND = ("toxic not found", 404)


@dataclass
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: dict[str, Toxic] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics.values()],
        }


class ProxyBackend(Protocol):
    def start(self, proxy: Proxy) -> str:
        """Listen for ``proxy``; return the bound address. Raise OSError on failure."""

    def stop(self, proxy: Proxy) -> None: ...

    def toxic_added(self, proxy: Proxy, toxic: Toxic) -> None: ...

    def toxic_removed(self, proxy: Proxy, toxic: Toxic) -> None: ...

    def toxic_updated(self, proxy: Proxy, toxic: Toxic) -> None: ...


ROUTES = [
    ("POST", r"/reset", "reset"),
    ("GET", r"/proxies", "proxy_index"),
    ("POST", r"/proxies", "proxy_create"),
    ("POST", r"/populate", "populate"),
    ("GET", r"/version", "version"),
    ("GET", r"/proxies/(?P<proxy>[^/]+)", "proxy_show"),
    ("POST|PATCH", r"/proxies/(?P<proxy>[^/]+)", "proxy_update"),
    ("DELETE", r"/proxies/(?P<proxy>[^/]+)", "proxy_delete"),
    ("GET", r"/proxies/(?P<proxy>[^/]+)/toxics", "toxic_index"),
    ("POST", r"/proxies/(?P<proxy>[^/]+)/toxics", "toxic_create"),
    ("GET", r"/proxies/(?P<proxy>[^/]+)/toxics/(?P<toxic>[^/]+)", "toxic_show"),
    ("POST|PATCH", r"/proxies/(?P<proxy>[^/]+)/toxics/(?P<toxic>[^/]+)", "toxic_update"),
    ("DELETE", r"/proxies/(?P<proxy>[^/]+)/toxics/(?P<toxic>[^/]+)", "toxic_delete"),
]
_COMPILED = [(methods.split("|"), re.compile(f"^{path}/?$"), h) for methods, path, h in ROUTES]


class ToxiproxyAPI:
    def __init__(self, backend: ProxyBackend, rng) -> None:
        self.backend = backend
        self.rng = rng
        self.proxies: dict[str, Proxy] = {}

    # -- entry point ------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        request_id = {"X-Toxiproxy-Request-Id": self._request_id()}
        if headers.get("user-agent", "").startswith("Mozilla/"):
            return (
                403,
                {**request_id, "Content-Type": "text/plain; charset=utf-8"},
                b"User agent not allowed\n",
            )
        path = path.split("?", 1)[0]
        for methods, pattern, handler in _COMPILED:
            match = pattern.match(path)
            if match and method in methods:
                try:
                    status, payload = getattr(self, handler)(body, **match.groupdict())
                except ApiError as err:
                    status, payload = err.status, {"error": err.message, "status": err.status}
                return self._reply(status, payload, request_id)
        if any(p.match(path) for _, p, _ in _COMPILED):
            return 405, request_id, b""
        return (
            404,
            {**request_id, "Content-Type": "text/plain; charset=utf-8"},
            b"404 page not found\n",
        )

    def _reply(self, status: int, payload, headers: dict):
        if status == 204:
            return status, headers, b""
        data = json.dumps(payload).encode() + (b"\n" if status >= 400 else b"")
        return status, {**headers, "Content-Type": "application/json"}, data

    def _request_id(self) -> str:
        alphabet = "0123456789abcdefghijklmnopqrstuv"  # xid's base32 alphabet
        return "".join(alphabet[self.rng.randrange(32)] for _ in range(20))

    # -- proxies ----------------------------------------------------------------------------

    def proxy(self, name: str) -> Proxy:
        if name not in self.proxies:
            raise ApiError(*PROXY_NOT_FOUND)
        return self.proxies[name]

    def proxy_index(self, body: bytes):
        return 200, {name: p.to_json() for name, p in self.proxies.items()}

    def proxy_create(self, body: bytes):
        data = _json_object(body)
        proxy = self._proxy_from(data)
        self._add(proxy)
        return 201, proxy.to_json()

    def _proxy_from(self, data: dict) -> Proxy:
        for key in ("name", "upstream"):
            if not isinstance(data.get(key, ""), str):
                raise bad_body(
                    f"json: cannot unmarshal {type(data[key]).__name__} into Go "
                    f"struct field Proxy.{key} of type string"
                )
            if not data.get(key):
                raise ApiError(f"missing required field: {key}", 400)
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise bad_body("json: cannot unmarshal into Go struct field Proxy.enabled of type bool")
        return Proxy(
            data["name"], str(data.get("listen") or "127.0.0.1:0"), data["upstream"], enabled
        )

    def _add(self, proxy: Proxy) -> None:
        if proxy.name in self.proxies:
            raise ApiError("proxy already exists", 409)
        if proxy.enabled:
            proxy.listen = self._start(proxy)
        self.proxies[proxy.name] = proxy

    def _start(self, proxy: Proxy) -> str:
        try:
            return self.backend.start(proxy)
        except OSError as exc:
            raise ApiError(f"listen tcp {proxy.listen}: bind: {exc.strerror or exc}", 500) from None

    def populate(self, body: bytes):
        try:
            items = json.loads(body or b"null")
        except ValueError as exc:
            raise bad_body(str(exc)) from None
        if not isinstance(items, list):
            raise bad_body("json: cannot unmarshal object into Go value of type []toxiproxy.Proxy")
        proxies = [self._proxy_from(item if isinstance(item, dict) else {}) for item in items]
        for proxy in proxies:
            existing = self.proxies.get(proxy.name)
            if existing and (existing.upstream, existing.listen) != (proxy.upstream, proxy.listen):
                self._delete(existing)
            if proxy.name not in self.proxies:
                self._add(proxy)
        return 201, {"proxies": [self.proxies[p.name].to_json() for p in proxies]}

    def proxy_show(self, body: bytes, proxy: str):
        return 200, self.proxy(proxy).to_json()

    def proxy_update(self, body: bytes, proxy: str):
        target = self.proxy(proxy)
        data = _json_object(body)
        enabled = data.get("enabled", target.enabled)
        upstream = data.get("upstream", target.upstream)
        listen = data.get("listen", target.listen)
        restart = (listen, upstream) != (target.listen, target.upstream)
        if target.enabled and (not enabled or restart):
            self.backend.stop(target)
            target.enabled = False
        target.upstream, target.listen = upstream, listen
        if enabled and not target.enabled:
            target.listen = self._start(target)
            target.enabled = True
        return 200, target.to_json()

    def proxy_delete(self, body: bytes, proxy: str):
        self._delete(self.proxy(proxy))
        return 204, None

    def _delete(self, proxy: Proxy) -> None:
        if proxy.enabled:
            self.backend.stop(proxy)
        del self.proxies[proxy.name]

    def reset(self, body: bytes):
        for proxy in self.proxies.values():
            for toxic in list(proxy.toxics.values()):
                del proxy.toxics[toxic.name]
                self.backend.toxic_removed(proxy, toxic)
            if not proxy.enabled:
                proxy.listen = self._start(proxy)
                proxy.enabled = True
        return 204, None

    def version(self, body: bytes):
        return 200, {"version": VERSION}

    # -- toxics -----------------------------------------------------------------------------

    def toxic_index(self, body: bytes, proxy: str):
        return 200, [t.to_json() for t in self.proxy(proxy).toxics.values()]

    def toxic_create(self, body: bytes, proxy: str):
        target = self.proxy(proxy)
        data = _json_object(body)
        stream = data.get("stream") or "downstream"
        if stream not in STREAMS:
            raise ApiError("stream was invalid, can be either upstream or downstream", 400)
        kind = data.get("type")
        if kind not in TOXICS:
            raise ApiError("invalid toxic type", 400)
        name = data.get("name") or f"{kind}_{stream}"
        if name in target.toxics:
            raise ApiError("toxic already exists", 409)
        toxic = self._build(
            kind, name, stream, data.get("toxicity", 1.0), data.get("attributes") or {}
        )
        target.toxics[name] = toxic
        self.backend.toxic_added(target, toxic)
        return 200, toxic.to_json()

    def _build(self, kind, name, stream, toxicity, attributes) -> Toxic:
        if isinstance(toxicity, bool) or not isinstance(toxicity, (int, float)):
            raise bad_body("json: cannot unmarshal into Go struct field toxicity of type float32")
        if not isinstance(attributes, dict):
            raise bad_body("json: cannot unmarshal into Go struct field attributes")
        try:
            return TOXICS[kind](
                name=name, stream=stream, toxicity=float(toxicity), attributes=attributes
            )
        except ToxicError as exc:
            raise bad_body(str(exc)) from None

    def toxic(self, proxy: str, toxic: str) -> tuple[Proxy, Toxic]:
        target = self.proxy(proxy)
        if toxic not in target.toxics:
            raise ApiError(*TOXIC_NOT_FOUND)
        return target, target.toxics[toxic]

    def toxic_show(self, body: bytes, proxy: str, toxic: str):
        return 200, self.toxic(proxy, toxic)[1].to_json()

    def toxic_update(self, body: bytes, proxy: str, toxic: str):
        target, old = self.toxic(proxy, toxic)
        data = _json_object(body)
        attributes = {**old.attributes, **(data.get("attributes") or {})}
        new = self._build(
            old.type, old.name, old.stream, data.get("toxicity", old.toxicity), attributes
        )
        target.toxics[old.name] = new
        self.backend.toxic_updated(target, new)
        return 200, new.to_json()

    def toxic_delete(self, body: bytes, proxy: str, toxic: str):
        target, old = self.toxic(proxy, toxic)
        del target.toxics[old.name]
        self.backend.toxic_removed(target, old)
        return 204, None


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise bad_body(str(exc)) from None
    if not isinstance(data, dict):
        raise bad_body(f"json: cannot unmarshal {type(data).__name__} into Go value")
    return data
