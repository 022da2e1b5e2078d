"""Retry timing: failover strategies, backoff schedules, budgets and interruptible sleeps.

kombu's ``ensure``/``ensure_connection`` retry on a linear schedule (``interval_start``, then
``+interval_step`` up to ``interval_max``; kombu.utils.functional.retry_over_time) with no
overall deadline, accept negative intervals, spin when every interval is 0, and sleep with
``time.sleep`` nobody can interrupt. Here every schedule is validated when it is built, a
:class:`RetryBudget` bounds attempts *and* total time, and :func:`sleep` wakes on a stop flag.
The clock, sleeper and RNG are injectable, so the virtual-time driver can run this code.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from client.errors import ConfigurationError

# -- failover strategies (kombu.connection.failover_strategies) ----------------------------


def round_robin(hosts: Iterable) -> Iterator:
    return itertools.cycle(list(hosts))


def shuffle(hosts: Iterable, rng: random.Random | None = None) -> Iterator:
    """kombu's shufflecycle: a fresh random order on every pass over the hosts."""
    rng = rng or random.Random()
    items = list(hosts)
    while True:
        rng.shuffle(items)
        yield from items


FAILOVER_STRATEGIES: dict[str, Callable[..., Iterator]] = {
    "round-robin": round_robin,
    "shuffle": shuffle,
}


def failover_strategy(strategy) -> Callable[[Iterable], Iterator]:
    """A name from FAILOVER_STRATEGIES or any callable taking the hosts, yielding hosts."""
    if strategy is None:
        return round_robin
    if callable(strategy):
        return strategy
    if isinstance(strategy, str) and strategy in FAILOVER_STRATEGIES:
        return FAILOVER_STRATEGIES[strategy]
    raise ConfigurationError(
        f"unknown failover_strategy {strategy!r}: use one of "
        f"{', '.join(repr(k) for k in FAILOVER_STRATEGIES)} or a callable that yields hosts"
    )


# -- backoff schedules -----------------------------------------------------------------------


def _non_negative(**values: float | None) -> None:
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
        if value < 0:
            raise ConfigurationError(f"{name} must not be negative, got {value}")


@dataclass(frozen=True)
class LinearBackoff:
    """kombu's schedule: start, start+step, ... capped at ``interval_max``."""

    interval_start: float = 2.0
    interval_step: float = 2.0
    interval_max: float = 30.0

    def __post_init__(self) -> None:
        _non_negative(
            interval_start=self.interval_start,
            interval_step=self.interval_step,
            interval_max=self.interval_max,
        )

    def delays(self) -> Iterator[float]:
        current = self.interval_start
        while True:
            yield min(current, self.interval_max)
            current += self.interval_step

    @property
    def all_zero(self) -> bool:
        return self.interval_start == 0 and (self.interval_step == 0 or self.interval_max == 0)


@dataclass(frozen=True)
class ExponentialBackoff:
    """``base * factor**n`` capped at ``maximum``, with full jitter from a seeded RNG."""

    base: float = 0.1
    factor: float = 2.0
    maximum: float = 30.0
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        _non_negative(base=self.base, maximum=self.maximum)
        if self.factor < 1:
            raise ConfigurationError(f"factor must be >= 1, got {self.factor}")

    def delays(self) -> Iterator[float]:
        for n in itertools.count():
            delay = min(self.base * self.factor**n, self.maximum)
            yield self.rng.uniform(0, delay) if self.jitter else delay

    @property
    def all_zero(self) -> bool:
        return self.base == 0 or self.maximum == 0


@dataclass
class RetryBudget:
    """At most ``max_retries`` retries (None = unlimited) and ``deadline`` seconds in all."""

    max_retries: int | None = None
    deadline: float | None = None
    clock: Callable[[], float] = time.monotonic
    started: float | None = None
    used: int = 0

    def __post_init__(self) -> None:
        if self.max_retries is not None and (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ConfigurationError(
                f"max_retries must be a non-negative integer or None, got {self.max_retries!r}"
            )
        _non_negative(deadline=self.deadline)

    def start(self) -> RetryBudget:
        self.started = self.clock()
        self.used = 0
        return self

    def remaining_time(self) -> float | None:
        if self.deadline is None:
            return None
        started = self.started if self.started is not None else self.clock()
        return max(0.0, self.deadline - (self.clock() - started))

    def allows(self, next_delay: float) -> bool:
        """True if one more retry, after sleeping ``next_delay``, fits the budget."""
        if self.max_retries is not None and self.used >= self.max_retries:
            return False
        remaining = self.remaining_time()
        return remaining is None or next_delay < remaining

    def spend(self) -> None:
        self.used += 1


def check_not_busy(backoff, budget: RetryBudget) -> None:
    """Refuse a schedule that would retry forever without ever sleeping."""
    if backoff.all_zero and budget.max_retries is None and budget.deadline is None:
        raise ConfigurationError(
            "every retry interval is 0 and neither max_retries nor a deadline bounds the "
            "retries: that is a busy loop"
        )


def sleep(seconds: float, stop: threading.Event | None = None) -> bool:
    """Sleep ``seconds``; return False at once if ``stop`` is set (or becomes set)."""
    if stop is None:
        time.sleep(seconds)
        return True
    return not stop.wait(seconds)
