"""Exclusion exports: categories and reasons as MIS systems write them, and the rules of a
suspension, each refusal naming its row and column."""

from __future__ import annotations

from datetime import date

import pytest

from services.backbone.errors import InputRejected
from services.education.exclusions_csv import ExclusionRow, parse_exclusions
from tests.unit.education_samples import SCHOOL, export, sample

HEADER = "UPN,Surname,Forename,DOB,Category,Start Date,Sessions,Reason,Reason 2,Reason 3"
OLLIE = "X999400116002,Examplechild,Ollie,23/11/2014,Suspension,12/11/2026,4,VA,,"


def parse(body: bytes) -> list[ExclusionRow]:
    return parse_exclusions(body, school=SCHOOL)


def rejected(*rows: str, header: str = HEADER) -> InputRejected:
    with pytest.raises(InputRejected) as info:
        parse(export(header, *rows))
    return info.value


def test_reads_the_sample_export() -> None:
    rows = parse(sample("exclusions.csv"))
    assert [r.number for r in rows] == [2, 3, 4]
    ollie, zoe, rowan = (r.record for r in rows)
    assert ollie.exclusion.model_dump() == {
        "category": "suspension",
        "start_date": date(2026, 11, 12),
        "sessions": 4,
        "reasons": ["VA"],
    }
    assert (zoe.pupil.forename, zoe.exclusion.reasons) == ("Zoë", ["PP", "BU"])
    assert zoe.exclusion.category == "suspension"  # "Fixed Period", the old name
    assert (rowan.exclusion.category, rowan.exclusion.sessions) == ("permanent", None)
    assert all(r.record.school == SCHOOL for r in rows)


@pytest.mark.parametrize(
    ("written", "category"),
    [
        ("Suspension", "suspension"),
        ("fixed term", "suspension"),
        ("FIXD", "suspension"),
        ("Lunchtime", "suspension"),
        ("PERM", "permanent"),
        ("Permanent Exclusion", "permanent"),
    ],
)
def test_categories_as_exports_write_them(written: str, category: str) -> None:
    (row,) = parse(export(HEADER, OLLIE.replace("Suspension", written)))
    assert row.record.exclusion.category == category


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("VA", "VA"),
        ("va", "VA"),
        ("DB - Persistent or general disruptive behaviour", "DB"),
        ("OW: offensive weapon", "OW"),
        ("Persistent or general disruptive behaviour", "DB"),
        ("abuse relating to disability", "DS"),
    ],
)
def test_reasons_as_exports_write_them(written: str, code: str) -> None:
    (row,) = parse(export(HEADER, OLLIE.replace(",VA,", f",{written},")))
    assert row.record.exclusion.reasons == [code]


@pytest.mark.parametrize(
    ("old", "new", "column", "rule"),
    [
        (",VA,", ",OT,", "Reason", "exclusion_reason.unknown"),  # "other", withdrawn in 2020
        (",VA,", ",XX - Mystery,", "Reason", "exclusion_reason.unknown"),
        (",VA,,", ",VA,VA,", "Reason", "exclusion_reason.duplicate"),
        (",VA,,", ",VA,,QQ", "Reason 3", "exclusion_reason.unknown"),
        (",VA,", ",,", "Reason", "csv.missing_value"),
        ("Suspension", "Internal isolation", "Category", "exclusion.category"),
        (",4,", ",,", "Sessions", "exclusion.sessions"),
        (",4,", ",91,", "Sessions", "exclusion.sessions"),
        (",4,", ",0,", "Sessions", "greater_than_equal"),
        ("12/11/2026", "2026/11/12", "Start Date", "csv.date"),
        ("X999400116002", "X999400116003", "UPN", "upn.check_letter"),
    ],
)
def test_a_bad_cell_names_row_and_column(old: str, new: str, column: str, rule: str) -> None:
    error = rejected(OLLIE.replace(old, new))
    assert (error.loc, error.rule) == (["row", 2, column], rule)
    assert "Examplechild" not in error.msg and "X999400116003" not in error.msg


def test_a_permanent_exclusion_needs_no_sessions() -> None:
    (row,) = parse(export(HEADER, OLLIE.replace("Suspension", "Permanent").replace(",4,", ",,")))
    assert row.record.exclusion.sessions is None


def test_the_same_exclusion_twice_is_refused() -> None:
    error = rejected(OLLIE, OLLIE.replace(",4,", ",6,"))
    assert (error.loc, error.rule) == (["row", 3, "UPN"], "csv.duplicate_row")
    # the same pupil suspended again on another day is another exclusion
    assert len(parse(export(HEADER, OLLIE, OLLIE.replace("12/11/2026", "01/12/2026")))) == 2


def test_the_required_columns_are_named_when_missing() -> None:
    for column in ("UPN", "Category", "Start Date", "Reason"):
        error = rejected(OLLIE, header=HEADER.replace(f"{column},", "Head of Year,", 1))
        assert (error.loc, error.rule) == (["header", column], "csv.missing_column")
