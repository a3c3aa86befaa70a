"""Person identifiers: validation and normalisation. Pure functions, no I/O."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any

_NHS_RE = re.compile(r"[0-9]{10}")
_SEPARATORS = re.compile(r"[\s-]")
_WEIGHTS = range(10, 1, -1)


def normalise_nhs_number(raw: str) -> str:
    """Strip the spaces and hyphens people type (``943 476 5919``) and return ten digits."""
    return raw if _NHS_RE.fullmatch(raw) else _SEPARATORS.sub("", raw)


def nhs_number_problem(raw: str) -> str | None:
    """Why ``raw`` is not a valid NHS number, or None if it is.

    Modulus 11: digits 1-9 weighted 10 down to 2; check = 11 - (sum mod 11); 11 means 0
    and 10 means no valid number has this stem.
    """
    number = normalise_nhs_number(raw)
    if not _NHS_RE.fullmatch(number):
        return "an NHS number is 10 digits"
    total = sum(map(operator.mul, map(int, number[:9]), _WEIGHTS))
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


# The UPN's check letter and a temporary UPN's last character: A=0 ... Z=22, without I, O, S.
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
_UPN_VALUES = {**{str(d): d for d in range(10)}, **{c: i for i, c in enumerate(_UPN_LETTERS)}}
_UPN_RE = re.compile(rf"[{_UPN_LETTERS}][0-9]{{11}}[0-9{_UPN_LETTERS}]")


def normalise_upn(raw: str) -> str:
    """Upper case, without the spaces and hyphens people type."""
    return re.sub(r"[\s-]", "", raw).upper()


def upn_problem(raw: str) -> str | None:
    """Why ``raw`` is not a valid Unique Pupil Number, or None if it is.

    A check letter, then 12 characters: LA number (3), establishment (4), year (2) and a
    serial (3 digits, or 2 and a letter for a temporary UPN). The check letter is the sum of
    characters 2-13 weighted by their position (a temporary UPN's letter counts as its place
    in the alphabet above), modulo 23, as a letter of that alphabet (DfE's rule).
    """
    upn = normalise_upn(raw)
    if not _UPN_RE.fullmatch(upn):
        return "a UPN is a check letter and 12 characters: 11 digits, then a digit or letter"
    total = sum(_UPN_VALUES[c] * w for c, w in zip(upn[1:], range(2, 14), strict=True))
    if _UPN_LETTERS[total % 23] != upn[0]:
        return "the UPN check letter does not match (modulus 23)"
    return None


def upn_rule(raw: str) -> tuple[str, str] | None:
    """(rule, message) for an invalid UPN, for errors that name the rule broken."""
    problem = upn_problem(raw)
    if problem is None:
        return None
    return ("upn.check_letter" if problem.startswith("the UPN") else "upn.format"), problem


def upn_identifier(upn: str) -> str:
    return "upn:" + normalise_upn(upn)


def la_person_identifier(local_authority: str, person_id: str) -> str:
    """An LA person id is only unique within its local authority: the agency id names it."""
    return f"la:{local_authority}:{person_id.strip()}"


def alias_identifiers(subject: Mapping[str, Any], source_agency: str) -> list[str]:
    """The child's identifiers that an event's subject carries (a valid NHS number and UPN;
    the publishing LA's person id), in the canonical form aliases are keyed over. The caller
    leaves out the one the subject is keyed by."""
    found = []
    nhs = subject.get("nhs_number")
    if isinstance(nhs, str) and nhs_number_problem(nhs) is None:
        found.append(subject_identifier(nhs_number=nhs))
    upn = subject.get("upn")
    if isinstance(upn, str) and upn_problem(upn) is None:
        found.append(upn_identifier(upn))
    person = subject.get("la_person_id")
    if isinstance(person, str) and person.strip():
        found.append(la_person_identifier(source_agency, person))
    return found


def subject_identity(subject: Mapping[str, Any], source_agency: str) -> str:
    """The canonical identifier an event's subject is keyed by: its NHS number if it has
    one, else its UPN, else the publishing authority's person id. ValueError names the
    problem (never the value) when the subject has none of them valid.

    An agency service sets ``indexed_as`` from the person index: the identifier of the
    record that founded the child there, so that a child known to a school by UPN and to
    the NHS by NHS number is one subject once a record has carried both.
    """
    indexed = subject.get("indexed_as")
    if indexed is not None:
        return _canonical(str(indexed))
    nhs = subject.get("nhs_number")
    if nhs is not None:
        problem = nhs_number_problem(str(nhs))
        if problem:
            raise ValueError(f"subject.nhs_number: {problem}")
        return subject_identifier(nhs_number=str(nhs))
    upn = subject.get("upn")
    if upn is not None:
        problem = upn_problem(str(upn))
        if problem:
            raise ValueError(f"subject.upn: {problem}")
        return upn_identifier(str(upn))
    person = subject.get("la_person_id")
    if isinstance(person, str) and person.strip():
        return la_person_identifier(source_agency, person)
    raise ValueError("the subject has no NHS number, UPN or local authority person id")


def _canonical(identity: str) -> str:
    """A canonical identifier (``nhs:...``, ``upn:...``, ``la:<agency>:<id>``), checked."""
    kind, _, rest = identity.partition(":")
    if kind == "nhs" and nhs_number_problem(rest) is None and rest == normalise_nhs_number(rest):
        return identity
    if kind == "upn" and upn_problem(rest) is None and rest == normalise_upn(rest):
        return identity
    agency, _, person = rest.partition(":")
    if kind == "la" and agency and person.strip():
        return identity
    raise ValueError("subject.indexed_as is not a valid canonical identifier")
