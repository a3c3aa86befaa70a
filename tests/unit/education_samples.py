"""Inputs of the education service's unit tests: the sample files under tests/data/education,
the school and period an upload names, and small builders of CSV exports and UPNs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from services.education.native import DslContact, Period, School

DATA = Path(__file__).resolve().parents[1] / "data" / "education"
SCHOOL = School(
    urn="999001",
    dsl=DslContact(name="Alex Teacher", phone="01632 960123", email="dsl@oakfield.example"),
)
SCHOOL_NAME = "Oakfield Academy, Northshire (designated safeguarding lead)"
AUTUMN = Period(start=date(2026, 9, 3), end=date(2026, 12, 18))
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"

# One pupil's attendance row and the header it goes under (a SIMS-like export).
HEADER = (
    "UPN,Legal Surname,Legal Forename,DOB,Possible Sessions,Attendance %,"
    "Authorised Absences,Unauthorised Absences,I,O"
)
MAISIE = "H999400116001,Testchild,Maisie,09/04/2016,148,88.5,9,8,9,8"
OLLIE = "X999400116002,Examplechild,Ollie,23/11/2014,148,97.3,4,0,4,0"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def sample_json(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(sample(name))
    return doc


def export(*lines: str, eol: str = "\r\n", encoding: str = "utf-8") -> bytes:
    """A CSV export as a MIS writes it: CRLF line ends by default."""
    return (eol.join(lines) + eol).encode(encoding)


def upn(body: str) -> str:
    """A UPN with its check letter (DfE modulus 23) for 12 characters of ``body``."""
    values = [int(c) if c.isdigit() else UPN_LETTERS.index(c) for c in body]
    return UPN_LETTERS[sum(v * w for v, w in zip(values, range(2, 14), strict=True)) % 23] + body
