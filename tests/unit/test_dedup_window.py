"""The duplicate memory forgets an event 30 days after it was decided, and not before: a copy
within the window is suppressed, one after it is decided again (Kafka has deleted the
changelog record by then, so a restarted processor would not know it either)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from consent.processor.dedup import Seen, forget_expired, seen_key
from consent.processor.handle import Context, handle
from services.backbone.envelope import decode
from services.backbone.records import ReadRecord
from tests.unit.factories import PLAN_STARTED

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("age", "remembered"),
    [
        (timedelta(0), True),
        (DAY, True),
        (30 * DAY - timedelta(seconds=1), True),
        (30 * DAY, True),  # the window's last moment
        (30 * DAY + timedelta(seconds=1), False),
        (31 * DAY, False),
    ],
)
def test_an_event_is_remembered_for_thirty_days_and_no_longer(
    age: timedelta, remembered: bool
) -> None:
    seen = {"k": Seen(digest="d", first_seen=(NOW - age).isoformat())}
    assert ("k" in forget_expired(seen, NOW)) is remembered


def test_a_copy_within_the_window_is_suppressed_and_one_after_it_is_decided_again(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    rec = build(PLAN_STARTED)
    key = seen_key(decode(rec.key, rec.value, rec.headers))
    first = Seen.now(rec.value, NOW)

    def memory(later: timedelta) -> dict[str, Seen]:
        return forget_expired({key: first}, NOW + later)

    within = handle(rec, ctx, {}, None, lambda _: [], seen=memory(29 * DAY))
    assert within.suppressed
    after = handle(rec, ctx, {}, None, lambda _: [], seen=memory(31 * DAY))
    assert not after.suppressed and after.decisions
