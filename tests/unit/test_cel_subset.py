"""The Python-compiled CEL subset agrees with the CEL library, value for value.

Hypothesis builds expressions from the subset's grammar and JSON-like data over a small
alphabet (so fields are often there, often missing, often of the wrong type), and every
condition must hold, fail or be unevaluable exactly as the library says.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from consent.core.cel_subset import ERROR, cel_equal, compile_subset
from consent.core.conditions import Condition, ConditionError

KEYS = ("a", "b", "c")
scalars = st.one_of(
    st.booleans(),
    st.sampled_from([0, 1, 2, -1, 2**53 + 1, 2**63 - 1]),
    st.sampled_from([0.0, 1.0, 0.5, 2.0**53, 9.223372036854776e18]),
    st.sampled_from(["", "x", "xy", "a"]),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)
maps = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)
literals = st.sampled_from(
    ['"x"', "'xy'", '""', "0", "1", "true", "false", "null", "'a'", "9007199254740993"]
)
roots = st.sampled_from(["event", "state", "recipient"])


@st.composite
def selections(draw: st.DrawFn) -> str:
    fields = draw(st.lists(st.sampled_from(KEYS), min_size=0, max_size=3))
    return ".".join([draw(roots), *fields])


@st.composite
def has_calls(draw: st.DrawFn) -> str:
    fields = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3))
    return f"has({'.'.join([draw(roots), *fields])})"


operands = st.one_of(selections(), literals)
atoms = st.one_of(
    has_calls(),
    selections(),
    st.builds(lambda a, op, b: f"{a} {op} {b}", operands, st.sampled_from(["==", "!="]), operands),
    st.builds(lambda a, b: f"{a}.startsWith({b})", operands, operands),
    st.sampled_from(["true", "false"]),
)
expressions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["&&", "||"]), inner),
        st.builds(lambda a: f"!({a})", inner),
        st.builds(lambda a: f"({a})", inner),
    ),
    max_leaves=6,
)


@settings(max_examples=1500, deadline=None)
@given(
    source=expressions,
    data=maps,
    state=maps,
    recipient=st.sampled_from(["x", "a", ""]),
)
def test_the_python_subset_decides_as_cel_does(
    source: str, data: dict[str, Any], state: dict[str, Any], recipient: str
) -> None:
    try:
        condition = Condition.compile(source)
    except ConditionError:
        reject()  # CEL's type checker refuses it (a string compared with an int, say)
    assert condition.compiled_to_python, source
    event = {**data, "type": "x"}
    assert condition.holds(event=event, state=state, recipient=recipient) == (
        condition.holds_in_cel(event=event, state=state, recipient=recipient)
    ), source


@pytest.mark.parametrize(
    "source",
    [
        "event.type in ['a']",
        "size(event.data) > 0",
        "event.a ? true : false",
        "event.type == 'it\\'s'",
        "event.type == r'x'",
        "event.n == 1.5",
        "event.n == 1u",
        "-event.n == 1",
        "event.items.exists(i, i == 'x')",
        "!!event.flag",
        "event.a == event.b == true",
        "event.type.endsWith('x')",
        "has(event)",
    ],
)
def test_anything_outside_the_subset_is_left_to_cel(source: str) -> None:
    assert compile_subset(source) is None


def test_the_protocols_own_conditions_compile_to_python() -> None:
    for source in (
        "has(state.protection_plan) && state.protection_plan.authority == recipient",
        'event.type.startsWith("socialcare.looked_after.") && has(event.data.subject.nhs_number)',
        "!has(state.protection_plan)",
    ):
        assert Condition.compile(source).compiled_to_python


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        ([1, True], [1.0, True], True),
        ({"a": 1}, {"a": 1.0}, True),
        ({"a": 1}, {"b": 1}, False),
        ("1", 1, False),
        (None, None, True),
        (None, False, False),
    ],
)
def test_equality_is_cels_heterogeneous_equality(a: Any, b: Any, same: bool) -> None:
    assert cel_equal(a, b) is same
    assert (
        Condition.compile("state.a == state.b").holds_in_cel(
            event={}, state={"a": a, "b": b}, recipient=""
        )
        is same
    )


def test_a_long_chain_is_evaluated_in_a_loop_not_by_recursion() -> None:
    source = " || ".join(["event.a == 1"] * 1500)
    condition = Condition.compile(source)
    assert condition.compiled_to_python
    assert condition.holds(event={"a": 1}, state={}, recipient="") is True
    assert condition.holds(event={"a": 2}, state={}, recipient="") is False
    assert condition.holds(event={}, state={}, recipient="") is None


def test_an_int_meets_a_double_as_a_double_as_in_cel() -> None:
    for source, n in (
        ("event.n != 9007199254740993", 9007199254740992.0),
        ("event.n == 9223372036854775807", 9.223372036854776e18),
    ):
        condition = Condition.compile(source)
        event = {"n": n}
        expected = condition.holds_in_cel(event=event, state={}, recipient="")
        assert condition.holds(event=event, state={}, recipient="") is expected


def test_an_error_flows_through_instead_of_raising() -> None:
    evaluate = compile_subset("event.missing.deeper == 'x'")
    assert evaluate is not None
    assert evaluate({}, {}, "") is ERROR
