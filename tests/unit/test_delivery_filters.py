"""Subscription filters: what they match, and what they refuse at creation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.delivery.errors import InvalidSubscription
from services.delivery.filters import Filter, Op, matches, parse_filter, parse_filters
from services.delivery.model import Delivered

EVENT = Delivered(
    event_id="d-1",
    type="health.unscheduled_care.attendance",
    source="/agencies/nhs-riverside-ed",
    time=datetime(2026, 11, 20, tzinfo=UTC),
    protocol="cpis-attendance@1",
    identity_level="identified",
    data={
        "attendance": {"site": {"ods_code": "RVR01"}, "count": 1, "urgent": True, "note": None},
        "subject": {"age_band": "5-9"},
    },
)


def f(path: str, op: str, value: Any = None) -> Filter:
    return parse_filter({"path": path, "op": op, "value": value})


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (f("data.attendance.site.ods_code", "eq", "RVR01"), True),
        (f("data.attendance.site.ods_code", "eq", "RVR02"), False),
        (f("data.attendance.site.ods_code", "in", ["X", "RVR01"]), True),
        (f("data.attendance.site.ods_code", "in", ["X", "Y"]), False),
        (f("data.attendance.site", "exists"), True),
        (f("data.attendance.missing", "exists"), False),
        (f("data.attendance.missing", "exists", False), True),
        (f("data.attendance.note", "exists"), True),  # present, even if null
        (f("data.attendance.note", "eq", None), True),
        (f("data.attendance.missing", "eq", None), False),  # absent is not null
        (f("data.attendance.site.ods_code.deeper", "exists"), False),
        (f("data.attendance.count", "eq", 1.0), True),  # JSON numbers
        (f("data.attendance.count", "eq", True), False),  # true is not 1
        (f("data.attendance.urgent", "eq", 1), False),
        (f("data.attendance.urgent", "eq", True), True),
        (f("data.attendance.count", "eq", "1"), False),
        (f("type", "eq", "health.unscheduled_care.attendance"), True),
        (f("source", "in", ["/agencies/la-northshire"]), False),
        (f("protocol", "eq", "cpis-attendance@1"), True),
        (f("identity_level", "in", ["pseudonymised", "anonymised"]), False),
    ],
)
def test_a_filter_matches(flt: Filter, expected: bool) -> None:
    assert matches([flt], EVENT) is expected


def test_every_filter_must_hold_and_none_matches_all() -> None:
    yes, no = f("type", "exists"), f("data.nothing", "exists")
    assert matches([], EVENT)
    assert matches([yes, yes], EVENT)
    assert not matches([yes, no], EVENT)


def test_an_absent_attribute_does_not_exist() -> None:
    bare = Delivered("d", "t", "/agencies/a", EVENT.time, None, None, {})
    assert not matches([f("protocol", "exists")], bare)
    assert not matches([f("protocol", "eq", None)], bare)


@pytest.mark.parametrize(
    ("raw", "loc", "rule"),
    [
        ({"path": "subject.nhs_number", "op": "eq", "value": "x"}, "path", "filter.path"),
        ({"path": "data", "op": "exists"}, "path", "filter.path"),
        ({"path": "data.a..b", "op": "exists"}, "path", "filter.path"),
        ({"path": "data.a-b", "op": "exists"}, "path", "filter.path"),
        ({"path": "data." + ".".join("a" * 9), "op": "exists"}, "path", "filter.path"),
        ({"path": "type", "op": "like", "value": "x"}, "op", "filter.op"),
        ({"path": "type", "op": "eq", "value": ["x"]}, "value", "filter.value"),
        ({"path": "type", "op": "eq", "value": {"a": 1}}, "value", "filter.value"),
        ({"path": "type", "op": "eq", "value": "x" * 257}, "value", "filter.value"),
        ({"path": "type", "op": "in", "value": "x"}, "value", "filter.value"),
        ({"path": "type", "op": "in", "value": []}, "value", "filter.value"),
        ({"path": "type", "op": "in", "value": list(range(101))}, "value", "filter.value"),
        ({"path": "type", "op": "in", "value": [["nested"]]}, "value", "filter.value"),
        ({"path": "type", "op": "exists", "value": "yes"}, "value", "filter.value"),
    ],
)
def test_a_bad_filter_is_refused_naming_the_field_and_rule(
    raw: dict[str, Any], loc: str, rule: str
) -> None:
    with pytest.raises(InvalidSubscription) as caught:
        parse_filter(raw, index=3)
    assert caught.value.loc == ("filters", 3, loc)
    assert caught.value.rule == rule
    assert "9990000123" not in caught.value.message


def test_too_many_filters_are_refused() -> None:
    with pytest.raises(InvalidSubscription, match="at most 20"):
        parse_filters([{"path": "type", "op": "exists"}] * 21)


def test_a_filter_round_trips_through_its_stored_form() -> None:
    flt = f("data.attendance.site.ods_code", "in", ["A", "B"])
    assert parse_filter(flt.as_dict()) == flt
    assert flt.op is Op.IN and flt.value == ("A", "B")


@given(
    value=st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none()),
    other=st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none()),
)
def test_eq_and_in_agree(value: Any, other: Any) -> None:
    event = Delivered("d", "t", "/agencies/a", EVENT.time, None, None, {"x": value})
    eq = matches([f("data.x", "eq", other)], event)
    assert eq is matches([f("data.x", "in", [other])], event)
    assert matches([f("data.x", "eq", value)], event)  # a value always equals itself
