"""The day protocols are judged on: whether an agreement has expired (when a set is loaded)
and whether it is in force (when an event is decided), unless a caller names the day.

One home for that reading of the clock, so the test suite can fix it (``tests/clock``): the
shipped protocols end on a real date, and a suite judged on the wall clock would start to
fail on the day after it."""

from __future__ import annotations

from datetime import UTC, date, datetime


def today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()
