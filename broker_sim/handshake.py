"""Connection-class (channel 0) handlers and the state-transition table that drives them.

Spec 1.4 (connection class) and rabbit_reader.erl: start / start-ok (SASL), tune /
tune-ok (negotiation of channel_max, frame_max, heartbeat), open / open-ok (vhost access),
close / close-ok in both directions.
"""

from __future__ import annotations

from pamqp import commands as C

from broker_sim.errors import AMQPError

FRAME_MIN_SIZE = 4096
CHANNEL_MIN = 0


def start_ok(conn, m: C.Connection.StartOk) -> None:
    conn.client_properties = dict(m.client_properties or {})
    conn.mechanism = m.mechanism
    response = m.response.encode("utf-8") if isinstance(m.response, str) else m.response
    conn.user = conn.node.users.authenticate(m.mechanism, response or b"")
    cfg = conn.node.config
    conn.send_method(0, C.Connection.Tune(cfg.channel_max, cfg.frame_max, cfg.heartbeat))


def _negotiate(field: str, value: int, server: int, minimum: int) -> int:
    """rabbit_reader:validate_negotiated_integer_value."""
    if value != 0 and value < minimum:
        raise AMQPError(530, f"NOT_ALLOWED - {field}={value} < {minimum} min size")
    if server != 0 and (value == 0 or value > server):
        raise AMQPError(530, f"NOT_ALLOWED - {field}={value} > {server} max size")
    return value


def tune_ok(conn, m: C.Connection.TuneOk) -> None:
    cfg = conn.node.config
    conn.frame_max = _negotiate("frame_max", m.frame_max, cfg.frame_max, FRAME_MIN_SIZE)
    conn.channel_max = _negotiate("channel_max", m.channel_max, cfg.channel_max, CHANNEL_MIN)
    conn.reader.frame_max = conn.frame_max
    conn.heartbeat = m.heartbeat  # timers start at connection.open


def connection_open(conn, m: C.Connection.Open) -> None:
    node = conn.node
    vhost = node.vhosts.get(m.virtual_host)
    if vhost is None:
        raise AMQPError.of("vhost_missing", vhost=m.virtual_host)
    node.users.check_vhost(conn.user, m.virtual_host)
    if "max-connections" in vhost.limits:  # counting walks every node's connections
        open_now = sum(
            1
            for n in node.cluster.nodes.values()
            for c in n.connections.values()
            if c.vhost is vhost and c.state == "open"
        )
        vhost.check_limit(
            "max-connections", open_now, "vhost_connection_limit", user=conn.user.name
        )
    conn.vhost = vhost
    conn._cancel_timers()  # handshake timeout no longer applies
    conn.start_heartbeats()
    conn.send_method(0, C.Connection.OpenOk())
    node.connection_opened(conn)


def connection_close(conn, m: C.Connection.Close) -> None:
    conn.log_end("client", m.reply_code, m.reply_text)
    conn.send_method(0, C.Connection.CloseOk())
    if conn.state == "open":
        conn.leave_socket_to_client()
    else:  # mid-handshake: nothing to leave to the client
        conn._drop()


def connection_close_ok(conn, m: C.Connection.CloseOk) -> None:
    conn._drop()


def update_secret(conn, m: C.Connection.UpdateSecret) -> None:
    conn.send_method(0, C.Connection.UpdateSecretOk())


#: (state, method) -> (handler, next state). Anything else on channel 0 is an error.
TRANSITIONS = {
    ("start-ok", C.Connection.StartOk): (start_ok, "tune-ok"),
    ("tune-ok", C.Connection.TuneOk): (tune_ok, "open-wait"),
    ("open-wait", C.Connection.Open): (connection_open, "open"),
    ("open", C.Connection.Close): (connection_close, "closed"),
    ("open", C.Connection.CloseOk): (connection_close_ok, "closed"),
    ("open", C.Connection.UpdateSecret): (update_secret, "open"),
    ("start-ok", C.Connection.Close): (connection_close, "closed"),
    ("tune-ok", C.Connection.Close): (connection_close, "closed"),
    ("open-wait", C.Connection.Close): (connection_close, "closed"),
}

#: Methods of the connection class (others on channel 0 are CHANNEL_ERROR).
CONNECTION_METHODS = frozenset(
    getattr(C.Connection, name)
    for name in dir(C.Connection)
    if not name.startswith("_") and isinstance(getattr(C.Connection, name), type)
)
