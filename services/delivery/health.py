"""What the delivery service says at ``GET /healthz``, for ``infoshare status`` and probes.

Each webhook circuit by recipient and state only: never the endpoint, whose URL may carry a
secret in its query. The reader's offsets are where it will read each ``deliver.*``
partition next (kept in the store, not in a consumer group), so that lag can be measured
against the topics' ends.
"""

from __future__ import annotations

import time
from typing import Any

from services.delivery import queue
from services.delivery.breaker import BreakerBoard, BreakerState
from services.delivery.endpoints import recipient_of
from services.delivery.store import DeliveryStore


def circuits(board: BreakerBoard, now: float) -> list[dict[str, Any]]:
    """Every breaker the service has made so far: recipient, state, consecutive failures and
    the seconds until the next try while it is not closed."""
    out = []
    for key, state in board.states(now):
        breaker = board.get(key)  # made already: states() lists only those
        retry_at = breaker.retry_at() if state is not BreakerState.CLOSED else None
        out.append(
            {
                "recipient": recipient_of(key),
                "state": state.value,
                "failures": breaker.failures,
                "retry_in_s": None if retry_at is None else round(max(0.0, retry_at - now), 1),
            }
        )
    return out


def delivery_health(store: DeliveryStore, board: BreakerBoard) -> dict[str, Any]:
    """The fields of ``/healthz`` beside ``status``."""
    now = time.monotonic()
    return {
        "alerts": queue.alert_count(store),
        "open_breakers": board.open_count(now),
        "circuits": circuits(board, now),
        "reader_offsets": [
            {"topic": topic, "partition": partition, "next_offset": offset}
            for (topic, partition), offset in sorted(store.offsets().items())
        ],
    }
