"""Serialization (json, text, raw bytes) and received messages (kombu.serialization,
kombu.message).

A :class:`Message` remembers the channel *generation* it was delivered on: after a
reconnect its delivery tag means nothing to the new channel, so ack/reject on a stale
message is a no-op (kombu sends it and the broker closes the channel with 406
PRECONDITION_FAILED "unknown delivery tag").
"""

from __future__ import annotations

import bz2
import json
import lzma
import zlib
from typing import Any

from broker_sim.properties import as_dict as properties_dict
from client.errors import ContentDisallowed, DecodeError, EncodeError

CONTENT_TYPES = {"json": "application/json", "text": "text/plain", "raw": "application/data"}

#: kombu.compression's names -> (the ``compression`` header, compress, decompress)
COMPRESSIONS = {
    "zlib": ("application/x-gzip", zlib.compress, zlib.decompress),
    "bzip2": ("application/x-bz2", bz2.compress, bz2.decompress),
    "lzma": ("application/x-lzma", lzma.compress, lzma.decompress),
}
COMPRESSIONS["gzip"] = COMPRESSIONS["zlib"]  # kombu's aliases
COMPRESSIONS["xz"] = COMPRESSIONS["lzma"]
_DECOMPRESS = {header: undo for header, _, undo in COMPRESSIONS.values()}


def compress(payload: bytes, method: str) -> tuple[bytes, str]:
    """``(compressed payload, compression header)`` as kombu.compression.compress."""
    try:
        header, fn, _ = COMPRESSIONS[method]
    except KeyError:
        raise EncodeError(
            f"unknown compression {method!r} ({', '.join(sorted(COMPRESSIONS))})"
        ) from None
    return fn(payload), header


def decompress(payload: bytes, header: str) -> bytes:
    try:
        return _DECOMPRESS[header](payload)
    except KeyError:
        raise DecodeError(f"unknown compression {header!r}") from None
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise DecodeError(f"cannot decompress a {header} body: {exc}") from exc


def dumps(body: Any, serializer: str | None) -> tuple[bytes, str, str]:
    """``(payload, content_type, content_encoding)`` for ``body`` (kombu.serialization)."""
    if isinstance(body, bytes) and serializer in (None, "raw"):
        return body, "application/data", "binary"
    if serializer in (None, "json"):
        try:
            return json.dumps(body).encode(), "application/json", "utf-8"
        except (TypeError, ValueError) as exc:
            raise EncodeError(f"cannot serialize {type(body).__name__} as json: {exc}") from exc
    if serializer == "text":
        return str(body).encode(), "text/plain", "utf-8"
    raise EncodeError(f"unknown serializer {serializer!r} (json, text or raw)")


def loads(payload: bytes, content_type: str | None, accept: set[str] | None) -> Any:
    content_type = content_type or "application/data"
    if accept is not None and content_type not in accept:
        raise ContentDisallowed(
            f"refusing to deserialize content of type {content_type} "
            f"(accepted: {', '.join(sorted(accept))})"
        )
    try:
        if content_type == "application/json":
            return json.loads(payload)
        if content_type.startswith("text/"):
            return payload.decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"cannot decode {content_type} body: {exc}") from exc
    return payload


def accept_content_types(accept) -> set[str] | None:
    """kombu accepts names ('json') or content types ('application/json')."""
    if accept is None:
        return None
    return {CONTENT_TYPES.get(item, item) for item in accept}


class Message:
    def __init__(self, channel, event, accept: set[str] | None = None) -> None:
        method, props = event.method, event.properties
        self.channel = channel
        self.generation = channel.generation
        self.delivery_tag = method.delivery_tag
        self.redelivered = getattr(method, "redelivered", False)
        self.delivery_info = {
            "exchange": method.exchange,
            "routing_key": method.routing_key,
            "consumer_tag": getattr(method, "consumer_tag", None),
            "redelivered": self.redelivered,
            "delivery_tag": method.delivery_tag,
        }
        self.properties = properties_dict(props)
        self.headers = dict(props.headers or {})
        self.content_type = props.content_type
        self.content_encoding = props.content_encoding
        self.body = event.body
        self.accept = accept
        self.acknowledged = False
        self._decoded: Any = None

    @property
    def payload(self) -> Any:
        if self._decoded is None:
            body = self.body
            if "compression" in self.headers:
                body = decompress(body, self.headers["compression"])
            self._decoded = loads(body, self.content_type, self.accept)
        return self._decoded

    def decode(self) -> Any:
        return self.payload

    @property
    def stale(self) -> bool:
        """Delivered on a channel that has since been recovered on a new connection."""
        return self.generation != self.channel.generation

    def _settle(self, kind: str, fn, *args) -> None:
        if self.acknowledged:
            raise RuntimeError(f"message {self.delivery_tag} was already acknowledged")
        self.acknowledged = True
        stale = self.stale
        self.channel.connection.runtime.record(
            kind, id=self.properties.get("message_id"), tag=self.delivery_tag, stale=stale
        )
        if not stale:
            fn(self.delivery_tag, *args)

    def ack(self, multiple: bool = False) -> None:
        self._settle("ack", self.channel.basic_ack, multiple)

    def reject(self, requeue: bool = False) -> None:
        self._settle("requeue" if requeue else "reject", self.channel.basic_reject, requeue)

    def requeue(self) -> None:
        self.reject(requeue=True)

    def __repr__(self) -> str:
        return f"<Message delivery_tag={self.delivery_tag} stale={self.stale}>"
