"""NHS number validation (modulus 11) and the canonical subject identifier."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy.devstack.demo import scenario
from services.backbone.identifiers import (
    alias_identifiers,
    is_valid_nhs_number,
    la_person_identifier,
    nhs_number_problem,
    normalise_nhs_number,
    subject_identifier,
    subject_identity,
    upn_identifier,
    upn_problem,
)
from tests.unit.strategies import check_digit, valid_nhs_numbers

LENGTH = "an NHS number is 10 digits"
CHECK = "the NHS number check digit does not match (modulus 11)"


@pytest.mark.parametrize(
    "number", [scenario.ON_PLAN.nhs_number, scenario.NOT_ON_PLAN.nhs_number, "9434765919"]
)
def test_known_valid_numbers(number: str) -> None:
    assert nhs_number_problem(number) is None
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize("typed", ["999 000 0123", "999-000-0123", " 9990000123 ", "999 000-0123"])
def test_spaces_and_hyphens_are_normalised_away(typed: str) -> None:
    assert normalise_nhs_number(typed) == "9990000123"
    assert is_valid_nhs_number(typed)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", LENGTH),
        ("999000012", LENGTH),
        ("99900001234", LENGTH),
        ("999000012X", LENGTH),
        ("9990000124", CHECK),
        ("9990000120", CHECK),
        # Stem 999000000 gives check 10: no digit completes it.
        *[(f"999000000{d}", CHECK) for d in "0123456789"],
    ],
)
def test_invalid_numbers_say_why(raw: str, problem: str) -> None:
    assert nhs_number_problem(raw) == problem
    assert not is_valid_nhs_number(raw)


def test_a_check_of_eleven_means_zero() -> None:
    assert check_digit("999000005") == 0
    assert is_valid_nhs_number("9990000050")
    assert not is_valid_nhs_number("9990000051")


def test_the_problem_never_repeats_the_number() -> None:
    for raw in ("9990000124", "99900001"):
        problem = nhs_number_problem(raw)
        assert problem is not None
        assert raw not in problem


def test_subject_identifier_is_over_the_normalised_number() -> None:
    assert subject_identifier(nhs_number="999 000 0123") == "nhs:9990000123"
    assert subject_identifier(nhs_number="9990000123") == subject_identifier(
        nhs_number="999-000-0123"
    )


@given(valid_nhs_numbers())
def test_generated_numbers_are_valid(number: str) -> None:
    assert is_valid_nhs_number(number)


@given(valid_nhs_numbers(), st.integers(0, 9), st.integers(1, 9))
def test_changing_any_single_digit_makes_a_valid_number_invalid(
    number: str, position: int, shift: int
) -> None:
    digit = (int(number[position]) + shift) % 10
    changed = number[:position] + str(digit) + number[position + 1 :]
    assert changed != number
    assert not is_valid_nhs_number(changed)


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_agrees_with_the_modulus_11_oracle(number: str) -> None:
    assert is_valid_nhs_number(number) == (check_digit(number[:9]) == int(number[9]))


@pytest.mark.parametrize("zero", [0xFF10, 0x0660], ids=["full-width", "arabic-indic"])
def test_only_ascii_digits_make_an_nhs_number(zero: int) -> None:
    number = "".join(chr(zero + int(d)) for d in scenario.ON_PLAN.nhs_number)
    assert not is_valid_nhs_number(number)


UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
upn_bodies = st.builds(
    lambda digits, last: digits + last,
    st.text("0123456789", min_size=11, max_size=11),
    st.sampled_from(list("0123456789" + UPN_LETTERS)),
)


def _check_letter(body: str) -> str:
    """Written out differently from the code under test: position weights from 2, letters by
    their place in the 23-letter alphabet."""
    total = 0
    for weight, char in enumerate(body, start=2):
        total += weight * (int(char) if char.isdigit() else UPN_LETTERS.index(char))
    return UPN_LETTERS[total % 23]


@pytest.mark.parametrize("upn", ["B801200005001", "b801 2000 05001", "B801-2000-05001"])
def test_a_known_valid_upn_passes_as_typed(upn: str) -> None:
    assert upn_problem(upn) is None
    assert upn_identifier(upn) == "upn:B801200005001"


@given(upn_bodies)
def test_exactly_one_check_letter_fits_each_upn(body: str) -> None:
    right = _check_letter(body)
    assert upn_problem(right + body) is None
    for wrong in set(UPN_LETTERS) - {right}:
        assert upn_problem(wrong + body) == "the UPN check letter does not match (modulus 23)"


@pytest.mark.parametrize(
    "raw", ["", "B80120000500", "B8012000050011", "X80120000A001", "I801200005001", "B80120000500S"]
)
def test_malformed_upns_are_refused_by_format(raw: str) -> None:
    assert upn_problem(raw) == (
        "a UPN is a check letter and 12 characters: 11 digits, then a digit or letter"
    )


def test_aliases_are_the_valid_identifiers_and_the_publishers_la_person_id() -> None:
    subject = {"nhs_number": "9434765919", "upn": "B801200005001", "la_person_id": " 12345 "}
    assert alias_identifiers(subject, "la-northshire") == [
        "nhs:9434765919",
        "upn:B801200005001",
        "la:la-northshire:12345",
    ]
    assert alias_identifiers({"upn": "A801200005001", "la_person_id": ""}, "x") == []
    assert la_person_identifier("la-a", "1") != la_person_identifier("la-b", "1")


@pytest.mark.parametrize(
    ("subject", "identity"),
    [
        ({"nhs_number": "9434765919", "upn": "B801200005001"}, "nhs:9434765919"),
        ({"upn": "b8012 0000 5001", "la_person_id": "7"}, "upn:B801200005001"),
        ({"la_person_id": " 7 "}, "la:la-a:7"),
        # The person index's founding identifier wins over the record's own.
        ({"nhs_number": "9434765919", "indexed_as": "upn:B801200005001"}, "upn:B801200005001"),
        ({"indexed_as": "la:la-b:NS-1"}, "la:la-b:NS-1"),
    ],
)
def test_the_subject_identity(subject: dict[str, str], identity: str) -> None:
    assert subject_identity(subject, "la-a") == identity


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ({}, "no NHS number, UPN or local authority person id"),
        ({"nhs_number": "9434765918"}, "subject.nhs_number: the NHS number check digit"),
        ({"upn": "B801200005002"}, "subject.upn"),
        ({"indexed_as": "nhs:9434765918"}, "indexed_as"),
        ({"indexed_as": "upn:b801200005001"}, "indexed_as"),
        ({"indexed_as": "la::x"}, "indexed_as"),
        ({"indexed_as": "person:1"}, "indexed_as"),
    ],
)
def test_a_subject_without_a_valid_identity_is_refused(
    subject: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        subject_identity(subject, "la-a")
