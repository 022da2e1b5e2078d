"""The management API's routes, authentication and errors, sans-IO (rabbitmq_management 3.13).

``ManagementAPI(cluster, node, listeners).handle(method, target, headers, body)`` returns
``(status, headers, body)``. A request goes through the steps of cowboy_rest as RabbitMQ's
handlers configure them, in order:

1. route (rabbit_mgmt_dispatcher): no match is 404, whatever the credentials;
2. method: one the route does not allow is 405 with ``allow`` and no body;
3. authentication (rabbit_web_dispatch_access_control): no credentials is 401 with
   ``www-authenticate: Basic realm="RabbitMQ Management"`` and no body; wrong ones
   ``{"error":"not_authorized","reason":"Not_Authorized"}``; a user without a management
   tag ``{"error":"not_authorised","reason":"Not management user"}``;
4. authorisation: ``/api/nodes`` wants a monitor (``Not monitor user``), a route naming a
   vhost an administrator or a user with permissions there (``User not authorised to access
   virtual host``), one connection a monitor or its owner (DELETE: an administrator or its
   owner; ``User not authorised to access object``);
5. the object: an unknown vhost, queue, exchange, node or connection is 404 with
   rabbit_cowboy_stream_h's body ``{"error":"Object Not Found","reason":"Not Found"}``.

Names in paths are percent-decoded per segment (vhost ``/`` is ``%2F``); ``amq.default``
names the default exchange. Lists are sorted as rabbit_mgmt_util:reply_list sorts them (by
vhost, then name). ``DELETE /api/connections/{name}`` closes the connection with 320
CONNECTION_FORCED and the text of the ``X-Reason`` header, or "Closed via management
plugin" (rabbit_mgmt_wm_connection:force_close_connection), and answers 204. A bug in
the simulator is a 500 ``{"error":"internal_server_error",...}`` for that request only.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from urllib.parse import unquote

from broker_sim.management.views import DEFAULT_AMQP_ADDRESS, Listeners, Views
from broker_sim.replies import reply_text

ADMIN_TAGS = frozenset({"administrator"})
MONITOR_TAGS = frozenset({"administrator", "monitoring"})
MANAGEMENT_TAGS = frozenset({"administrator", "monitoring", "policymaker", "management"})

FORCE_CLOSE_REASON = "Closed via management plugin"
AUTH_REALM = 'Basic realm="RabbitMQ Management"'
JSON_HEADERS = {
    "content-type": "application/json",
    "cache-control": "no-cache",
    "vary": "accept, accept-encoding, origin",
}

#: Error bodies: (status, error, reason); ``None`` as the error means an empty body.
ERRORS = {
    "not_found": (404, "Object Not Found", "Not Found"),
    "no_credentials": (401, None, None),
    "bad_credentials": (401, "not_authorized", "Not_Authorized"),
    "not_management": (401, "not_authorised", "Not management user"),
    "not_monitor": (401, "not_authorised", "Not monitor user"),
    "not_vhost": (401, "not_authorised", "User not authorised to access virtual host"),
    "not_owner": (401, "not_authorised", "User not authorised to access object"),
}

#: (path template, methods, handler (method ``on_<handler>``), access). Access: ``user``
#: any management user, ``monitor``, ``vhost`` (administrators, or users with permissions
#: in the path's vhost), ``owner`` (checked by the handler: it needs the object).
ROUTES = (
    ("/api/overview", ("GET",), "overview", "user"),
    ("/api/nodes", ("GET",), "nodes", "monitor"),
    ("/api/nodes/{node}", ("GET",), "node", "monitor"),
    ("/api/queues", ("GET",), "queues", "user"),
    ("/api/queues/{vhost}", ("GET",), "queues", "vhost"),
    ("/api/queues/{vhost}/{queue}", ("GET",), "queue", "vhost"),
    ("/api/connections", ("GET",), "connections", "user"),
    ("/api/connections/{connection}", ("GET", "DELETE"), "connection", "owner"),
    ("/api/exchanges", ("GET",), "exchanges", "user"),
    ("/api/exchanges/{vhost}", ("GET",), "exchanges", "vhost"),
    ("/api/exchanges/{vhost}/{exchange}", ("GET",), "exchange", "vhost"),
    ("/api/bindings", ("GET",), "bindings", "user"),
    ("/api/bindings/{vhost}", ("GET",), "bindings", "vhost"),
)


class ApiError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class Request:
    method: str
    headers: dict[str, str]
    user: object
    params: dict[str, str] = field(default_factory=dict)

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(self.user.tags)


def _match(template: str, path: str) -> dict[str, str] | None:
    want, got = template.split("/"), path.split("/")
    if len(want) != len(got):
        return None
    params = {}
    for pattern, segment in zip(want, got, strict=True):
        if pattern.startswith("{"):
            params[pattern[1:-1]] = unquote(segment)
        elif pattern != segment:
            return None
    return params


class ManagementAPI:
    """The API of node ``node``; ``listeners()`` maps each node name to its listeners'
    ``{"amqp": (host, port), "http": (host, port)}`` (connection names, ``listeners``)."""

    def __init__(self, cluster, node: str, listeners: Listeners | None = None) -> None:
        self.cluster = cluster
        self.node = cluster.node(node).name
        default = {self.node: {"amqp": DEFAULT_AMQP_ADDRESS}}
        self.views = Views(cluster, self.node, listeners or (lambda: default))

    # -- entry point ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes):
        path = target.split("?", 1)[0]
        for template, methods, handler, access in ROUTES:
            params = _match(template, path)
            if params is None:
                continue
            if method not in methods:
                return 405, {"allow": ", ".join(methods)}, b""
            try:
                request = Request(method, headers, self._authenticate(headers), params)
                self._authorise(request, access)
                status, payload = getattr(self, f"on_{handler}")(request)
            except ApiError as err:
                return self._error(err.key)
            except Exception as exc:  # a simulator bug costs this request only
                reason = f"{type(exc).__name__}: {exc}"
                return (
                    500,
                    {"content-type": "application/json"},
                    _encode({"error": "internal_server_error", "reason": reason}),
                )
            if payload is None:
                return status, {}, b""
            return status, dict(JSON_HEADERS), _encode(payload)
        return self._error("not_found")

    def _error(self, key: str):
        status, error, reason = ERRORS[key]
        if error is None:
            return status, {"www-authenticate": AUTH_REALM}, b""
        headers = {"content-type": "application/json", "vary": "origin"}
        return status, headers, _encode({"error": error, "reason": reason})

    # -- access -----------------------------------------------------------------------------

    def _authenticate(self, headers: dict[str, str]):
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            raise ApiError("no_credentials")
        try:
            name, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError("no_credentials") from None
        user = self.cluster.users.users.get(name)
        if not sep or user is None or user.password != password:
            raise ApiError("bad_credentials")
        if not MANAGEMENT_TAGS & set(user.tags):
            raise ApiError("not_management")
        return user

    def _authorise(self, request: Request, access: str) -> None:
        if access == "monitor" and not MONITOR_TAGS & request.tags:
            raise ApiError("not_monitor")
        if access == "vhost" and not ADMIN_TAGS & request.tags:
            vhost = request.params["vhost"]
            # rabbit_web_dispatch_access_control:user_matches_vhost: a missing vhost passes
            # here (and is a 404 next)
            if vhost in self.cluster.vhosts and not self._permitted(request.user, vhost):
                raise ApiError("not_vhost")

    def _permitted(self, user, vhost: str) -> bool:
        return (user.name, vhost) in self.cluster.users.permissions

    def _vhosts(self, request: Request) -> list:
        """The vhost named in the path (404 when missing), or every vhost the user sees:
        all for monitors and administrators, else those it has permissions in."""
        name = request.params.get("vhost")
        if name is not None:
            if name not in self.cluster.vhosts:
                raise ApiError("not_found")
            return [self.cluster.vhosts[name]]
        seen = bool(MONITOR_TAGS & request.tags)
        return [
            vhost
            for name, vhost in sorted(self.cluster.vhosts.items())
            if seen or self._permitted(request.user, name)
        ]

    # -- handlers ---------------------------------------------------------------------------

    def on_overview(self, request: Request):
        monitor = bool(MONITOR_TAGS & request.tags)
        return 200, self.views.overview(self._vhosts(request), monitor)

    def on_nodes(self, request: Request):
        return 200, [self.views.node_view(name) for name in sorted(self.cluster.nodes)]

    def on_node(self, request: Request):
        if request.params["node"] not in self.cluster.nodes:
            raise ApiError("not_found")
        return 200, self.views.node_view(request.params["node"])

    def on_queues(self, request: Request):
        queues = [q for vhost in self._vhosts(request) for q in vhost.queues.values()]
        return 200, [self.views.queue_view(q) for q in sorted(queues, key=_vhost_name)]

    def on_queue(self, request: Request):
        vhost = self._vhosts(request)[0]
        q = vhost.queues.get(request.params["queue"])
        if q is None:
            raise ApiError("not_found")
        return 200, self.views.queue_view(q, detailed=True)

    def on_connections(self, request: Request):
        conns = self.views.connections()
        if not MONITOR_TAGS & request.tags:  # rabbit_mgmt_util:filter_conn_ch_list
            conns = [c for c in conns if c.user.name == request.user.name]
        views = [self.views.connection_view(c) for c in conns]
        return 200, sorted(views, key=lambda v: (v["vhost"], v["name"]))

    def on_connection(self, request: Request):
        name = request.params["connection"]
        conn = next((c for c in self.views.connections() if self._named(c, name)), None)
        if conn is None:
            raise ApiError("not_found")
        allowed = ADMIN_TAGS if request.method == "DELETE" else MONITOR_TAGS
        if not allowed & request.tags and conn.user.name != request.user.name:
            raise ApiError("not_owner")
        if request.method == "GET":
            return 200, self.views.connection_view(conn)
        self.force_close(conn, _header_text(request.headers.get("x-reason")))
        return 204, None

    def _named(self, conn, name: str) -> bool:
        return self.views.connection_name(conn) == name

    def force_close(self, conn, reason: str | None = None) -> None:
        """rabbit_networking:close_connection: 320 CONNECTION_FORCED with the reason."""
        reason = reason or FORCE_CLOSE_REASON
        code, text = reply_text("forced", reason=reason)
        conn.server_close(code, text)
        self.cluster.dispatch()

    def on_exchanges(self, request: Request):
        views = [
            self.views.exchange_view(vhost, ex)
            for vhost in self._vhosts(request)
            for ex in vhost.exchanges.values()
        ]
        return 200, sorted(views, key=_vhost_name)

    def on_exchange(self, request: Request):
        vhost = self._vhosts(request)[0]
        name = request.params["exchange"]
        ex = vhost.exchanges.get("" if name == "amq.default" else name)
        if ex is None:
            raise ApiError("not_found")
        return 200, self.views.exchange_view(vhost, ex)

    def on_bindings(self, request: Request):
        views = [b for vhost in self._vhosts(request) for b in self.views.binding_views(vhost)]
        order = ("vhost", "source", "destination", "routing_key", "properties_key")
        return 200, sorted(views, key=lambda b: tuple(b[k] for k in order))


def _vhost_name(obj) -> tuple[str, str]:
    if isinstance(obj, dict):
        return obj["vhost"], obj["name"]
    return obj.vhost, obj.name


def _header_text(value: str | None) -> str | None:
    """Header values arrive as latin-1 text; RabbitMQ reads the bytes as UTF-8."""
    if not value:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _encode(payload) -> bytes:
    """rabbit_json: compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
