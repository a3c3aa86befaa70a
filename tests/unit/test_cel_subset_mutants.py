"""Where the Python subset of CEL must still agree with CEL (consent/core/cel_subset.py),
and how a condition is compiled and evaluated (consent/core/conditions.py), each found by a
mutant `make mutate` saw survive (docs/mutation.md): equality across types, lists compared
element by element, an error inside a comparison, what the subset leaves to CEL, event data
held in a mapping that is not a dict, and what a protocol author is told."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from consent.core import conditions
from consent.core.cel_subset import ERROR, cel_equal, compile_subset
from consent.core.conditions import Condition, ConditionError


def _both(source: str, event: Any) -> tuple[Any, bool | None]:
    """What the subset gives, and what CEL itself decides."""
    evaluate = compile_subset(source)
    assert evaluate is not None
    return evaluate(event, {}, "r"), Condition.compile(source).holds_in_cel(
        event=event, state={}, recipient="r"
    )


@pytest.mark.parametrize(
    ("codes", "same"),
    [(["a", "b"], True), (["a", "c"], False), (["x", "b"], False), (["a"], False)],
)
def test_lists_are_equal_only_element_by_element(codes: list[str], same: bool) -> None:
    event = {"codes": codes, "expected": ["a", "b"]}
    assert _both("event.codes == event.expected", event) == (same, same)
    assert _both("event.codes != event.expected", event) == (not same, not same)
    nested = {"codes": {"k": codes}, "expected": {"k": ["a", "b"]}}
    assert _both("event.codes == event.expected", nested) == (same, same)


def test_an_error_inside_a_comparison_is_an_error_not_false() -> None:
    python, cel = _both("(event.n && true) == false", {"n": "not a bool"})
    assert python is ERROR and cel is None


@pytest.mark.parametrize(
    "source",
    [
        "has(nothing.x)",
        "has(event.1)",
        "has(event.in)",
        "event.in == 1",
        "event.1 == 1",
        "event.n == 9223372036854775808",  # past int64: CEL refuses it
    ],
)
def test_what_cel_cannot_name_is_left_to_cel(source: str) -> None:
    assert compile_subset(source) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, True),
        ([1], [True]),
        ({"a": 1}, {"a": True}),
        ([None], [0]),
        (2**53 + 1, 2**53),  # equal as doubles, not as ints
    ],
)
def test_values_python_calls_equal_are_not_equal_in_cel(a: Any, b: Any) -> None:
    assert cel_equal(a, b) is False and cel_equal(b, a) is False
    state = {"a": a, "b": b}
    assert (
        Condition.compile("state.a == state.b").holds_in_cel(event={}, state=state, recipient="")
        is False
    )


def test_a_condition_written_across_lines_still_compiles_to_python() -> None:
    """Protocols write conditions as YAML block scalars, which end in a newline."""
    condition = Condition.compile("\n  event.a == 1\n    && event.b != 2\n")
    assert condition.compiled_to_python
    assert condition.holds(event={"a": 1, "b": 3}, state={}, recipient="") is True


def test_event_data_in_any_mapping_is_read() -> None:
    """``EventFacts.data`` is any Mapping; the subset reads one that is not a dict (CEL's
    library is only ever given what JSON decodes to)."""
    event = MappingProxyType({"data": MappingProxyType({"x": 1})})
    for source, expected in (
        ("event.data.x == 1", True),
        ("has(event.data.x)", True),
        ("has(event.data.y)", False),
    ):
        evaluate = compile_subset(source)
        assert evaluate is not None and evaluate(event, {}, "r") is expected


def test_the_cel_environment_is_built_on_first_use_with_the_three_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conditions, "_ENV", None)
    condition = Condition.compile('event.a == 1 && state.b == 2 && recipient == "r"')
    assert conditions._ENV is not None
    assert condition.holds_in_cel(event={"a": 1}, state={"b": 2}, recipient="r") is True


def test_a_condition_outside_the_subset_is_evaluated_by_cel_with_all_three() -> None:
    condition = Condition.compile('size(event.items) > 1 && state.b == 2 && recipient == "r"')
    assert not condition.compiled_to_python
    assert condition.holds(event={"items": [1, 2]}, state={"b": 2}, recipient="r") is True
    assert condition.holds(event={"items": [1, 2]}, state={"b": 2}, recipient="x") is False
    assert condition.holds(event={"items": [1, 2]}, state={"b": 3}, recipient="r") is False
    assert condition.holds(event={"items": [1]}, state={"b": 2}, recipient="r") is False


def test_a_condition_of_any_type_is_taken_and_must_give_a_bool() -> None:
    condition = Condition.compile("event.flag")  # dyn: a bool or not, known only then
    assert condition.holds(event={"flag": True}, state={}, recipient="") is True
    assert condition.holds(event={"flag": "yes"}, state={}, recipient="") is None
    with pytest.raises(ConditionError, match=r"^gives INT, not a boolean$"):
        Condition.compile("1")


def test_a_protocol_author_is_told_the_first_line_of_cels_complaint() -> None:
    with pytest.raises(ConditionError) as refused:
        Condition.compile("nothing.a == 1")
    assert str(refused.value) == (
        "ERROR: <input>:1:8: undeclared reference to 'nothing.a' (in container '')"
    )
