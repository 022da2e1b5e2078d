"""AMQP 0-9-1 framing (spec section 2.3.5 and 4.2.3), sans-IO.

:class:`FrameReader` splits a byte stream into frames and decodes them with pamqp.
Malformed input raises :class:`~broker_sim.errors.AMQPError` with the FRAME_ERROR /
SYNTAX_ERROR / COMMAND_INVALID reply RabbitMQ gives (rabbit_reader:handle_frame,
rabbit_binary_parser). The writer helpers encode frames; ``deliver_frames`` is the hot path
for deliveries and re-uses the publisher's raw content-header payload, so message
properties leave the broker byte for byte as they arrived.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pamqp import commands, header
from pamqp.base import Frame as Method

from broker_sim import properties as basic_properties
from broker_sim.errors import AMQPError

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
FRAME_OVERHEAD = 8  # 7-byte header + frame-end octet
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

_HDR = struct.Struct(">BHI")
_METHOD_ID = struct.Struct(">I")
_CONTENT_HDR = struct.Struct(">HHQ")
_FLAG_WORD = struct.Struct(">H")


@dataclass(slots=True)
class InFrame:
    """One decoded frame: ``kind`` is FRAME_METHOD/HEADER/BODY/HEARTBEAT."""

    kind: int
    channel: int
    method: Method | None = None
    body_size: int = 0
    properties: commands.Basic.Properties | None = None
    payload: bytes = b""  # raw header payload (for HEADER) or body bytes (for BODY)
    body: bytes | None = None  # a method frame carrying its whole content (see FrameReader)


class FrameReader:
    """Incremental frame splitter; ``frame_max`` is enforced as RabbitMQ does.

    ``whole_content`` names one content-carrying method with a hand-written decoder
    (basic.publish for the broker, basic.deliver for the client): when such a method frame,
    a class-60 content header and one body frame holding the whole body are all in the
    buffer, they come out as one method frame with ``properties``, ``payload`` (the raw
    header) and ``body`` set. Anything else (content split over several body frames, an
    empty body, a header that does not decode) goes frame by frame, so errors come out
    exactly as before.
    """

    def __init__(self, frame_max: int, whole_content: type | None = None) -> None:
        self.frame_max = frame_max
        self._buf = bytearray()
        self._whole = _METHOD_ID.pack(whole_content.index) if whole_content else None
        self._whole_decoder = _HAND_DECODED[whole_content.index] if whole_content else None

    def feed(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> Iterator[InFrame]:
        """Yield complete frames; raise AMQPError on the first malformed one."""
        buf = self._buf
        pos = 0
        try:
            while len(buf) - pos >= 7:
                kind, channel, size = _HDR.unpack_from(buf, pos)
                if kind not in _DECODERS:
                    raise AMQPError.of("unknown_frame_type", frame_type=kind)
                if self.frame_max and size > self.frame_max:  # ?FRAME_SIZE_FUDGE = 8
                    raise AMQPError.of(
                        "frame_too_large",
                        frame_type=kind,
                        size=size,
                        limit=self.frame_max - FRAME_OVERHEAD,
                    )
                end = pos + 7 + size
                if len(buf) <= end:
                    break
                if buf[end] != FRAME_END:
                    raise AMQPError.of(
                        "bad_frame_end",
                        frame_type=kind,
                        marker=buf[end],
                        octets=erlang_octets(buf[pos + 7 : end]),
                    )
                if kind == FRAME_METHOD and buf[pos + 7 : pos + 11] == self._whole:
                    whole = self._with_content(buf, pos + 7, end, channel)
                    if whole is not None:
                        frame, pos = whole
                        yield frame
                        continue
                payload = bytes(buf[pos + 7 : end])
                pos = end + 1
                yield _DECODERS[kind](channel, payload)
        finally:
            del buf[:pos]

    def _with_content(self, buf: bytearray, start: int, end: int, channel: int):
        """(method frame with its content, position after the body frame) or None."""
        hpos = end + 1
        if len(buf) - hpos < 7:
            return None
        kind, hchannel, hsize = _HDR.unpack_from(buf, hpos)
        hend = hpos + 7 + hsize
        limit = self.frame_max or None  # as the check above
        if kind != FRAME_HEADER or hchannel != channel or hsize < 14 or len(buf) <= hend:
            return None
        if (limit is not None and hsize > limit) or buf[hend] != FRAME_END:
            return None
        bpos = hend + 1
        if len(buf) - bpos < 7:
            return None
        kind, bchannel, bsize = _HDR.unpack_from(buf, bpos)
        bend = bpos + 7 + bsize
        if kind != FRAME_BODY or bchannel != channel or len(buf) <= bend:
            return None
        if (limit is not None and bsize > limit) or buf[bend] != FRAME_END:
            return None
        header = bytes(buf[hpos + 7 : hend])
        class_id, _weight, body_size = _CONTENT_HDR.unpack_from(header)
        if class_id != 60 or body_size != bsize or bsize == 0:
            return None
        try:
            method = self._whole_decoder(bytes(buf[start:end]))
            properties = _header_properties(header)
        except (AMQPError, ValueError, IndexError, UnicodeDecodeError, struct.error):
            return None  # frame by frame, so the errors come out in their usual order
        frame = InFrame(FRAME_METHOD, channel, method, body_size, properties, header)
        frame.body = bytes(buf[bpos + 7 : bend])
        return frame, bend + 1

    @property
    def buffered(self) -> int:
        return len(self._buf)


class PublishMethod:
    """basic.publish decoded by hand (spec 1.8.3.7): the broker's hottest inbound method."""

    __slots__ = ("exchange", "routing_key", "mandatory", "immediate")
    index = commands.Basic.Publish.index
    name = commands.Basic.Publish.name

    def __init__(self, exchange: str, routing_key: str, mandatory: bool, immediate: bool):
        self.exchange = exchange
        self.routing_key = routing_key
        self.mandatory = mandatory
        self.immediate = immediate


_PUBLISH_INDEX = commands.Basic.Publish.index
_ACK_INDEX = commands.Basic.Ack.index
_DELIVER_ID = commands.Basic.Deliver.index
_ACK_BODY = struct.Struct(">QB")


def _decode_ack(payload: bytes) -> commands.Basic.Ack:
    """basic.ack (spec 1.8.3.13), the hottest inbound method of a consumer: decoded by hand."""
    tag, bits = _ACK_BODY.unpack_from(payload, 4)
    ack = commands.Basic.Ack.__new__(commands.Basic.Ack)
    ack.delivery_tag = tag
    ack.multiple = bool(bits & 1)
    return ack


def _decode_publish(payload: bytes) -> PublishMethod:
    pos = 6  # method id (4) + reserved ticket (2)
    n = payload[pos]
    exchange = payload[pos + 1 : pos + 1 + n].decode()
    pos += 1 + n
    n = payload[pos]
    routing_key = payload[pos + 1 : pos + 1 + n].decode()
    bits = payload[pos + 1 + n]
    return PublishMethod(exchange, routing_key, bool(bits & 1), bool(bits & 2))


_DELIVER_TAIL = struct.Struct(">QB")


def _decode_deliver(payload: bytes) -> commands.Basic.Deliver:
    """basic.deliver (spec 1.8.3.9), the hottest method a consumer receives: by hand."""
    n = payload[4]
    pos = 5 + n
    consumer_tag = payload[5:pos].decode()
    tag, bits = _DELIVER_TAIL.unpack_from(payload, pos)
    pos += 9
    n = payload[pos]
    exchange = payload[pos + 1 : pos + 1 + n].decode()
    pos += 1 + n
    n = payload[pos]
    if pos + 1 + n > len(payload):
        raise IndexError("routing key runs past the frame")
    deliver = commands.Basic.Deliver.__new__(commands.Basic.Deliver)
    deliver.consumer_tag, deliver.delivery_tag = consumer_tag, tag
    deliver.redelivered, deliver.exchange = bool(bits & 1), exchange
    deliver.routing_key = payload[pos + 1 : pos + 1 + n].decode()
    return deliver


_HAND_DECODED = {_PUBLISH_INDEX: _decode_publish, _DELIVER_ID: _decode_deliver}


def erlang_octets(data: bytes) -> str:
    """Bytes the way RabbitMQ prints a binary in its errors: ``0,10,0,40``."""
    return ",".join(str(b) for b in data)


def _undecodable(payload: bytes, index: int) -> AMQPError:
    """rabbit_binary_parser: arguments that do not parse are a FRAME_ERROR naming them."""
    err = AMQPError.of("undecodable", octets=erlang_octets(payload[4:]))
    err.class_id, err.method_id = index >> 16, index & 0xFFFF
    return err


def _decode_method(channel: int, payload: bytes) -> InFrame:
    if len(payload) < 4:
        raise AMQPError.of("syntax", detail="method frame too short")
    (index,) = _METHOD_ID.unpack_from(payload)
    if index == _ACK_INDEX and len(payload) == 13:
        return InFrame(FRAME_METHOD, channel, method=_decode_ack(payload))
    decoder = _HAND_DECODED.get(index)
    if decoder is not None:
        try:
            return InFrame(FRAME_METHOD, channel, method=decoder(payload))
        except (IndexError, UnicodeDecodeError, struct.error):
            raise _undecodable(payload, index) from None
    cls = commands.INDEX_MAPPING.get(index)
    if cls is None:
        raise AMQPError.of("unknown_method", class_id=index >> 16, method_id=index & 0xFFFF)
    method = cls()
    try:
        method.unmarshal(payload[4:])
    except Exception:  # pamqp raises struct.error/ValueError/UnicodeError/...
        raise _undecodable(payload, index) from None
    return InFrame(FRAME_METHOD, channel, method=method)


_last_header: list = [b"", None]  # (payload, properties): publishers repeat their headers


def _header_properties(payload: bytes) -> commands.Basic.Properties:
    """The properties of a content header payload; publishers repeat theirs, so the last
    one decoded is kept."""
    props_raw = payload[12:]
    if props_raw == _last_header[0]:
        return _last_header[1]  # decoded properties are never mutated
    properties = basic_properties.decode(_FLAG_WORD.unpack_from(payload, 12)[0], payload[14:])
    if properties is None:
        content = header.ContentHeader()
        content.unmarshal(payload)
        properties = content.properties
    _last_header[:] = [props_raw, properties]
    return properties


def _decode_header(channel: int, payload: bytes) -> InFrame:
    if len(payload) < 14:
        raise AMQPError.of("syntax", detail="content header frame too short")
    class_id, _weight, body_size = _CONTENT_HDR.unpack_from(payload)
    try:
        properties = _header_properties(payload)
    except Exception as exc:
        raise AMQPError.of("syntax", detail=f"cannot decode content header: {exc}") from None
    return InFrame(
        FRAME_HEADER,
        channel,
        body_size=body_size,
        properties=properties,
        payload=payload,
        method=None if class_id == 60 else _BAD_CLASS,
    )


def _decode_body(channel: int, payload: bytes) -> InFrame:
    return InFrame(FRAME_BODY, channel, payload=payload)


def _decode_heartbeat(channel: int, payload: bytes) -> InFrame:
    return InFrame(FRAME_HEARTBEAT, channel, payload=payload)


_BAD_CLASS = commands.Basic.Qos()  # marker: a content header for a class other than basic
_DECODERS = {
    FRAME_METHOD: _decode_method,
    FRAME_HEADER: _decode_header,
    FRAME_BODY: _decode_body,
    FRAME_HEARTBEAT: _decode_heartbeat,
}


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _HDR.pack(kind, channel, len(payload)) + payload + b"\xce"


def method_frame(channel: int, method: Method) -> bytes:
    """Encode one method frame; the per-message methods (basic.publish, basic.ack) by hand."""
    kind = type(method)
    if kind is _Publish:
        return publish_method_frame(
            channel, method.exchange, method.routing_key, method.mandatory, method.immediate
        )
    if kind is _Ack:
        payload = _ACK_HEAD + _ACK_BODY.pack(method.delivery_tag, 1 if method.multiple else 0)
    else:
        payload = _METHOD_ID.pack(method.index) + method.marshal()
    return frame(FRAME_METHOD, channel, payload)


def publish_method_frame(
    channel: int, exchange: str, routing_key: str, mandatory: bool = False, immediate: bool = False
) -> bytes:
    """Hand-encoded basic.publish (spec 1.8.3.7): every message a client sends."""
    payload = b"".join(
        (
            _PUBLISH_HEAD,
            _SHORTSTRS.get(exchange) or _shortstr(exchange),
            _SHORTSTRS.get(routing_key) or _shortstr(routing_key),
            bytes((bool(mandatory) | bool(immediate) << 1,)),
        )
    )
    return _HDR.pack(FRAME_METHOD, channel, len(payload)) + payload + b"\xce"


def header_payload(properties: commands.Basic.Properties, body_size: int) -> bytes:
    """Encode a content-header payload (spec 4.2.6.1): class 60, weight 0, size, properties."""
    return _CONTENT_HDR.pack(60, 0, body_size) + basic_properties.encode(properties)


def content_frames(channel: int, header_bytes: bytes, body: bytes, frame_max: int) -> bytes:
    """Header frame + body frames split to fit ``frame_max`` (spec 4.2.6.2)."""
    size = len(body)
    chunk = (frame_max - FRAME_OVERHEAD) if frame_max else size or 1
    head = _HDR.pack(FRAME_HEADER, channel, len(header_bytes)) + header_bytes + b"\xce"
    if 0 < size <= chunk:  # the common case: one body frame
        return head + _HDR.pack(FRAME_BODY, channel, size) + body + b"\xce"
    parts = [head]
    for start in range(0, size, chunk):
        parts.append(frame(FRAME_BODY, channel, body[start : start + chunk]))
    return b"".join(parts)


_SHORTSTRS: dict[str, bytes] = {}  # encoded names: tags, exchanges and keys repeat


def _shortstr(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(
            f"{value[:32]!r}... is {len(raw)} bytes: an AMQP short string holds at most 255"
        )
    encoded = bytes((len(raw),)) + raw
    if len(_SHORTSTRS) >= 4096:
        _SHORTSTRS.clear()
    _SHORTSTRS[value] = encoded
    return encoded


_DELIVER_INDEX = _METHOD_ID.pack(commands.Basic.Deliver.index)
_Publish, _Ack = commands.Basic.Publish, commands.Basic.Ack
_PUBLISH_HEAD = _METHOD_ID.pack(_PUBLISH_INDEX) + b"\x00\x00"  # + reserved ticket
_ACK_HEAD = _METHOD_ID.pack(_ACK_INDEX)
_U64 = struct.Struct(">Q")


def deliver_method_frame(
    channel: int, consumer_tag: str, tag: int, redelivered: bool, exchange: str, routing_key: str
) -> bytes:
    """Hand-encoded basic.deliver (spec 1.8.3.9): the broker's hottest frame."""
    payload = b"".join(
        (
            _DELIVER_INDEX,
            _SHORTSTRS.get(consumer_tag) or _shortstr(consumer_tag),
            _U64.pack(tag),
            b"\x01" if redelivered else b"\x00",
            _SHORTSTRS.get(exchange) or _shortstr(exchange),
            _SHORTSTRS.get(routing_key) or _shortstr(routing_key),
        )
    )
    return _HDR.pack(FRAME_METHOD, channel, len(payload)) + payload + b"\xce"
