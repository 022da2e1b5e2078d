"""FrameReader's whole-content path: a publish (or delivery) whose header and single body
frame are already buffered comes out as one frame; everything else frame by frame."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands as C

from broker_sim.framing import (
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_METHOD,
    FrameReader,
    content_frames,
    frame,
    header_payload,
    method_frame,
)

PROPS = C.Basic.Properties(content_type="text/plain", message_id="m1", delivery_mode=2)


def publish_bytes(body: bytes, key: str = "q", frame_max: int = 131072) -> bytes:
    return method_frame(1, C.Basic.Publish(exchange="", routing_key=key)) + content_frames(
        1, header_payload(PROPS, len(body)), body, frame_max
    )


def read(data: bytes, chunks: list[int] | None = None) -> list:
    reader = FrameReader(131072, whole_content=C.Basic.Publish)
    frames, pos = [], 0
    for size in chunks or [len(data)]:
        reader.feed(data[pos : pos + size])
        pos += size
        frames += list(reader.frames())
    reader.feed(data[pos:])
    return frames + list(reader.frames())


def test_a_buffered_publish_with_its_content_is_one_frame():
    (only,) = read(publish_bytes(b"hello"))
    assert only.kind == FRAME_METHOD and only.method.routing_key == "q"
    assert only.body == b"hello" and only.body_size == 5
    assert only.properties.message_id == "m1" and only.payload == header_payload(PROPS, 5)


def test_content_split_over_body_frames_or_feeds_goes_frame_by_frame():
    split_body = read(publish_bytes(b"x" * 100, frame_max=64))
    assert [f.kind for f in split_body] == [FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_BODY]
    partial = read(publish_bytes(b"hello"), chunks=[20])
    assert [f.kind for f in partial] == [FRAME_METHOD, FRAME_HEADER, FRAME_BODY]
    assert partial[0].body is None


def test_an_empty_body_or_a_foreign_class_header_goes_frame_by_frame():
    empty = method_frame(1, C.Basic.Publish(routing_key="q")) + frame(
        FRAME_HEADER, 1, header_payload(PROPS, 0)
    )
    assert [f.kind for f in read(empty)] == [FRAME_METHOD, FRAME_HEADER]
    foreign = bytearray(publish_bytes(b"hello"))
    method_len = len(method_frame(1, C.Basic.Publish(routing_key="q")))
    foreign[method_len + 7 : method_len + 9] = (50).to_bytes(2, "big")  # class 50 header
    assert [f.kind for f in read(bytes(foreign))] == [FRAME_METHOD, FRAME_HEADER, FRAME_BODY]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6),
    st.lists(st.integers(1, 97), max_size=30),
)
def test_any_chunking_gives_the_same_messages(bodies, chunks):
    data = b"".join(publish_bytes(b, key=f"k{i}") for i, b in enumerate(bodies))

    def messages(frames):
        out, current = [], None
        for f in frames:
            if f.kind == FRAME_METHOD:
                if f.body is not None:
                    out.append((f.method.routing_key, f.body, f.properties.message_id))
                else:
                    current = [f.method.routing_key, b"", None]
            elif f.kind == FRAME_HEADER:
                current[2] = f.properties.message_id
            else:
                current[1] += f.payload
                out.append(tuple(current))
        return out

    whole = messages(read(data))
    assert whole == [(f"k{i}", b, "m1") for i, b in enumerate(bodies)]
    assert messages(read(data, chunks)) == whole
