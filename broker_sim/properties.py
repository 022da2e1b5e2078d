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


def decode(flags: int, data: bytes) -> Properties | None:
    """Properties from a content header's property list (after the flag word)."""
    if flags & 0x0003:  # continuation or reserved bits: pamqp's generic path
        return None
    props = Properties.__new__(Properties)
    pos = 0
    for name, bit, kind in _FIELDS:
        if not flags & bit:
            setattr(props, name, "" if name == "cluster_id" else None)  # pamqp's defaults
        elif kind == "shortstr":
            n = data[pos]
            end = pos + 1 + n
            if end > len(data):
                raise ValueError(f"property {name} runs past the header")
            setattr(props, name, data[pos + 1 : end].decode())
            pos = end
        elif kind == "octet":
            setattr(props, name, data[pos])
            pos += 1
        else:
            used, value = pdecode.by_type(data[pos:], kind)
            setattr(props, name, value)
            pos += used
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
