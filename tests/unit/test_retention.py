"""Retention (consent/core/retention.py): ISO 8601 durations as protocols write them, read
and added on the calendar; which held items are due, given now and the protocols' rules;
and the purge's audit record, which holds counts and never an id or a value."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.core.retention import (
    PURGE_ACTION,
    Duration,
    Held,
    RetentionRules,
    Tally,
    due,
    held_until,
    is_due,
    purge_audit,
    split_ref,
)
from services.backbone.audit_contract import is_disclosure_decision
from tests.retention_protocols import protocol

LA, ED, SCHOOL = "la-northshire", "nhs-riverside-ed", "school-hillside"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
# What protocols could write before this module parsed them (consent/policy/parse.py).
PROTOCOL_FORM = re.compile(r"^P(?=\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("P2Y", Duration(years=2)),
        ("P6M", Duration(months=6)),
        ("P30D", Duration(days=30)),
        ("P1W", Duration(weeks=1)),
        ("P1Y6M", Duration(years=1, months=6)),
        ("P0D", Duration()),
    ],
)
def test_durations_protocols_write_are_read(text: str, parsed: Duration) -> None:
    assert Duration.parse(text) == parsed
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text", ["", "P", "2Y", "p2y", "P1.5Y", "PT1H", "P1YT2H", "P-1Y", "P1D1Y", "P2Y ", "two years"]
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        Duration.parse(text)


@given(st.text(alphabet="P0123456789YMWDT.-", max_size=12))
def test_exactly_the_forms_protocols_may_write_are_read(text: str) -> None:
    try:
        Duration.parse(text)
    except ValueError:
        assert PROTOCOL_FORM.match(text) is None
    else:
        assert PROTOCOL_FORM.match(text) is not None


durations = st.builds(
    Duration,
    years=st.integers(0, 30),
    months=st.integers(0, 40),
    weeks=st.integers(0, 60),
    days=st.integers(0, 400),
)
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@given(durations)
def test_a_duration_reads_back_as_written(d: Duration) -> None:
    assert Duration.parse(str(d)) == d


@pytest.mark.parametrize(
    ("start", "text", "end"),
    [
        (datetime(2024, 2, 29, 9, tzinfo=UTC), "P1Y", datetime(2025, 2, 28, 9, tzinfo=UTC)),
        (datetime(2024, 2, 29, 9, tzinfo=UTC), "P4Y", datetime(2028, 2, 29, 9, tzinfo=UTC)),
        (datetime(2026, 1, 31, tzinfo=UTC), "P1M", datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 8, 31, tzinfo=UTC), "P6M", datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 11, 15, tzinfo=UTC), "P2M", datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), "P30D", datetime(2026, 1, 31, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), "P1Y1M1W1D", datetime(2027, 2, 9, tzinfo=UTC)),
    ],
)
def test_durations_are_added_on_the_calendar(start: datetime, text: str, end: datetime) -> None:
    assert Duration.parse(text).after(start) == end


@given(durations, moments)
def test_the_bounds_hold_for_every_start(d: Duration, start: datetime) -> None:
    held = d.after(start) - start
    assert d.shortest() <= held <= d.longest()


@given(durations, moments, moments)
def test_what_arrived_later_is_kept_no_shorter(d: Duration, a: datetime, b: datetime) -> None:
    first, second = sorted((a, b))
    assert d.after(first) <= d.after(second)


RULES = RetentionRules.of(
    [
        protocol("p", 1, (ED, "P2Y"), (SCHOOL, None)),
        protocol("p", 2, (ED, "P1Y")),
        protocol("q", 1, (LA, "P30D")),
    ]
)


def test_each_delivery_takes_the_retention_of_the_rule_it_was_shared_under() -> None:
    assert RULES.retention("p@1", ED) == Duration(years=2)
    assert RULES.retention("p@2", ED) == Duration(years=1)
    assert RULES.retention("q@1", LA) == Duration(days=30)
    # a version no longer loaded: what the newest one states for the recipient
    assert RULES.retention("p@7", ED) == Duration(years=1)
    assert RULES.retention("p", ED) == Duration(years=1)


def test_without_a_stated_or_known_retention_a_delivery_is_kept() -> None:
    assert RULES.retention("p@1", SCHOOL) is None  # the rule states none
    assert RULES.retention("p@2", SCHOOL) is None  # the newest version names it no more
    assert RULES.retention("gone@1", ED) is None  # a protocol no longer loaded
    assert RULES.retention(None, ED) is None  # under no protocol (an access-back notice)
    old = Held(1, SCHOOL, "p@1", datetime(2000, 1, 1, tzinfo=UTC))
    assert held_until(old, RULES) is None and not is_due(old, RULES, NOW)


def test_an_item_is_due_once_its_retention_has_run() -> None:
    received = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    item = Held(1, LA, "q@1", received)
    assert held_until(item, RULES) == datetime(2026, 5, 31, 8, 30, tzinfo=UTC)
    assert not is_due(item, RULES, datetime(2026, 5, 31, 8, 29, 59, tzinfo=UTC))
    assert is_due(item, RULES, datetime(2026, 5, 31, 8, 30, tzinfo=UTC))
    # a time read back without its offset is UTC
    assert is_due(Held(1, LA, "q@1", received.replace(tzinfo=None)), RULES, NOW)


def test_which_items_are_due_now() -> None:
    items = [
        Held(1, ED, "p@1", NOW - timedelta(days=800)),  # past P2Y
        Held(2, ED, "p@1", NOW - timedelta(days=500)),  # within P2Y
        Held(3, ED, "p@2", NOW - timedelta(days=500)),  # past P1Y
        Held(4, LA, "q@1", NOW - timedelta(days=31)),  # past P30D
        Held(5, LA, "q@1", NOW - timedelta(days=29)),  # within
        Held(6, SCHOOL, "p@1", NOW - timedelta(days=9000)),  # no retention: kept
        Held(7, ED, None, NOW - timedelta(days=9000)),  # no protocol: kept
    ]
    assert [i.key for i in due(items, RULES, NOW)] == [1, 3, 4]


@given(
    st.lists(
        st.tuples(st.sampled_from([ED, LA, SCHOOL]), st.sampled_from(["p@1", "p@2", "q@1"])),
        max_size=20,
    ),
    st.integers(0, 3000),
)
def test_due_is_exactly_what_is_held_past_its_end(
    owners: list[tuple[str, str]], age_days: int
) -> None:
    items = [
        Held(n, r, p, NOW - timedelta(days=age_days, hours=n)) for n, (r, p) in enumerate(owners)
    ]
    picked = {i.key for i in due(items, RULES, NOW)}
    for item in items:
        until = held_until(item, RULES)
        assert (item.key in picked) == (until is not None and until <= NOW)


def test_the_refs_deliveries_carry_are_split() -> None:
    assert split_ref("cpis-attendance-notification@3") == ("cpis-attendance-notification", 3)
    assert split_ref("no-version") == ("no-version", None)
    assert split_ref("odd@x") == ("odd@x", None)


def test_a_purge_is_audited_with_counts_only() -> None:
    tally = Tally()
    tally.add([Held(1, ED, "p@2", NOW), Held(2, ED, "p@2", NOW), Held(3, LA, "q@1", NOW)])
    record = purge_audit(
        run_id="0b8f8c4e-6d0e-4a51-9a7c-2f1f1e0f0a01",
        purged_at=NOW,
        tally=tally,
        noun="deliveries",
        actor="infoshare-delivery",
    )
    assert record.reason == (
        "purged 3 deliveries held past their retention (p@2 to nhs-riverside-ed: 2, "
        "q@1 to la-northshire: 1)"
    )
    assert record.action == PURGE_ACTION and record.decision == "recorded"
    assert record.event_id is None and record.delivery_id is None and record.subject_key is None
    # The audit service takes it on the activity topic: it is not a disclosure decision.
    assert not is_disclosure_decision(record.decision, record.action)
    again = Tally()
    again.merge(tally.rows())
    assert again.counts == tally.counts


def test_one_recipients_purge_names_protocols_and_a_quiet_run_says_so() -> None:
    tally = Tally()
    tally.add([Held(1, LA, "q@1", NOW)])
    assert tally.reason("received items", one="received item", by_recipient=False) == (
        "purged 1 received item held past its retention (q@1: 1)"
    )
    assert Tally().reason("deliveries") == "purged 0 deliveries: none was held past its retention"
