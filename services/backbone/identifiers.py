"""Person identifiers: validation and normalisation. Pure functions, no I/O."""

from __future__ import annotations

import re

_NHS_RE = re.compile(r"[0-9]{10}")


def normalise_nhs_number(raw: str) -> str:
    """Strip the spaces and hyphens people type (``943 476 5919``) and return ten digits."""
    return re.sub(r"[\s-]", "", raw)


def nhs_number_problem(raw: str) -> str | None:
    """Why ``raw`` is not a valid NHS number, or None if it is.

    Modulus 11: digits 1-9 weighted 10 down to 2; check = 11 - (sum mod 11); 11 means 0
    and 10 means no valid number has this stem.
    """
    number = normalise_nhs_number(raw)
    if not _NHS_RE.fullmatch(number):
        return "an NHS number is 10 digits"
    total = sum(int(d) * w for d, w in zip(number[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10 or check != int(number[9]):
        return "the NHS number check digit does not match (modulus 11)"
    return None


def nhs_number_rule(raw: str) -> tuple[str, str] | None:
    """(rule, message) for an invalid NHS number, for errors that name the rule broken."""
    problem = nhs_number_problem(raw)
    if problem is None:
        return None
    rule = "nhs_number.check_digit" if "check digit" in problem else "nhs_number.format"
    return rule, problem


def is_valid_nhs_number(raw: str) -> bool:
    return nhs_number_problem(raw) is None


def subject_identifier(*, nhs_number: str) -> str:
    """The canonical string that routing keys and pseudonyms are computed over."""
    return "nhs:" + normalise_nhs_number(nhs_number)
