"""Direct reply-to: the ``amq.rabbitmq.reply-to`` pseudo-queue (RabbitMQ docs "Direct
Reply-to"; rabbit_channel.erl and rabbit_direct_reply_to.erl, RabbitMQ 3.13).

Theory of operation. There is no queue. A channel consuming ``amq.rabbitmq.reply-to``
(no-ack only) holds one :class:`ReplyConsumer`: its tag, a random key and the suffix that
names it. A publish from that channel whose ``reply_to`` property is the bare pseudo-queue
name has it rewritten to ``amq.rabbitmq.reply-to.<suffix>``; a publish to the default
exchange with that name as routing key goes straight to the consuming channel, or nowhere.

The suffix is RabbitMQ's v2 encoding: ``base64(pid) "." base64(16 random bytes)``, the pid
being an Erlang ``NEW_PID_EXT`` term whose node is ``reply@<hash of the node name>``; here
the pid's id is the connection's number on its node and its serial the channel number.
Decoding follows rabbit_channel:deliver_reply and declare_fast_reply_to: the hash must name
a node the publisher's node sees running, else the v1 decoding (``base64(term) "." key``)
is tried; a name neither decoding accepts is no reply queue (the reply is dropped,
queue.declare answers 404); a v1-shaped name whose first part is not a pid term crashes
RabbitMQ's channel, which closes the connection with 541 INTERNAL_ERROR (checked against
RabbitMQ 3.10; 3.13 decodes the same way).

Faithful quirks, checked against RabbitMQ 3.10 and read in 3.13's rabbit_channel:

* a reply goes out with the channel's *next* delivery tag, which it does not consume;
* a mandatory reply is returned (312 NO_ROUTE) even when it was delivered, because no queue
  received it; a reply routed through any other exchange reaches nobody;
* replies are delivered when published, also inside a transaction (before commit);
* queue.declare of any ``amq.rabbitmq.reply-to...`` name is passive whatever its flags:
  the bare name always exists (0 messages, 1 consumer), a suffixed one while its channel
  consumes; declaring one's own suffixed name crashes the channel (541: the channel calls
  itself).

Across faults: a reply to a channel that is closed, whose connection is gone, whose node is
down or on the other side of a partition is dropped silently (there is no queue to hold it).
One ordering differs: RabbitMQ casts a reply to the consuming channel, so a reply a channel
sends to itself arrives after that publish's return and confirm; here it arrives at once.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from dataclasses import dataclass

from pamqp import commands as C

from broker_sim.errors import AMQPError
from broker_sim.framing import deliver_method_frame

REPLY_TO = "amq.rabbitmq.reply-to"
PREFIX = REPLY_TO + "."
_PID_EXT = 88  # NEW_PID_EXT
#: atom tags (ATOM_UTF8_EXT, SMALL_ATOM_UTF8_EXT, ATOM_EXT, SMALL_ATOM_EXT): length format
_ATOM_EXTS = {118: ">H", 119: ">B", 100: ">H", 115: ">B"}
_CREATION = 1


@dataclass(slots=True)
class ReplyConsumer:
    tag: str
    suffix: str
    key: str


class _DeclareOk(C.Queue.DeclareOk):
    """queue.declare-ok for a suffixed reply queue: its base64 name holds ``+/=``, which
    RabbitMQ sends and pamqp's queue-name pattern refuses."""

    def validate(self) -> None:
        pass


def is_reply_queue(name: str) -> bool:
    """rabbit_exchange:virtual_reply_queue: a default-exchange key naming a reply channel."""
    return name.startswith(PREFIX)


# -- the consuming side -------------------------------------------------------------------


def consume(ch, m: C.Basic.Consume) -> None:
    """basic.consume on the pseudo-queue: no-ack only, one per channel; the tag must not be
    a regular consumer's, but is not one itself (rabbit_channel handle_method basic.consume)."""
    if m.consumer_tag and m.consumer_tag in ch.consumers:
        raise AMQPError.of("consumer_tag_reused", tag=m.consumer_tag)
    if not m.no_ack:
        raise AMQPError.of("reply_consumer_acks")
    if ch.reply_consumer is not None:
        raise AMQPError.of("reply_consumer_set")
    node = ch.conn.node
    tag = m.consumer_tag or node.generate_name("amq.ctag-")
    key = base64.b64encode(node.cluster.rng.getrandbits(128).to_bytes(16, "big")).decode()
    pid = _encode_pid(f"reply@{node_hash(node.name)}", ch.conn.id, ch.number)
    ch.reply_consumer = ReplyConsumer(tag, f"{base64.b64encode(pid).decode()}.{key}", key)
    if not m.nowait:
        ch.send(C.Basic.ConsumeOk(consumer_tag=tag))


def cancel(ch, m: C.Basic.Cancel) -> bool:
    """basic.cancel of the reply consumer; False when ``m`` names another consumer."""
    rc = ch.reply_consumer
    if rc is None or rc.tag != m.consumer_tag:
        return False
    ch.reply_consumer = None
    if not m.nowait:
        ch.send(C.Basic.CancelOk(consumer_tag=m.consumer_tag))
    return True


def rewrite(ch, props):
    """rabbit_channel:maybe_set_fast_reply_to: ``reply_to = amq.rabbitmq.reply-to`` names
    this channel's reply consumer; without one the publish is 406."""
    if props.reply_to != REPLY_TO:
        return props
    rc = ch.reply_consumer
    if rc is None:
        raise AMQPError.of("fast_reply_missing")
    fields = {k: getattr(props, k) for k in props.attributes()}
    fields["reply_to"] = PREFIX + rc.suffix
    return C.Basic.Properties(**fields)


# -- the replying side --------------------------------------------------------------------


def deliver(ch, message) -> None:
    """rabbit_channel:deliver_reply: a default-exchange publish to a reply queue name goes
    to the consuming channel as basic.deliver, if that channel still consumes."""
    target = _resolve(ch, message.routing_key[len(PREFIX) :])
    if target is None:
        return
    dest, key = target
    rc = dest.reply_consumer
    if rc is None or rc.key != key:
        return
    frame = deliver_method_frame(
        dest.number, rc.tag, dest.next_tag, False, message.exchange, message.routing_key
    )
    dest.conn.send_content(dest.number, message, frame)


def declare(ch, m: C.Queue.Declare) -> None:
    """queue.declare of ``amq.rabbitmq.reply-to[.suffix]``, passive in effect
    (rabbit_channel declare_fast_reply_to)."""
    name = m.queue
    if name != REPLY_TO:
        target = _resolve(ch, name[len(PREFIX) :]) if is_reply_queue(name) else None
        if target is not None and target[0] is ch:
            _crash(ch)  # gen_server2:call to itself
        rc = target[0].reply_consumer if target is not None else None
        if rc is None or rc.key != target[1]:
            raise AMQPError.of("no_queue", name=name, vhost=ch.vhost.name)
    ch.last_queue = name
    if not m.nowait:
        ch.send(_DeclareOk(name, 0, 1))


# -- rabbit_direct_reply_to's encodings ---------------------------------------------------


def node_hash(node_name: str) -> int:
    """Stands for erlang:phash2(Node) (27 bits): a fixed number per node name."""
    return zlib.crc32(node_name.encode()) & 0x7FFFFFF


def _encode_pid(node: str, conn_id: int, channel: int) -> bytes:
    raw = node.encode()
    return (
        bytes([131, _PID_EXT, 118])
        + struct.pack(">H", len(raw))
        + raw
        + struct.pack(">III", conn_id & 0xFFFFFFFF, channel, _CREATION)
    )


def _decode_pid(data: bytes) -> tuple[str, int, int] | None:
    """(node, id, serial) of a NEW_PID_EXT or PID_EXT term, or None."""
    if len(data) < 4 or data[0] != 131 or data[1] not in (_PID_EXT, 103):
        return None
    fmt = _ATOM_EXTS.get(data[2])
    if fmt is None:
        return None
    at = 3 + struct.calcsize(fmt)
    if len(data) < at:
        return None
    (size,) = struct.unpack_from(fmt, data, 3)
    node_bytes, rest = data[at : at + size], data[at + size :]
    if len(node_bytes) != size or len(rest) != (12 if data[1] == _PID_EXT else 9):
        return None
    try:
        node = node_bytes.decode("utf-8" if data[2] in (118, 119) else "latin-1")
    except UnicodeDecodeError:
        return None
    pid_id, serial = struct.unpack_from(">II", rest)
    return node, pid_id, serial


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _resolve(ch, suffix: str):
    """(channel, key) that ``suffix`` names, seen from ``ch``'s node, or None (v2, then v1
    decoding, as rabbit_channel:deliver_reply)."""
    cluster = ch.conn.node.cluster
    here = ch.conn.node.name
    pid_part, dot, key = suffix.partition(".")
    pid = _decode_pid(_b64(pid_part) or b"") if dot else None
    if pid is not None and pid[0].startswith("reply@"):
        wanted = pid[0][len("reply@") :]
        for name in cluster.nodes:
            if str(node_hash(name)) == wanted and cluster.reachable(here, name):
                return _channel(cluster.nodes[name], pid[1], pid[2], key)
    # v1: string:lexemes(Bin, ".") must give [PidEnc, Key], PidEnc a pid term
    parts = [p for p in suffix.split(".") if p]
    if len(parts) != 2:
        return None
    pid = _decode_pid(_b64(parts[0]) or b"")
    if pid is None:
        _crash(ch)  # binary_to_term(base64:decode(..)) fails
    if pid[0] in cluster.nodes and cluster.reachable(here, pid[0]):
        return _channel(cluster.nodes[pid[0]], pid[1], pid[2], parts[1])
    return None


def _crash(ch) -> None:
    """RabbitMQ's channel process died of an exit that is no AMQP error: rabbit_reader
    closes the connection with 541 INTERNAL_ERROR naming no method (class and method 0)."""
    err = AMQPError.of("channel_crashed")
    ch.conn.hard_error(err)  # the connection's own handler would name the current method
    raise err  # stop this method; the connection is already closing


def _channel(node, conn_id: int, number: int, key: str):
    conn = node.connections.get(conn_id)
    dest = conn.channels.get(number) if conn is not None else None
    if dest is None or dest.closing or number in conn.closing_channels:
        return None  # RabbitMQ: no such channel process (or it is closing)
    return dest, key
