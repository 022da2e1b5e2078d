"""The toxics as sans-IO transforms: timing, ordering, and seeded reproducibility."""

from __future__ import annotations

import random

import pytest

from broker_sim.toxics import CLOSE, DATA, RESET, TOXICS, Chain, Event, ToxicError


def chain_of(*toxics, seed: int = 1, now: float = 0.0) -> Chain:
    chain = Chain()
    rng = random.Random(seed)
    for toxic in toxics:
        chain.add(toxic.name or toxic.type, toxic.new_state(rng), now)
    return chain


def make(kind: str, name: str = "", toxicity: float = 1.0, **attributes):
    return TOXICS[kind](name=name or kind, toxicity=toxicity, attributes=attributes)


def test_latency_delays_preserves_order_and_stacks():
    chain = chain_of(make("latency", "a", latency=100), make("latency", "b", latency=50))
    out = chain.feed(Event(DATA, 1.0, b"x")) + chain.feed(Event(DATA, 1.01, b"y"))
    assert [(e.data, round(e.time, 3)) for e in out] == [(b"x", 1.15), (b"y", 1.16)]


def test_latency_jitter_follows_the_seed():
    def delays(seed):
        chain = chain_of(make("latency", latency=100, jitter=50), seed=seed)
        return [chain.feed(Event(DATA, float(i), b"x"))[0].time - i for i in range(20)]

    assert delays(3) == delays(3)
    assert delays(3) != delays(4)
    assert all(0.05 <= d <= 0.15 for d in delays(3))


def test_bandwidth_paces_bytes():
    chain = chain_of(make("bandwidth", rate=10))  # 10 KB/s = 10 bytes per ms
    out = chain.feed(Event(DATA, 0.0, b"x" * 5000))
    assert sum(len(e.data) for e in out) == 5000
    assert [len(e.data) for e in out] == [1000] * 5
    assert out[-1].time == pytest.approx(0.5)


def test_slicer_cuts_into_pieces_and_keeps_every_byte():
    chain = chain_of(make("slicer", average_size=10, size_variation=3, delay=100))
    data = bytes(range(200))
    out = chain.feed(Event(DATA, 0.0, data))
    assert b"".join(e.data for e in out) == data
    assert len(out) > 10 and all(len(e.data) <= 26 for e in out)
    assert out[1].time - out[0].time == pytest.approx(100e-6)


def test_limit_data_truncates_and_closes():
    chain = chain_of(make("limit_data", bytes=5))
    out = chain.feed(Event(DATA, 0.0, b"abc")) + chain.feed(Event(DATA, 0.0, b"defg"))
    assert [(e.kind, e.data) for e in out] == [(DATA, b"abc"), (DATA, b"de"), (CLOSE, b"")]
    assert chain.feed(Event(DATA, 0.0, b"more")) == []


def test_timeout_drops_data_and_closes_after_idle_time():
    chain = chain_of(make("timeout", timeout=1000), now=10.0)
    assert chain.feed(Event(DATA, 10.5, b"lost")) == []
    assert chain.deadline() == pytest.approx(11.5), "the idle clock restarts on input"
    assert [e.kind for e in chain.fire(11.5)] == [CLOSE]


def test_timeout_zero_never_closes_but_removal_does():
    chain = chain_of(make("timeout", timeout=0))
    assert chain.feed(Event(DATA, 0.0, b"x")) == [] and chain.deadline() is None
    assert [e.kind for e in chain.remove("timeout", 5.0)] == [CLOSE]


def test_reset_peer_and_slow_close():
    reset = chain_of(make("reset_peer", timeout=200))
    assert [(e.kind, e.time) for e in reset.feed(Event(DATA, 1.0, b"x"))] == [(RESET, 1.2)]
    slow = chain_of(make("slow_close", delay=300))
    assert slow.feed(Event(DATA, 0.0, b"x"))[0].time == 0.0
    assert [(e.kind, e.time) for e in slow.feed(Event(CLOSE, 1.0))] == [(CLOSE, 1.3)]


def test_toxicity_is_decided_per_connection_from_the_seed():
    decisions = []
    rng = random.Random(9)
    toxic = make("timeout", toxicity=0.5)
    for _ in range(200):
        chain = Chain()
        chain.add("t", toxic.new_state(rng), 0.0)
        decisions.append(chain.feed(Event(DATA, 0.0, b"x")) == [])
    assert 60 < sum(decisions) < 140


@pytest.mark.parametrize("bad", ["100", 1.5, True, None])
def test_non_integer_attributes_are_refused(bad):
    with pytest.raises(ToxicError, match="attribute 'latency' must be an integer"):
        make("latency", latency=bad)
