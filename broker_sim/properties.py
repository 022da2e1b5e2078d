"""basic properties of a content header (AMQP 0-9-1 spec 4.2.6.1, class basic 1.8), by hand.

Every published and delivered message carries a content header; decoding and encoding its
property list through pamqp's generic attribute loop is the codec's largest per-message
cost. This module walks the same 14 properties in spec order with fixed-size fields done
inline, and leaves the field table (``headers``) and ``timestamp`` to pamqp's own decoders,
so values come out exactly as pamqp gives them (``commands.Basic.Properties``). Flag words
with the continuation bit are left to pamqp (:func:`decode` returns None).
"""

from __future__ import annotations

import struct

from pamqp import commands
from pamqp import decode as pdecode
from pamqp import encode as pencode

Properties = commands.Basic.Properties
_SLOTS = tuple(Properties.__slots__)
#: (slot, flag bit, kind): kind is "s" shortstr, "o" octet, "t" table, "ts" timestamp
_FIELDS = tuple((name, Properties.flags[name], getattr(Properties, "_" + name)) for name in _SLOTS)
_FLAGS = struct.Struct(">H")


class LeanProperties(Properties):
    """``Basic.Properties`` as Warren builds and decodes them on the hot path: absent
    properties read as pamqp's defaults from the class, present ones are set with one
    ``__dict__`` update instead of 14 slot writes and a validation pass."""


for _name in _SLOTS:  # class defaults shadow the slots: unset attributes read as None
    setattr(LeanProperties, _name, None)
LeanProperties.cluster_id = ""


_NAMES = frozenset(_SLOTS)


def build(**values) -> LeanProperties:
    """Properties from keyword values (None means absent), as ``Basic.Properties(...)``."""
    unknown = values.keys() - _NAMES
    if unknown:
        raise TypeError(f"unknown message properties: {', '.join(sorted(unknown))}")
    if values.get("cluster_id"):
        raise ValueError("cluster_id must be empty")  # as pamqp's validate
    props = LeanProperties.__new__(LeanProperties)
    props.__dict__.update({k: v for k, v in values.items() if v is not None})
    return props


def as_dict(props: Properties) -> dict:
    """The properties that are set, by name (kombu's ``message.properties``)."""
    if type(props) is LeanProperties:
        return {k: v for k, v in props.__dict__.items() if v is not None}
    return {k: getattr(props, k) for k in _SLOTS if getattr(props, k) is not None}


def decode(flags: int, data: bytes) -> Properties | None:
    """Properties from a content header's property list (after the flag word)."""
    if flags & 0x0003:  # continuation or reserved bits: pamqp's generic path
        return None
    values = {}
    pos, size = 0, len(data)
    for name, bit, kind in _FIELDS:
        if not flags & bit:
            continue
        if kind == "shortstr":
            end = pos + 1 + data[pos]
            if end > size:
                raise ValueError(f"property {name} runs past the header")
            values[name] = data[pos + 1 : end].decode()
            pos = end
        elif kind == "octet":
            values[name] = data[pos]
            pos += 1
        else:
            used, values[name] = pdecode.by_type(data[pos:], kind)
            pos += used
    props = LeanProperties.__new__(LeanProperties)
    props.__dict__.update(values)
    return props


def encode(props: Properties) -> bytes:
    """The flag word and property list of ``props`` (what pamqp's marshal gives)."""
    flags = 0
    parts = []
    for name, bit, kind in _FIELDS:
        value = getattr(props, name)
        if value is None or value == "":
            continue
        flags |= bit
        if kind == "shortstr":
            raw = value.encode()
            if len(raw) > 255:
                raise ValueError(f"property {name} is longer than 255 bytes")
            parts.append(bytes((len(raw),)) + raw)
        elif kind == "octet":
            parts.append(bytes((value,)))
        elif kind == "table":
            parts.append(pencode.field_table(value))
        else:
            parts.append(pencode.by_type(value, kind))
    return _FLAGS.pack(flags) + b"".join(parts)
