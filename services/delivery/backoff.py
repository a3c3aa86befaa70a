"""When to try a webhook again: exponential backoff with full jitter, up to a horizon.

Full jitter (a uniform delay between 0 and the exponential ceiling) spreads the retries of
many subscriptions that failed together, so a recovering endpoint is not hit in waves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 1.0  # ceiling of the first retry's delay
    factor: float = 2.0  # each failure multiplies the ceiling by this
    cap_s: float = 600.0  # no delay is longer
    horizon_s: float = 24 * 3600.0  # a notification still undelivered this long is dead-lettered

    def __post_init__(self) -> None:
        if not (0 < self.base_s <= self.cap_s and self.factor >= 1 and self.horizon_s > 0):
            raise ValueError("retry policy needs 0 < base <= cap, factor >= 1, horizon > 0")


def ceiling(policy: RetryPolicy, attempts: int) -> float:
    """The longest delay after ``attempts`` failures (>= 1): base * factor^(attempts-1),
    capped, computed without overflowing for any number of attempts."""
    if attempts < 1:
        raise ValueError("attempts counts failures, from 1")
    if policy.factor == 1:
        return policy.base_s
    to_cap = math.log(policy.cap_s / policy.base_s) / math.log(policy.factor)
    exponent = min(attempts - 1, math.ceil(to_cap))
    return float(min(policy.cap_s, policy.base_s * policy.factor**exponent))


def delay(policy: RetryPolicy, attempts: int, rand: Callable[[], float]) -> float:
    """A delay drawn uniformly from [0, ceiling] (``rand`` gives [0, 1))."""
    return rand() * ceiling(policy, attempts)


def next_attempt(
    policy: RetryPolicy,
    *,
    attempts: int,
    queued_at: datetime,
    now: datetime,
    rand: Callable[[], float],
) -> datetime | None:
    """When to try again after ``attempts`` failures, never later than the horizon (the last
    try falls on it); None once the horizon has passed: dead-letter it."""
    deadline = queued_at + timedelta(seconds=policy.horizon_s)
    if now >= deadline:
        return None
    return min(now + timedelta(seconds=delay(policy, attempts, rand)), deadline)


def expired(policy: RetryPolicy, *, queued_at: datetime, now: datetime) -> bool:
    return now >= queued_at + timedelta(seconds=policy.horizon_s)


def give_up_untried(
    policy: RetryPolicy, *, started: datetime, next_attempt_at: datetime | None, now: datetime
) -> bool:
    """Whether to dead-letter without another try: the horizon (from ``started``) has
    passed and no last try is due on it. :func:`next_attempt` may schedule the last try
    exactly at the deadline; that try still goes out, and its failure dead-letters."""
    deadline = started + timedelta(seconds=policy.horizon_s)
    if now < deadline:
        return False
    return next_attempt_at is None or next_attempt_at < deadline
