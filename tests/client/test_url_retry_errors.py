"""The client's URL lists, retry schedules and exceptions: validated when built, with
errors that name the bad part — where kombu accepts them silently."""

from __future__ import annotations

import random
import threading
import time

import pytest
from kombu.utils.url import parse_url as kombu_parse_url

from client.errors import (
    AccessRefused,
    AMQPChannelError,
    AMQPConnectionError,
    ConfigurationError,
    ConnectionForced,
    LoginRefused,
    NotFound,
    error_for,
)
from client.retry import (
    ExponentialBackoff,
    LinearBackoff,
    RetryBudget,
    check_not_busy,
    failover_strategy,
    round_robin,
    shuffle,
    sleep,
)
from client.url import parse_hosts, parse_url


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:secret@rabbit:5673/prod",
        "amqp://h//",
        "amqp://h/%2F",
        "amqp://h/",
        "amqp://u%40x:p%3Aw@h:1/v%2Fw?heartbeat=10",
        "amqps://h",
    ],
)
def test_parse_url_matches_kombu(url):
    assert parse_url(url) == kombu_parse_url(url)


def test_failover_list_keeps_each_hosts_settings():
    hosts = parse_hosts("amqp://a:1@one:5673/v1?heartbeat=5;b:2@two/v2")
    assert [(h.hostname, h.port, h.userid, h.virtual_host) for h in hosts] == [
        ("one", 5673, "a", "v1"),
        ("two", 5672, "b", "v2"),
    ]
    assert hosts[0].options == {"heartbeat": 5.0} and hosts[1].options == {}
    assert hosts[0].as_url() == "amqp://a:**@one:5673/v1"


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ("amqp://h:99999", "URL 1 of 1 (amqp://h:99999): Port out of range"),
        ("amqp://ok;amqp://h:0x", "URL 2 of 2 (amqp://h:0x): Port could not be cast"),
        ("redis://h", "transport 'redis' is not supported (use one of amqp, pyamqp, amqps)"),
        ("amqp://h?heartbeat=soon", "query value heartbeat='soon' is not a valid float"),
        ("amqp://h?heartbeat=-1", "query value heartbeat='-1' must not be negative"),
        ("amqp://a;;amqp://b", "empty URL in the broker list"),
        ("amqp://u:hunter2@h:70000", "(amqp://u:**@h:70000)"),
    ],
)
def test_bad_urls_are_refused_with_the_bad_part_named(urls, message):
    with pytest.raises(ConfigurationError) as info:
        parse_hosts(urls)
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_failover_strategies():
    assert [next(it) for it in [round_robin("abc")] for _ in range(4)] == list("abca")
    rng = random.Random(3)
    first_pass = [next(gen) for gen in [shuffle("abcd", rng)] for _ in range(8)]
    assert sorted(first_pass[:4]) == sorted(first_pass[4:]) == list("abcd")
    assert failover_strategy("shuffle") is shuffle
    assert failover_strategy(lambda hosts: iter(hosts))
    with pytest.raises(ConfigurationError, match="unknown failover_strategy 'random'"):
        failover_strategy("random")


def test_linear_backoff_is_kombus_schedule():
    delays = LinearBackoff(1, 2, 6).delays()
    assert [next(delays) for _ in range(5)] == [1, 3, 5, 6, 6]


@pytest.mark.parametrize(
    "kwargs", [{"interval_start": -1}, {"interval_step": -0.5}, {"interval_max": "x"}]
)
def test_negative_or_non_numeric_intervals_are_refused(kwargs):
    with pytest.raises(ConfigurationError, match=next(iter(kwargs))):
        LinearBackoff(**kwargs)


def test_exponential_backoff_with_seeded_jitter():
    a = ExponentialBackoff(0.1, 2, 1.0, rng=random.Random(1)).delays()
    b = ExponentialBackoff(0.1, 2, 1.0, rng=random.Random(1)).delays()
    first = [next(a) for _ in range(8)]
    assert first == [next(b) for _ in range(8)]
    assert all(0 <= d <= 1.0 for d in first)
    with pytest.raises(ConfigurationError, match="factor must be >= 1"):
        ExponentialBackoff(factor=0.5)


def test_busy_loops_are_refused():
    with pytest.raises(ConfigurationError, match="busy loop"):
        check_not_busy(LinearBackoff(0, 0, 0), RetryBudget(max_retries=None))
    check_not_busy(LinearBackoff(0, 0, 0), RetryBudget(max_retries=3))


def test_budget_bounds_attempts_and_time():
    now = [0.0]
    budget = RetryBudget(max_retries=5, deadline=10.0, clock=lambda: now[0]).start()
    assert budget.allows(2.0)
    now[0] = 9.0
    assert not budget.allows(2.0), "the sleep would cross the deadline"
    now[0] = 0.0
    for _ in range(5):
        budget.spend()
    assert not budget.allows(0.0)
    with pytest.raises(ConfigurationError, match="max_retries"):
        RetryBudget(max_retries=-1)


def test_sleep_is_interruptible():
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert sleep(5, stop) is False
    assert time.monotonic() - started < 1


def test_errors_follow_the_reply_code():
    assert isinstance(error_for(404, "NOT_FOUND - no queue 'q'"), NotFound)
    assert isinstance(error_for(403, "ACCESS_REFUSED - x"), AccessRefused)
    assert isinstance(error_for(403, "ACCESS_REFUSED - Login", on_connection=True), LoginRefused)
    forced = error_for(320, "CONNECTION_FORCED - shutdown", on_connection=True)
    assert isinstance(forced, ConnectionForced) and isinstance(forced, ConnectionError)
    assert isinstance(error_for(599, "odd"), AMQPConnectionError)
    assert isinstance(error_for(399, "odd"), AMQPChannelError)
    assert str(error_for(406, "PRECONDITION_FAILED - x")) == "(406) PRECONDITION_FAILED - x"
