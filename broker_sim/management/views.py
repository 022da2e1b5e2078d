"""The JSON objects of the management API, built from the simulated cluster's state.

Field names follow RabbitMQ 3.13's ``rabbitmq_management`` (rabbit_mgmt_format,
rabbit_reader's ``?CREATION_EVENT_KEYS``/``?STATISTICS_KEYS``, rabbit_classic_queue and
rabbit_quorum_queue ``format/2``, rabbit_mgmt_wm_overview, rabbit_mgmt_wm_nodes). Every
view is seen from one node (``Views.node``): nodes it cannot reach are not running, their
classic queues are ``down`` (and carry no message counts, as RabbitMQ lists a queue whose
node is down), their connections are not listed.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import zlib
from collections.abc import Callable, Mapping
from urllib.parse import quote_plus

from broker_sim.connection import CLOSING, OPEN

PRODUCT_NAME = "RabbitMQ"
ERLANG_VERSION = "26.2"
ERLANG_FULL_VERSION = "Erlang/OTP 26 [erts-14.2] [source] [64-bit] (Warren simulation)"
PROTOCOL = "AMQP 0-9-1"
NODE_TYPE = "disc"  # rabbit_mgmt_wm_nodes: every simulated node is a disc node
RATES_MODE = "basic"
#: rabbit_mgmt_wm_overview:get_sample_retention_policies with the default configuration.
SAMPLE_RETENTION_POLICIES = {
    "global": [600, 3600, 28800, 86400],
    "basic": [600, 3600],
    "detailed": [600],
}
#: rabbit_exchange_type_*:description/0.
EXCHANGE_TYPE_DESCRIPTIONS = {
    "direct": "AMQP direct exchange, as per the AMQP specification",
    "fanout": "AMQP fanout exchange, as per the AMQP specification",
    "headers": "AMQP headers exchange, as per the AMQP specification",
    "topic": "AMQP topic exchange, as per the AMQP specification",
}
#: The counts that carry a ``<name>_details`` rate object (no rates here: always 0.0).
RATED = ("messages", "messages_ready", "messages_unacknowledged", "recv_oct", "send_oct")
#: Where a connection's listener is when the driver does not say (RabbitMQ's default).
DEFAULT_AMQP_ADDRESS = ("127.0.0.1", 5672)

Listeners = Callable[[], Mapping[str, Mapping[str, tuple[str, int]]]]


def amqp_json(value):
    """An AMQP field value as JSON (rabbit_misc:amqp_table): tables become objects, byte
    strings text, decimals numbers, timestamps seconds since the epoch."""
    if isinstance(value, dict):
        return {str(k): amqp_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [amqp_json(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    return value


def with_rates(counts: dict) -> dict:
    """Add RabbitMQ's ``<name>_details: {"rate": ...}`` next to every rated count."""
    out = {}
    for key, value in counts.items():
        out[key] = value
        if key in RATED:
            out[f"{key}_details"] = {"rate": 0.0}
    return out


def address(host: str, port: int) -> str:
    """rabbit_misc:ntoab: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_peer(peer: str) -> tuple[str, int | None]:
    host, _, port = peer.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else None


def properties_key(routing_key: str, arguments: dict) -> str:
    """rabbit_mgmt_format:pack_binding_props: ``~`` alone for an empty key without
    arguments, else the quoted key, plus ``~`` and a hash of the arguments when there are
    any (CRC-32 of their JSON here, ``erlang:phash2`` in RabbitMQ)."""
    if not routing_key and not arguments:
        return "~"
    key = quote_plus(routing_key, safe="").replace("~", "%7E")
    if not arguments:
        return key
    digest = zlib.crc32(json.dumps(amqp_json(arguments), sort_keys=True).encode())
    packed = base64.urlsafe_b64encode(digest.to_bytes(4, "big")).decode().rstrip("=")
    return f"{key}~{quote_plus(packed, safe='').replace('~', '%7E')}"


class Views:
    """The objects as node ``node`` of ``cluster`` reports them."""

    def __init__(self, cluster, node: str, listeners: Listeners) -> None:
        self.cluster = cluster
        self.node = node
        self.listeners = listeners
        self._opened: dict[tuple[str, int], float] = {}  # (node, conn id) -> open time
        self._events_seen = 0

    # -- reachability -----------------------------------------------------------------------

    def running(self, name: str) -> bool:
        return self.cluster.reachable(self.node, name)

    def connections(self) -> list:
        """Open client connections (past connection.open) on every node this one reaches."""
        return [
            conn
            for node in self.cluster.nodes.values()
            if self.running(node.name)
            for conn in node.connections.values()
            if conn.state in (OPEN, CLOSING) and conn.vhost is not None
        ]

    # -- nodes and overview -----------------------------------------------------------------

    def node_view(self, name: str) -> dict:
        """rabbit_mgmt_wm_nodes: name, type, running; figures only for running nodes."""
        running = self.running(name)
        view = {"name": name, "type": NODE_TYPE, "running": running, "being_drained": False}
        if running:
            view |= {
                "partitions": [],
                "mem_alarm": self.cluster.nodes[name].alarm_active,
                "disk_free_alarm": False,
                "rates_mode": RATES_MODE,
            }
        return view

    def listener_views(self) -> list[dict]:
        """rabbit_mgmt_format:listener for the AMQP and HTTP listeners of running nodes."""
        views = []
        for name, protocols in sorted(self.listeners().items()):
            if not self.running(name):
                continue
            for protocol, (host, port) in sorted(protocols.items()):
                views.append(
                    {
                        "node": name,
                        "protocol": protocol,
                        "ip_address": host,
                        "port": port,
                        "socket_opts": {},
                    }
                )
        return views

    def exchange_types(self) -> list[dict]:
        return [
            {"name": name, "description": text, "enabled": True}
            for name, text in sorted(EXCHANGE_TYPE_DESCRIPTIONS.items())
        ]

    def overview(self, vhosts: list, monitor: bool) -> dict:
        """rabbit_mgmt_wm_overview and rabbit_mgmt_db:overview: monitors see the whole
        cluster (consumers, node, listeners); other users the totals of their vhosts."""
        cfg = self.cluster.config
        queues = [q for vhost in vhosts for q in vhost.queues.values()]
        counted = [q for q in queues if not self.queue_down(q)]
        ready = sum(q.message_count for q in counted)
        unacked = sum(q.unacked for q in counted)
        connections = self.connections()
        totals = {
            "channels": sum(len(c.channels) for c in connections),
            "connections": len(connections),
            "exchanges": sum(len(vhost.exchanges) for vhost in vhosts),
            "queues": len(queues),
        }
        if monitor:
            totals["consumers"] = sum(len(q.consumers) for q in queues)
        view = {
            "management_version": cfg.product_version,
            "rates_mode": RATES_MODE,
            "sample_retention_policies": SAMPLE_RETENTION_POLICIES,
            "exchange_types": self.exchange_types(),
            "product_version": cfg.product_version,
            "product_name": PRODUCT_NAME,
            "rabbitmq_version": cfg.product_version,
            "cluster_name": cfg.cluster_name,
            "erlang_version": ERLANG_VERSION,
            "erlang_full_version": ERLANG_FULL_VERSION,
            "disable_stats": False,
            "enable_queue_totals": False,
            "message_stats": {},
            "queue_totals": with_rates(
                {
                    "messages": ready + unacked,
                    "messages_ready": ready,
                    "messages_unacknowledged": unacked,
                }
            ),
            "object_totals": dict(sorted(totals.items())),
            "statistics_db_event_queue": 0,
        }
        if monitor:
            view |= {"node": self.node, "listeners": self.listener_views()}
        return view

    # -- queues -----------------------------------------------------------------------------

    def queue_down(self, q) -> bool:
        """A classic queue whose home node this node cannot reach is listed as ``down``."""
        return q.kind == "classic" and not self.running(q.node)

    def queue_view(self, q, detailed: bool = False) -> dict:
        view = {
            "name": q.name,
            "vhost": q.vhost,
            "durable": q.durable,
            "auto_delete": q.auto_delete,
            "exclusive": q.exclusive_owner is not None,
            "arguments": amqp_json(q.arguments),
            "type": q.kind,
        }
        if q.kind == "quorum":
            view |= self._quorum_state(q)
        else:
            view |= {"state": "down" if self.queue_down(q) else "running", "node": q.node}
        if self.queue_down(q):
            return view
        unacked_bytes = sum(len(qm.message.body) for qm in q.in_flight.values())
        exclusive = next((c.tag for c in q.consumers if c.exclusive), None)
        view |= with_rates(
            {
                "messages": q.message_count + q.unacked,
                "messages_ready": q.message_count,
                "messages_unacknowledged": q.unacked,
            }
        )
        view |= {
            "message_bytes": q.bytes_ready + unacked_bytes,
            "message_bytes_ready": q.bytes_ready,
            "message_bytes_unacknowledged": unacked_bytes,
            "consumers": len(q.consumers),
            "exclusive_consumer_tag": exclusive,
            "policy": None,
            "operator_policy": None,
            "effective_policy_definition": {},
        }
        if detailed:  # rabbit_mgmt_wm_queue: one queue, with its consumers
            view["consumer_details"] = [self.consumer_view(q, c) for c in q.consumers]
        return view

    def _quorum_state(self, q) -> dict:
        """rabbit_quorum_queue:format/2: ``down`` with no member online, ``minority``
        without a majority online, else ``running`` when the leader is online."""
        members = sorted(q.members)
        online = [m for m in members if self.running(m)]
        if len(online) < len(members) // 2 + 1:
            state = "minority" if online else "down"
        else:
            state = "running" if q.leader in online else "down"
        return {
            "state": state,
            "node": q.leader,
            "members": members,
            "leader": q.leader,
            "online": online,
        }

    def consumer_view(self, q, consumer) -> dict:
        return {
            "arguments": amqp_json(consumer.arguments),
            "channel_details": self.channel_details(consumer.channel),
            "ack_required": not consumer.no_ack,
            "active": True,
            "activity_status": "up",
            "consumer_tag": consumer.tag,
            "exclusive": consumer.exclusive,
            "prefetch_count": consumer.prefetch,
            "queue": {"name": q.name, "vhost": q.vhost},
        }

    def channel_details(self, channel) -> dict:
        conn = channel.conn
        host, port = split_peer(conn.peer)
        name = self.connection_name(conn)
        return {
            "connection_name": name,
            "name": f"{name} ({channel.number})",
            "node": conn.node.name,
            "number": channel.number,
            "peer_host": host,
            "peer_port": port,
            "user": conn.user.name,
        }

    # -- connections ------------------------------------------------------------------------

    def amqp_address(self, node: str) -> tuple[str, int]:
        return self.listeners().get(node, {}).get("amqp", DEFAULT_AMQP_ADDRESS)

    def connection_name(self, conn) -> str:
        """rabbit_net:connection_string: ``"peer -> listener"``."""
        host, port = split_peer(conn.peer)
        return f"{address(host, port)} -> {address(*self.amqp_address(conn.node.name))}"

    def connection_view(self, conn) -> dict:
        """rabbit_reader's creation-event and statistics keys, plus ``type``."""
        peer_host, peer_port = split_peer(conn.peer)
        host, port = self.amqp_address(conn.node.name)
        props = amqp_json(conn.client_properties)
        view = {
            "auth_mechanism": conn.mechanism,
            "channel_max": conn.channel_max,
            "channels": len(conn.channels),
            "client_properties": props,
            "connected_at": self.connected_at(conn),
            "frame_max": conn.frame_max,
            "host": host,
            "name": self.connection_name(conn),
            "node": conn.node.name,
            "peer_cert_issuer": None,
            "peer_cert_subject": None,
            "peer_cert_validity": None,
            "peer_host": peer_host,
            "peer_port": peer_port,
            "port": port,
            "protocol": PROTOCOL,
            "send_pend": 0,
            "ssl": False,
            "ssl_cipher": None,
            "ssl_hash": None,
            "ssl_key_exchange": None,
            "ssl_protocol": None,
            "state": self.connection_state(conn),
            "timeout": conn.heartbeat,
            "type": "network",
            "user": conn.user.name,
            "user_who_performed_action": conn.user.name,
            "vhost": conn.vhost.name,
        }
        view |= with_rates({"recv_oct": conn.bytes_in, "send_oct": conn.bytes_out})
        if isinstance(props.get("connection_name"), str):
            view["user_provided_name"] = props["connection_name"]
        return dict(sorted(view.items()))

    def connection_state(self, conn) -> str:
        """rabbit_reader's connection_state: ``blocking`` while an alarm is on and the
        connection has not published yet, ``blocked`` once it has."""
        if conn.state == CLOSING:
            return "closing"
        if conn.reading_blocked:
            return "blocked"
        return "blocking" if self.cluster.alarm_active else "running"

    def connected_at(self, conn) -> int | None:
        """Milliseconds since the epoch at connection.open (the node's ``connection-open``
        event); the events are read once each."""
        events = self.cluster.events
        if len(events) < self._events_seen:  # the log was cleared
            self._events_seen = 0
        for event in events[self._events_seen :]:
            if event.kind == "connection-open":
                self._opened[(event.node, event.details.get("conn"))] = event.time
        self._events_seen = len(events)
        at = self._opened.get((conn.node.name, conn.id))
        return None if at is None else int(at * 1000)

    # -- exchanges and bindings -------------------------------------------------------------

    def exchange_view(self, vhost, ex) -> dict:
        return {
            "arguments": amqp_json(ex.arguments),
            "auto_delete": ex.auto_delete,
            "durable": ex.durable,
            "internal": ex.internal,
            "name": ex.name,
            "type": ex.type,
            "vhost": vhost.name,
        }

    def binding_views(self, vhost) -> list[dict]:
        """rabbit_binding:list: the default exchange's implicit binding to every queue
        (routing key = queue name), then the declared bindings."""
        views = [self._binding("", vhost.name, name, "queue", name, {}) for name in vhost.queues]
        for ex in vhost.exchanges.values():
            for b in ex.bindings:
                views.append(
                    self._binding(
                        b.source, vhost.name, b.destination, b.dest_kind, b.routing_key, b.args
                    )
                )
        return views

    @staticmethod
    def _binding(source, vhost, destination, kind, key, arguments) -> dict:
        return {
            "source": source,
            "vhost": vhost,
            "destination": destination,
            "destination_type": kind,
            "routing_key": key,
            "arguments": amqp_json(arguments),
            "properties_key": properties_key(key, arguments),
        }
