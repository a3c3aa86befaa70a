"""Backoff with full jitter stays within its bounds and its horizon; the circuit breaker
moves closed -> open -> half-open -> closed (or open again) as specified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.delivery.backoff import (
    RetryPolicy,
    ceiling,
    delay,
    expired,
    give_up_untried,
    next_attempt,
)
from services.delivery.breaker import BreakerBoard, BreakerState, CircuitBreaker

policies = st.builds(
    lambda base, factor, extra, horizon: RetryPolicy(base, factor, base + extra, horizon),
    base=st.floats(min_value=0.001, max_value=60),
    factor=st.floats(min_value=1, max_value=10),
    extra=st.floats(min_value=0, max_value=3600),
    horizon=st.floats(min_value=0.001, max_value=7 * 86400),
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@given(policy=policies, attempts=st.integers(min_value=1, max_value=10_000), r=st.floats(0, 1))
def test_a_delay_is_between_zero_and_the_capped_exponential_ceiling(
    policy: RetryPolicy, attempts: int, r: float
) -> None:
    top = ceiling(policy, attempts)
    assert policy.base_s <= top <= policy.cap_s * (1 + 1e-9)
    assert 0 <= delay(policy, attempts, lambda: r) <= top
    if attempts > 1:
        assert ceiling(policy, attempts - 1) <= top  # never shrinks


@given(
    policy=policies,
    attempts=st.integers(min_value=1, max_value=100),
    elapsed=st.floats(min_value=0, max_value=8 * 86400),
    r=st.floats(0, 0.999),
)
def test_the_next_attempt_never_passes_the_horizon(
    policy: RetryPolicy, attempts: int, elapsed: float, r: float
) -> None:
    now = T0 + timedelta(seconds=elapsed)
    at = next_attempt(policy, attempts=attempts, queued_at=T0, now=now, rand=lambda: r)
    deadline = T0 + timedelta(seconds=policy.horizon_s)
    if now >= deadline:
        assert at is None and expired(policy, queued_at=T0, now=now)
    else:
        assert at is not None and now <= at <= deadline


def test_the_ceiling_doubles_then_caps() -> None:
    policy = RetryPolicy(base_s=1, factor=2, cap_s=10, horizon_s=100)
    assert [ceiling(policy, n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert ceiling(policy, 10**9) == 10  # no overflow however long it has failed
    with pytest.raises(ValueError):
        ceiling(policy, 0)
    with pytest.raises(ValueError):
        RetryPolicy(base_s=5, cap_s=1)


def test_the_breaker_opens_after_n_consecutive_failures() -> None:
    b = CircuitBreaker(failure_threshold=3, cooldown_s=10)
    b.record_failure(0)
    b.record_failure(1)
    b.record_success()  # not consecutive any more
    b.record_failure(2)
    b.record_failure(3)
    assert b.state(3) is BreakerState.CLOSED and b.allow(3)
    b.record_failure(4)
    assert b.state(4) is BreakerState.OPEN and not b.allow(4) and not b.allow(13.9)
    assert b.retry_at() == 14


def test_half_open_lets_one_trial_through_and_its_outcome_decides() -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    b.record_failure(0)
    assert b.state(10) is BreakerState.HALF_OPEN
    assert b.allow(10) and not b.allow(10.5)  # one trial at a time
    b.record_failure(11)  # the trial failed: open for a whole cooldown again
    assert b.state(20) is BreakerState.OPEN and not b.allow(20.9)
    assert b.allow(21)
    b.record_success()
    assert b.state(21) is BreakerState.CLOSED and b.allow(21) and b.allow(21)


def test_a_trial_whose_outcome_never_comes_is_retried_after_a_cooldown() -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    b.record_failure(0)
    assert b.allow(10) and not b.allow(19)
    assert b.allow(20)


def test_one_breaker_per_endpoint() -> None:
    board = BreakerBoard(failure_threshold=1, cooldown_s=5)
    board.get("https://a:443").record_failure(0)
    assert board.get("https://a:443") is board.get("https://a:443")
    assert board.get("https://b:443").allow(0)
    assert board.open_count(1) == 1 and board.open_count(6) == 1  # half-open is not closed


def test_while_a_trial_is_out_the_others_wait_for_it_not_for_the_past() -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    b.record_failure(0)
    assert b.allow(10)  # the trial goes out
    assert not b.allow(12)
    retry = b.retry_at()
    assert retry is not None and retry == 20  # not 10, already past: no busy polling


def test_the_last_try_falls_on_the_horizon_and_is_not_given_up_untried() -> None:
    policy = RetryPolicy(base_s=1000, factor=2, cap_s=1000, horizon_s=100)
    at = next_attempt(
        policy, attempts=3, queued_at=T0, now=T0 + timedelta(seconds=99), rand=lambda: 0.9
    )
    deadline = T0 + timedelta(seconds=100)
    assert at == deadline
    assert not give_up_untried(policy, started=T0, next_attempt_at=at, now=deadline)
    assert give_up_untried(policy, started=T0, next_attempt_at=None, now=deadline)
    assert not give_up_untried(policy, started=T0, next_attempt_at=None, now=T0)
