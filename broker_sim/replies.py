"""Reply codes and texts: the one table every error in Warren comes from.

AMQP 0-9-1 section 1.9 ("Constants") lists the reply codes; RabbitMQ prefixes every reply
text with the code's name (``"NOT_FOUND - no queue 'q' in vhost '/'"``, rabbit_misc:amqp_error
and rabbit_binary_generator:map_exception). Codes marked *hard* close the connection, the
others close only the channel. Texts are ``str.format`` templates with the wording RabbitMQ
3.x uses (rabbit_channel.erl, rabbit_reader.erl, rabbit_amqqueue.erl, rabbit_exchange.erl).
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """AMQP 0-9-1 reply codes (spec section 1.9)."""

    REPLY_SUCCESS = 200
    CONTENT_TOO_LARGE = 311
    NO_ROUTE = 312
    NO_CONSUMERS = 313
    CONNECTION_FORCED = 320
    INVALID_PATH = 402
    ACCESS_REFUSED = 403
    NOT_FOUND = 404
    RESOURCE_LOCKED = 405
    PRECONDITION_FAILED = 406
    FRAME_ERROR = 501
    SYNTAX_ERROR = 502
    COMMAND_INVALID = 503
    CHANNEL_ERROR = 504
    UNEXPECTED_FRAME = 505
    RESOURCE_ERROR = 506
    NOT_ALLOWED = 530
    NOT_IMPLEMENTED = 540
    INTERNAL_ERROR = 541


#: Codes that close the whole connection (spec: "hard errors").
HARD_ERRORS = frozenset(
    {
        Code.CONNECTION_FORCED,
        Code.INVALID_PATH,
        Code.FRAME_ERROR,
        Code.SYNTAX_ERROR,
        Code.COMMAND_INVALID,
        Code.CHANNEL_ERROR,
        Code.UNEXPECTED_FRAME,
        Code.RESOURCE_ERROR,
        Code.NOT_ALLOWED,
        Code.NOT_IMPLEMENTED,
        Code.INTERNAL_ERROR,
    }
)


#: Every reply text Warren's broker sends, by key. Each template is formatted with keyword
#: arguments; the "NAME - " prefix is added by :func:`reply_text`.
TEXTS: dict[str, tuple[Code, str]] = {
    # connection (rabbit_reader.erl)
    "login_refused": (
        Code.ACCESS_REFUSED,
        "Login was refused using authentication mechanism {mechanism}. "
        "For details see the broker logfile.",
    ),
    "unknown_mechanism": (
        Code.COMMAND_INVALID,
        "unknown authentication mechanism '{mechanism}'",
    ),
    "vhost_refused": (Code.NOT_ALLOWED, "access to vhost '{vhost}' refused for user '{user}'"),
    "vhost_missing": (Code.NOT_ALLOWED, "vhost {vhost} not found"),
    "vhost_connection_limit": (
        Code.NOT_ALLOWED,
        "access to vhost '{vhost}' refused for user '{user}': connection limit ({limit}) is "
        "reached",
    ),
    "vhost_queue_limit": (
        Code.PRECONDITION_FAILED,
        "cannot declare queue '{name}': queue limit in vhost '{vhost}' ({limit}) is reached",
    ),
    "shutdown": (Code.CONNECTION_FORCED, "broker forced connection closure with reason 'shutdown'"),
    "forced": (Code.CONNECTION_FORCED, "{reason}"),
    "frame_too_large": (
        Code.FRAME_ERROR,
        "type {frame_type}, all octets = <<>>: {{frame_too_large,{size},{limit}}}",
    ),
    "bad_frame_end": (
        Code.FRAME_ERROR,
        "type {frame_type}, all octets = <<{octets}>>: {{invalid_frame_end_marker,{marker}}}",
    ),
    "undecodable": (Code.FRAME_ERROR, "cannot decode <<{octets}>>"),
    "unknown_frame_type": (Code.FRAME_ERROR, "type {frame_type}, all octets = <<>>: unknown_frame"),
    "bad_payload": (Code.FRAME_ERROR, "cannot decode {what}"),
    "syntax": (Code.SYNTAX_ERROR, "{detail}"),
    "unknown_method": (Code.COMMAND_INVALID, "unknown method id {class_id}/{method_id}"),
    "command_invalid": (Code.COMMAND_INVALID, "{detail}"),
    "channel_max": (
        Code.NOT_ALLOWED,
        "number of channels opened ({count}) has reached the negotiated channel_max ({max})",
    ),
    "channel_not_open": (Code.CHANNEL_ERROR, "expected 'channel.open'"),
    "channel_reopen": (Code.CHANNEL_ERROR, "second 'channel.open' seen"),
    "channel_zero": (Code.CHANNEL_ERROR, "unexpected method in connection state {state}"),
    "unexpected_frame": (
        Code.UNEXPECTED_FRAME,
        "expected {expected}, got non {kind} frame instead",
    ),
    "heartbeat_channel": (Code.UNEXPECTED_FRAME, "type 8, all octets = <<>>"),
    "unexpected_method": (Code.UNEXPECTED_FRAME, "{detail}"),
    "not_implemented": (Code.NOT_IMPLEMENTED, "{detail}"),
    "heartbeat_missed": (
        Code.CONNECTION_FORCED,
        "missed heartbeats from client, timeout: {timeout}s",
    ),
    # exchanges (rabbit_exchange.erl, rabbit_channel.erl)
    "no_exchange": (Code.NOT_FOUND, "no exchange '{name}' in vhost '{vhost}'"),
    "exchange_reserved": (
        Code.ACCESS_REFUSED,
        "exchange name '{name}' contains reserved prefix 'amq.*'",
    ),
    "exchange_type": (Code.COMMAND_INVALID, "unknown exchange type '{type}'"),
    "exchange_inequivalent": (
        Code.PRECONDITION_FAILED,
        "inequivalent arg '{arg}' for exchange '{name}' in vhost '{vhost}': "
        "received {received} but current is {current}",
    ),
    "exchange_in_use": (Code.PRECONDITION_FAILED, "exchange '{name}' in vhost '{vhost}' in use"),
    "exchange_internal": (
        Code.ACCESS_REFUSED,
        "cannot publish to internal exchange '{name}' in vhost '{vhost}'",
    ),
    "default_exchange_op": (
        Code.ACCESS_REFUSED,
        "operation not permitted on the default exchange",
    ),
    # queues (rabbit_amqqueue.erl, rabbit_channel.erl)
    "no_queue": (Code.NOT_FOUND, "no queue '{name}' in vhost '{vhost}'"),
    "no_previous_queue": (Code.NOT_FOUND, "no previously declared queue"),
    "queue_reserved": (
        Code.ACCESS_REFUSED,
        "queue name '{name}' contains reserved prefix 'amq.*'",
    ),
    "queue_inequivalent": (
        Code.PRECONDITION_FAILED,
        "inequivalent arg '{arg}' for queue '{name}' in vhost '{vhost}': "
        "received {received} but current is {current}",
    ),
    "queue_locked": (
        Code.RESOURCE_LOCKED,
        "cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'. "
        "It could be originally declared on another connection or the exclusive property "
        "value does not match that of the original declaration.",
    ),
    "queue_in_use": (Code.PRECONDITION_FAILED, "queue '{name}' in vhost '{vhost}' in use"),
    "queue_not_empty": (Code.PRECONDITION_FAILED, "queue '{name}' in vhost '{vhost}' not empty"),
    "queue_arg_invalid": (
        Code.PRECONDITION_FAILED,
        "invalid arg '{arg}' for queue '{name}' in vhost '{vhost}': {why}",
    ),
    "home_node_down": (
        Code.NOT_FOUND,
        "home node '{node}' of durable queue '{name}' in vhost '{vhost}' is down or inaccessible",
    ),
    # basic (rabbit_channel.erl)
    "unknown_delivery_tag": (Code.PRECONDITION_FAILED, "unknown delivery tag {tag}"),
    "consumer_tag_reused": (Code.NOT_ALLOWED, "attempt to reuse consumer tag '{tag}'"),
    "exclusive_consumer": (
        Code.ACCESS_REFUSED,
        "queue '{name}' in vhost '{vhost}' in exclusive use",
    ),
    "user_id_mismatch": (
        Code.PRECONDITION_FAILED,
        "user_id property set to '{claimed}' but authenticated user was '{user}'",
    ),
    "immediate": (Code.NOT_IMPLEMENTED, "immediate=true"),
    "prefetch_size": (Code.NOT_IMPLEMENTED, "prefetch_size!=0 ({size})"),
    "flow_inactive": (Code.NOT_IMPLEMENTED, "active=false"),
    "no_route": (Code.NO_ROUTE, ""),
    "ack_timeout": (
        Code.PRECONDITION_FAILED,
        "delivery acknowledgement on channel {channel} timed out. Timeout value used: {ms} ms. "
        "This timeout value can be configured, see consumers doc guide to learn more",
    ),
    # confirms and tx
    "tx_to_confirm": (Code.PRECONDITION_FAILED, "cannot switch from tx to confirm mode"),
    "confirm_to_tx": (Code.PRECONDITION_FAILED, "cannot switch from confirm to tx mode"),
    "not_transactional": (Code.PRECONDITION_FAILED, "channel is not transactional"),
    # permissions (rabbit_access_control.erl)
    "resource_refused": (
        Code.ACCESS_REFUSED,
        "access to {kind} '{name}' in vhost '{vhost}' refused for user '{user}'",
    ),
    # alternate exchanges (rabbit_channel exchange.declare, rabbit_misc:assert_args_equivalence)
    "exchange_arg_type": (
        Code.PRECONDITION_FAILED,
        "invalid type '{type}' for arg '{arg}' in exchange '{name}' in vhost '{vhost}'",
    ),
    # direct reply-to (rabbit_channel basic.consume / basic.publish / deliver_reply)
    "reply_consumer_acks": (Code.PRECONDITION_FAILED, "reply consumer cannot acknowledge"),
    "reply_consumer_set": (Code.PRECONDITION_FAILED, "reply consumer already set"),
    "fast_reply_missing": (Code.PRECONDITION_FAILED, "fast reply consumer does not exist"),
    # a RabbitMQ channel process that crashed: rabbit_reader closes the connection
    "channel_crashed": (Code.INTERNAL_ERROR, ""),
}


def reply_text(key: str, **fields: object) -> tuple[Code, str]:
    """Return ``(code, "NAME - text")`` for the table entry ``key``."""
    code, template = TEXTS[key]
    detail = template.format(**fields)
    return code, f"{code.name} - {detail}" if detail else code.name


def is_hard(code: int) -> bool:
    """True when ``code`` closes the connection rather than the channel."""
    return code in HARD_ERRORS
