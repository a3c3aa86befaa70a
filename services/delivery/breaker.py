"""A circuit breaker per webhook endpoint: stop hammering an endpoint that is down.

closed --N consecutive failures--> open --cooldown--> half-open --trial succeeds--> closed
                                    ^                            |
                                    +-------trial fails----------+

While open nothing is sent to the endpoint; half-open lets exactly one trial through.
Times are plain seconds from any monotonic clock the caller passes in.
"""

from __future__ import annotations

from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int, cooldown_s: float) -> None:
        if failure_threshold < 1 or cooldown_s < 0:
            raise ValueError("a breaker needs a threshold >= 1 and a cooldown >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.failures = 0
        self._opened_at: float | None = None
        self._trial_at: float | None = None  # when the half-open trial went out

    def state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if now < self._opened_at + self.cooldown_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def retry_at(self) -> float | None:
        """When a request may next go out if :meth:`allow` refuses now (None when closed):
        the end of the cooldown, or, while a half-open trial is out, when it is given up
        on (its outcome usually comes sooner and wakes the waiters)."""
        if self._opened_at is None:
            return None
        if self._trial_at is not None:
            return self._trial_at + self.cooldown_s
        return self._opened_at + self.cooldown_s

    def allow(self, now: float) -> bool:
        """Whether a request may go out now. Half-open admits one trial until its outcome
        is recorded (or, should it never be, for another cooldown)."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and (
            self._trial_at is None or now >= self._trial_at + self.cooldown_s
        ):
            self._trial_at = now
            return True
        return False

    def record_success(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._trial_at = None

    def record_failure(self, now: float) -> None:
        self.failures += 1
        if self._trial_at is not None or self.failures >= self.failure_threshold:
            self._opened_at = now  # a failed trial opens it again for a full cooldown
        self._trial_at = None


class BreakerBoard:
    """One breaker per key (the delivery service uses agency and endpoint origin), shared
    by the subscriptions with that key."""

    def __init__(self, *, failure_threshold: int, cooldown_s: float) -> None:
        self._threshold = failure_threshold
        self._cooldown = cooldown_s
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, endpoint: str) -> CircuitBreaker:
        if endpoint not in self._breakers:
            self._breakers[endpoint] = CircuitBreaker(
                failure_threshold=self._threshold, cooldown_s=self._cooldown
            )
        return self._breakers[endpoint]

    def states(self, now: float) -> list[tuple[str, BreakerState]]:
        """Every breaker made so far, by key, and its state now."""
        return [(key, b.state(now)) for key, b in sorted(list(self._breakers.items()))]

    def open_count(self, now: float) -> int:
        # A snapshot: /healthz reads it from a worker thread while the loop may add one.
        return sum(b.state(now) is not BreakerState.CLOSED for b in list(self._breakers.values()))
