"""Rules over arrays and over data held in any mapping (consent/core/paths.py, through
``project`` and the dry run's ``outline``), each found by a mutant `make mutate` saw
survive (docs/mutation.md): an array under an object, a field some elements lack, arrays of
scalars, something else where an array should be, and paths one to four fields deep."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from consent.core.fields import Projection, compiled
from consent.core.model import FieldRule, RuleKind

A, P = RuleKind.ALLOW, RuleKind.PSEUDONYMISE


def _both(data: Mapping[str, Any], *rules: FieldRule) -> tuple[Projection, list[str]]:
    """``project``'s result, having checked the dry run lists the same; and the paths the
    keyed transform was given."""
    seen: list[str] = []

    def keyed(path: str, value: str) -> str:
        seen.append(path)
        return f"k({value})"

    rules_ = compiled(tuple(rules))
    real = rules_.project(data, pseudonymise=keyed)
    dry = rules_.outline(data, pseudonymise=_blank, tokenise=_blank, encrypt=_blank)
    assert (dry.disclosed, dry.pseudonymised) == (real.disclosed, real.pseudonymised)
    return real, seen


def _blank(_path: str, _value: str) -> str:
    return ""


def test_a_field_of_each_element_of_an_array_under_an_object() -> None:
    data = {"a": {"items": [{"code": 1, "x": 2}, {"code": 4}, {"x": 3}], "other": 5}}
    got, _ = _both(data, FieldRule(A, "a.items[*].code", "a.items[*].kind"))
    assert got.payload == {"a": {"items": [{"kind": 1}, {"kind": 4}, {}]}}
    assert got.disclosed == ("a.items[*].kind",)
    assert got.withheld == ("a.items[*].x", "a.other")


def test_an_array_of_scalars_is_transformed_element_by_element() -> None:
    got, seen = _both({"a": {"tags": ["x", "y"]}}, FieldRule(P, "a.tags[*]", "a.tags[*]"))
    assert got.payload == {"a": {"tags": ["k(x)", "k(y)"]}}
    assert got.pseudonymised == ("a.tags[*]",) and seen == ["a.tags[*]", "a.tags[*]"]


@pytest.mark.parametrize(
    "data",
    [
        {"a": {}},  # no array
        {"a": {"items": "not a list"}},
        {"a": {"items": {"code": 1}}},
        {"a": ["items"]},  # not an object where one should be
        {"a": "items"},
        {"a": {"items": [{"x": 1}, "code", 7]}},  # no element has the field
        {},
    ],
)
def test_nothing_is_found_where_the_path_does_not_lead(data: dict[str, Any]) -> None:
    got, _ = _both(data, FieldRule(A, "a.items[*].code", "a.items[*].code"))
    assert got.disclosed == ()
    assert not _leaves(got.payload)


def _leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [] if node is None else [node]


def test_arrays_within_arrays_stay_aligned() -> None:
    data = {"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": []}, {"b": [{"d": 3}, {"c": 4}]}]}
    got, _ = _both(data, FieldRule(A, "a[*].b[*].c", "a[*].b[*].c"))
    assert got.payload == {"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": []}, {"b": [{}, {"c": 4}]}]}


DEEP = {"t": "u", "a": {"b": {"c": {"d": "v"}, "e": "z"}, "x": "y"}}
PATHS = ["t", "a.x", "a.b.e", "a.b.c.d"]  # one to four fields deep


def _proxied(node: Any) -> Any:
    if isinstance(node, dict):
        return MappingProxyType({k: _proxied(v) for k, v in node.items()})
    return node


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("missing", ["", ".nothing"])
def test_a_path_reads_the_same_from_any_mapping_at_any_depth(path: str, missing: str) -> None:
    """Event data decoded from JSON is dicts; a rule reads a value the same from any
    Mapping."""
    rule = FieldRule(A, path + missing, path + missing)
    from_dicts, _ = _both(DEEP, rule)
    from_mappings, _ = _both(_proxied(DEEP), rule)
    assert from_mappings.payload == from_dicts.payload
    assert (
        from_mappings.disclosed == from_dicts.disclosed == ((rule.target,) if not missing else ())
    )


@pytest.mark.parametrize("path", ["x", "x.y", "x.y.z", "x.y.z.w"])
def test_a_field_that_is_null_is_found_and_one_that_is_absent_is_not(path: str) -> None:
    *parents, last = path.split(".")
    null: dict[str, Any] = {last: None}
    for name in reversed(parents):
        null = {name: null}
    rule = FieldRule(A, path, path)
    assert _both(null, rule)[0].disclosed == (path,)
    assert _both({}, rule)[0].disclosed == ()
    assert _both({"x": "scalar"}, rule)[0].disclosed == (("x",) if path == "x" else ())
