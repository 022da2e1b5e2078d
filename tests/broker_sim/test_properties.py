"""The hand-written basic-properties codec gives exactly what pamqp gives, both ways."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands, header

from broker_sim import properties

shortstr = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)
maybe = st.none() | shortstr
table = st.dictionaries(
    st.text(min_size=1, max_size=10), st.integers(-(2**31), 2**31 - 1) | st.text(max_size=10)
)
props = st.builds(
    commands.Basic.Properties,
    content_type=maybe,
    content_encoding=maybe,
    headers=st.none() | table,
    delivery_mode=st.none() | st.sampled_from([1, 2]),
    priority=st.none() | st.integers(0, 9),
    correlation_id=maybe,
    reply_to=maybe,
    expiration=st.none() | st.integers(0, 10**6).map(str),
    message_id=maybe,
    timestamp=st.none()
    | st.integers(0, 2**32 - 1).map(lambda s: datetime.datetime.fromtimestamp(s, tz=datetime.UTC)),
    message_type=maybe,
    user_id=maybe,
    app_id=maybe,
)


@settings(max_examples=300, deadline=None)
@given(props)
def test_encode_and_decode_match_pamqp(p):
    reference = header.ContentHeader(0, 7, p).marshal()
    assert properties.encode(p) == reference[12:]
    decoded = properties.decode(int.from_bytes(reference[12:14], "big"), reference[14:])
    pamqp_side = header.ContentHeader()
    pamqp_side.unmarshal(reference)
    for name in commands.Basic.Properties.__slots__:
        assert getattr(decoded, name) == getattr(pamqp_side.properties, name), name


def test_a_property_running_past_the_header_is_an_error_naming_it():
    with pytest.raises(ValueError, match="message_id"):
        properties.decode(commands.Basic.Properties.flags["message_id"], b"\x20abc")


exchanges = st.from_regex(r"[A-Za-z0-9_.:\-]{0,60}", fullmatch=True)  # pamqp's rule
keys = st.text(max_size=60).filter(lambda s: len(s.encode()) <= 255)


@settings(max_examples=200, deadline=None)
@given(exchanges, keys, st.booleans(), st.booleans(), st.integers(0, 2**63 - 1))
def test_hand_encoded_publish_and_ack_frames_match_pamqp(exchange, key, mandatory, multiple, tag):
    from broker_sim import framing

    publish = commands.Basic.Publish(
        exchange=exchange, routing_key=key, mandatory=mandatory, immediate=multiple
    )
    ack = commands.Basic.Ack(tag, multiple)
    for method in (publish, ack):
        generic = framing.frame(1, 5, method.index.to_bytes(4, "big") + method.marshal())
        assert framing.method_frame(5, method) == generic


@settings(max_examples=200, deadline=None)
@given(keys, st.integers(0, 2**63 - 1), st.booleans(), exchanges, keys)
def test_hand_decoded_deliver_matches_pamqp(consumer_tag, tag, redelivered, exchange, key):
    from broker_sim import framing

    raw = framing.deliver_method_frame(3, consumer_tag, tag, redelivered, exchange, key)
    reader = framing.FrameReader(0)
    reader.feed(raw)
    (got,) = list(reader.frames())
    reference = commands.Basic.Deliver()
    reference.unmarshal(raw[11:-1])
    for name in ("consumer_tag", "delivery_tag", "redelivered", "exchange", "routing_key"):
        assert getattr(got.method, name) == getattr(reference, name), name


def test_built_properties_encode_like_pamqps_and_refuse_what_pamqp_refuses():
    values = {"content_type": "text/plain", "delivery_mode": 2, "message_id": "m1", "priority": 3}
    built = properties.build(**values, headers=None)
    assert properties.encode(built) == properties.encode(commands.Basic.Properties(**values))
    assert built == commands.Basic.Properties(**values)
    assert properties.as_dict(built) == values
    with pytest.raises(TypeError, match="mesage_id"):
        properties.build(mesage_id="typo")
    with pytest.raises(ValueError, match="cluster_id must be empty"):
        properties.build(cluster_id="x")
