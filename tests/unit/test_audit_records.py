"""The audit reader's times (services/audit/records.py): SQLite keeps them as text, and the
reader's short cut for the text the store writes reads every string as the ORM would
(``datetime.fromisoformat``, a time without a zone in UTC), or keeps it as stored when the
ORM could not read it either: so verify never passes a time the IG API would show
otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.audit.records import _in_utc

STORED = "2026-11-20 12:34:56.123456"  # as the store writes a time on SQLite


def _as_the_orm_reads(text: str) -> Any:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@settings(max_examples=500)
@example([(13, "+"), (14, "0"), (15, "4")])  # an offset in the time's place, seconds after
@example([(10, "T")])
@given(
    st.lists(
        st.tuples(st.integers(0, len(STORED) - 1), st.sampled_from("0123456789 -:.+TZ")),
        max_size=4,
    )
)
def test_a_time_reads_as_the_orm_reads_it_however_it_was_altered(
    changes: list[tuple[int, str]],
) -> None:
    text = list(STORED)
    for at, char in changes:
        text[at] = char
    altered = "".join(text)
    read, expected = _in_utc(altered), _as_the_orm_reads(altered)
    assert read == expected and type(read) is type(expected)
    if isinstance(read, datetime):
        assert read.tzinfo is UTC


def test_the_stored_form_reads_as_utc() -> None:
    assert _in_utc(STORED) == datetime(2026, 11, 20, 12, 34, 56, 123456, tzinfo=UTC)
    assert _in_utc("2026-11-20+12:") == "2026-11-20+12:"  # the ORM cannot read it either
