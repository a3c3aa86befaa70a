"""Field selection and transforms: allow-list projection by dotted path, generalisation."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.core.fields import (
    TransformError,
    get_path,
    leaf_paths,
    project,
    set_path,
)
from consent.core.generalise import generalise
from consent.core.model import FieldRule, Generalisation, RuleKind
from consent.core.paths import covering_paths, covers

DATA: dict[str, Any] = {
    "subject": {"nhs_number": "9990000123", "date_of_birth": "2016-04-09", "postcode": "NS1 4AP"},
    "attendance": {"site": {"ods_code": "RVR01", "name": "Riverside"}, "notes": "free text"},
    "empty": {},
    "tags": ["a", "b"],
}


ON = date(2026, 11, 20)


def allow(path: str, target: str | None = None) -> FieldRule:
    return FieldRule(RuleKind.ALLOW, path, target or path)


def test_get_path() -> None:
    assert get_path(DATA, "attendance.site.ods_code") == "RVR01"
    assert get_path(DATA, "attendance.site") == {"ods_code": "RVR01", "name": "Riverside"}
    missing = get_path(DATA, "attendance.site.address")
    assert get_path(DATA, "subject.nhs_number.digits") is missing
    assert get_path(DATA, "nothing") is missing
    assert missing is not None


def test_set_path_builds_the_parents() -> None:
    out: dict[str, Any] = {}
    set_path(out, "a.b.c", 1)
    set_path(out, "a.b.d", 2)
    set_path(out, "e", 3)
    assert out == {"a": {"b": {"c": 1, "d": 2}}, "e": 3}


def test_leaf_paths() -> None:
    assert list(leaf_paths(DATA)) == [
        "subject.nhs_number",
        "subject.date_of_birth",
        "subject.postcode",
        "attendance.site.ods_code",
        "attendance.site.name",
        "attendance.notes",
        "empty",
        "tags[*]",
    ]


@pytest.mark.parametrize(
    ("value", "to", "expected"),
    [
        ("2016-04-09", Generalisation.YEAR, "2016"),
        ("2016-04-09", Generalisation.MONTH, "2016-04"),
        ("2026-11-20T21:14:00Z", Generalisation.MONTH, "2026-11"),
        ("NS1 4AP", Generalisation.POSTCODE_DISTRICT, "NS1"),
        ("ns1 4ap", Generalisation.POSTCODE_DISTRICT, "NS1"),
        ("SW1A1AA", Generalisation.POSTCODE_DISTRICT, "SW1A"),
        ("EC1A 1BB", Generalisation.POSTCODE_DISTRICT, "EC1A"),
        ("M1 1AE", Generalisation.POSTCODE_DISTRICT, "M1"),
        (" B33 8TH ", Generalisation.POSTCODE_DISTRICT, "B33"),
    ],
)
def test_generalise(value: str, to: Generalisation, expected: str) -> None:
    assert generalise(value, to, on=ON) == expected


@pytest.mark.parametrize(
    ("value", "to"),
    [
        ("09/04/2016", Generalisation.YEAR),
        ("2016", Generalisation.MONTH),
        (20160409, Generalisation.YEAR),
        ("NS1", Generalisation.POSTCODE_DISTRICT),
        ("not a postcode", Generalisation.POSTCODE_DISTRICT),
        ("2016-04-09", Generalisation.POSTCODE_DISTRICT),
    ],
)
def test_generalise_refuses_what_it_cannot_coarsen(value: Any, to: Generalisation) -> None:
    with pytest.raises(TransformError) as info:
        generalise(value, to, on=ON)
    assert str(value).strip() not in str(info.value)


def test_project_keeps_only_what_the_rules_name() -> None:
    rules = (
        FieldRule(RuleKind.PSEUDONYMISE, "subject.nhs_number", "subject.pseudonym"),
        FieldRule(
            RuleKind.GENERALISE,
            "subject.date_of_birth",
            "subject.year_of_birth",
            Generalisation.YEAR,
        ),
        allow("attendance.site.ods_code", "site"),
        allow("absent.path"),
    )
    seen: list[str] = []

    def pseudonymise(path: str, value: str) -> str:
        seen.append(f"{path}={value}")
        return "pseudo-1"

    projection = project(DATA, rules, pseudonymise=pseudonymise)
    assert projection.payload == {
        "subject": {"pseudonym": "pseudo-1", "year_of_birth": "2016"},
        "site": "RVR01",
    }
    assert seen == ["subject.nhs_number=9990000123"]
    assert projection.disclosed == ("subject.year_of_birth", "site")
    assert projection.pseudonymised == ("subject.pseudonym",)
    assert projection.withheld == (
        "subject.postcode",
        "attendance.site.name",
        "attendance.notes",
        "empty",
        "tags[*]",
    )


def _keep(path: str, value: str) -> str:
    return value


def test_allowing_an_object_allows_all_of_it() -> None:
    projection = project(DATA, (allow("attendance.site"),), pseudonymise=_keep)
    assert projection.payload == {
        "attendance": {"site": {"ods_code": "RVR01", "name": "Riverside"}}
    }
    assert projection.disclosed == ("attendance.site",)
    assert "attendance.site.name" not in projection.withheld
    assert "attendance.notes" in projection.withheld


def test_no_rules_share_nothing() -> None:
    projection = project(DATA, (), pseudonymise=_keep)
    assert projection.payload == {}
    assert projection.withheld == tuple(leaf_paths(DATA))


def test_a_value_that_cannot_be_generalised_raises() -> None:
    rule = FieldRule(RuleKind.GENERALISE, "attendance.notes", "n", Generalisation.YEAR)
    with pytest.raises(TransformError):
        project(DATA, (rule,), pseudonymise=_keep)


def test_project_never_changes_its_input_nor_shares_objects_with_it() -> None:
    data = copy.deepcopy(DATA)
    rules = (
        allow("subject"),
        FieldRule(RuleKind.PSEUDONYMISE, "subject.nhs_number", "subject.pseudonym"),
    )
    first = project(data, rules, pseudonymise=lambda _p, _v: "p1")
    second = project(data, rules, pseudonymise=lambda _p, _v: "p2")
    assert data == DATA
    assert first.payload["subject"]["pseudonym"] == "p1"
    assert second.payload["subject"]["pseudonym"] == "p2"
    assert first.payload["subject"] is not data["subject"]


_SEGMENT = st.sampled_from(["a", "b", "ab", "codes", "c"])
_PATH = st.lists(st.tuples(_SEGMENT, st.booleans()), min_size=1, max_size=4).map(
    lambda parts: ".".join(name + ("[*]" if array else "") for name, array in parts)
)


@given(_PATH, st.lists(_PATH, max_size=6))
def test_a_leaf_is_covered_by_a_rule_set_exactly_when_one_rule_covers_it(
    leaf: str, rules: list[str]
) -> None:
    """The set test the projection uses agrees with ``covers`` rule by rule, prefixes that
    are not at a boundary (``a`` and ``ab``) included."""
    by_set = not frozenset(rules).isdisjoint(covering_paths(leaf))
    assert by_set is any(covers(rule, leaf) for rule in rules)
