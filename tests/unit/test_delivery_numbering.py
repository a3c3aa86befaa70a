"""Numbering rules: each subscription counts its own events from 1, only what it wants,
only while active; acknowledgements are monotonic and bounded; $events ranges."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.delivery.errors import AckBeyondLast
from services.delivery.filters import parse_filters
from services.delivery.model import Delivered, Status
from services.delivery.numbering import (
    Subscriber,
    acknowledge,
    assign_numbers,
    event_range,
    wants,
)

LA, PH = "la-northshire", "ph-northshire"
ATT, PLAN = "health.unscheduled_care.attendance", "socialcare.child_protection_plan.started"


def event(event_type: str = ATT, site: str = "RVR01", n: int = 0) -> Delivered:
    return Delivered(
        f"d-{n}", event_type, "/agencies/x", datetime(2026, 1, 1, tzinfo=UTC), None, None,
        {"site": site},
    )  # fmt: skip


def sub(
    sub_id: str,
    *,
    agency: str = LA,
    types: tuple[str, ...] = (ATT,),
    site: str | None = None,
    status: Status = Status.ACTIVE,
    since: int = 0,
) -> Subscriber:
    filters = [{"path": "data.site", "op": "eq", "value": site}] if site else []
    return Subscriber(sub_id, agency, status, frozenset(types), parse_filters(filters), since)


def test_each_subscription_numbers_what_it_wants_from_where_it_stands() -> None:
    subs = [sub("all", since=7), sub("rvr", site="RVR01"), sub("plans", types=(PLAN,))]
    batch = [(LA, event(n=0)), (LA, event(site="X", n=1)), (LA, event(PLAN, n=2)), (LA, event(n=3))]
    numbered = [(n.subscription_id, n.event_number, n.index) for n in assign_numbers(subs, batch)]
    assert numbered == [
        ("all", 8, 0),
        ("rvr", 1, 0),
        ("all", 9, 1),
        ("plans", 1, 2),
        ("all", 10, 3),
        ("rvr", 2, 3),
    ]


def test_off_subscriptions_and_other_agencies_get_nothing() -> None:
    subs = [sub("off", status=Status.OFF), sub("ph", agency=PH)]
    assert assign_numbers(subs, [(LA, event())]) == []
    assert not wants(sub("ph", agency=PH), LA, event())
    assert wants(sub("ph", agency=PH), PH, event())


@given(
    starts=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=4),
    sites=st.lists(st.sampled_from(["RVR01", "X"]), max_size=30),
    cut=st.integers(min_value=0, max_value=30),
)
def test_numbers_are_contiguous_however_the_stream_is_cut_into_batches(
    starts: list[int], sites: list[str], cut: int
) -> None:
    subs = [sub(f"s{i}", since=s, site="RVR01" if i % 2 else None) for i, s in enumerate(starts)]
    batch = [(LA, event(site=s, n=i)) for i, s in enumerate(sites)]
    whole = assign_numbers(subs, batch)
    first = assign_numbers(subs, batch[:cut])
    reached = {n.subscription_id: n.event_number for n in first}  # the store keeps these
    moved = [replace(s, events_since_start=reached.get(s.id, s.events_since_start)) for s in subs]
    rest = assign_numbers(moved, batch[cut:])
    shifted = [(n.subscription_id, n.event_number, n.index + min(cut, len(batch))) for n in rest]
    assert [(n.subscription_id, n.event_number, n.index) for n in first] + shifted == [
        (n.subscription_id, n.event_number, n.index) for n in whole
    ]
    for s in subs:
        mine = [n.event_number for n in whole if n.subscription_id == s.id]
        assert mine == list(range(s.events_since_start + 1, s.events_since_start + 1 + len(mine)))


def test_acknowledging_is_monotonic_and_bounded() -> None:
    assert acknowledge(3, acknowledged=1, last=5) == 3
    assert acknowledge(1, acknowledged=3, last=5) == 3
    assert acknowledge(5, acknowledged=3, last=5) == 5
    with pytest.raises(AckBeyondLast) as caught:
        acknowledge(6, acknowledged=3, last=5)
    assert (caught.value.through, caught.value.last) == (6, 5)


@pytest.mark.parametrize(
    ("since", "until", "last", "limit", "expected"),
    [
        (None, None, 0, 100, None),
        (None, None, 7, 100, (1, 7)),
        (3, None, 7, 100, (3, 7)),
        (3, 4, 7, 100, (3, 4)),
        (None, None, 7, 2, (1, 2)),
        (5, 99, 7, 100, (5, 7)),
        (8, None, 7, 100, None),
        (4, 3, 7, 100, None),
    ],
)
def test_event_ranges(
    since: int | None, until: int | None, last: int, limit: int, expected: tuple[int, int] | None
) -> None:
    assert event_range(since, until, last=last, limit=limit) == expected
