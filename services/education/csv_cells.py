"""Cells of a MIS CSV export: counts, UK dates, percentages and the pupil's columns. Pure.

Each parser raises :class:`CellProblem` (a rule and a message, never the cell's text);
:func:`rejected` turns one into the 422 that names the row and the column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.backbone.errors import InputRejected
from services.education.csv_export import Column, Row

UPN = Column("UPN", ("unique pupil number", "pupil upn"), required=True)
SURNAME = Column(
    "Legal Surname", ("surname", "last name", "family name", "legal last name", "legal family name")
)
FORENAME = Column(
    "Legal Forename",
    ("forename", "first name", "given name", "legal first name", "legal given name"),
)
DOB = Column("DOB", ("date of birth", "birth date", "d o b"))
NHS = Column("NHS Number", ("nhs no", "nhs"))
PUPIL_COLUMNS = (UPN, SURNAME, FORENAME, DOB, NHS)
# where a native model's field comes from, for errors that name the column
PUPIL_LOCS: dict[tuple[str | int, ...], str] = {
    ("pupil", "upn"): UPN.name,
    ("pupil", "surname"): SURNAME.name,
    ("pupil", "forename"): FORENAME.name,
    ("pupil", "dateOfBirth"): DOB.name,
    ("pupil", "nhsNumber"): NHS.name,
}

_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:\s+00:00(?::00)?)?")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_COUNT = re.compile(r"(\d{1,6})(?:\.0+)?")
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%?")


class CellProblem(Exception):
    def __init__(self, rule: str, msg: str) -> None:
        super().__init__(msg)
        self.rule = rule
        self.msg = msg


def rejected(row: Row, column: str, msg: str, rule: str) -> InputRejected:
    """The 422 for a cell: ``loc`` ``["row", 7, "UPN"]``; the message says it in words."""
    return InputRejected(
        ["row", row.number, column], f"row {row.number}, column {column}: {msg}", rule
    )


def parse_count(text: str) -> int:
    """A number of sessions: digits (``12``; ``12.0`` as spreadsheets write it)."""
    match = _COUNT.fullmatch(text)
    if not match:
        raise CellProblem("csv.count", "expected a whole number of sessions")
    return int(match.group(1))


def parse_date(text: str) -> date:
    """dd/mm/yyyy as MIS exports write it (``-`` or ``.`` also; a midnight time ignored),
    or ISO 8601 yyyy-mm-dd. Two-digit years are refused: 01/02/16 could be 1916 or 2016."""
    if match := _DMY.fullmatch(text):
        day, month, year = (int(g) for g in match.groups())
    elif match := _ISO.fullmatch(text):
        year, month, day = (int(g) for g in match.groups())
    else:
        raise CellProblem("csv.date", "expected a date as dd/mm/yyyy")
    try:
        return date(year, month, day)
    except ValueError:
        raise CellProblem("csv.date", "not a real date (dd/mm/yyyy)") from None


def parse_percentage(text: str) -> float:
    """``85.3``, ``85.3%`` or ``85``: a percentage from 0 to 100."""
    match = _PERCENT.fullmatch(text)
    if not match or float(match.group(1)) > 100:
        raise CellProblem("csv.percentage", "expected a percentage from 0 to 100")
    return float(match.group(1))


T = TypeVar("T")


def read_cell(
    row: Row, at: Mapping[str, int], column: Column, parse: Callable[[str], T]
) -> T | None:
    """The parsed cell of ``column`` (None if the column is absent or the cell blank)."""
    text = row.cell(at.get(column.name))
    if not text:
        return None
    try:
        return parse(text)
    except CellProblem as problem:
        raise rejected(row, column.name, problem.msg, problem.rule) from None


def required_cell(row: Row, at: Mapping[str, int], column: Column, parse: Callable[[str], T]) -> T:
    value = read_cell(row, at, column, parse)
    if value is None:
        raise rejected(row, column.name, "a value is required", "csv.missing_value")
    return value


def pupil_doc(row: Row, at: Mapping[str, int]) -> dict[str, Any]:
    """The pupil's columns as the native JSON's ``pupil`` (blank cells left out)."""
    doc: dict[str, Any] = {
        "upn": required_cell(row, at, UPN, str),
        "surname": read_cell(row, at, SURNAME, str),
        "forename": read_cell(row, at, FORENAME, str),
        "dateOfBirth": read_cell(row, at, DOB, parse_date),
        "nhsNumber": read_cell(row, at, NHS, str),
    }
    return {k: v for k, v in doc.items() if v is not None}


M = TypeVar("M", bound=BaseModel)


def validate_row(
    model: type[M], doc: Mapping[str, Any], row: Row, locs: Mapping[tuple[Any, ...], str]
) -> M:
    """``doc`` validated as ``model``; the first error as a 422 naming row and column
    (``locs``: a native field's ``loc`` -> the column it comes from)."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        column = column_for(tuple(error["loc"]), locs)
        raise rejected(row, column, error["msg"], error["type"]) from None


def column_for(loc: tuple[Any, ...], table: Mapping[tuple[Any, ...], str]) -> str:
    """The column a native field's ``loc`` comes from: the longest prefix ``table`` knows."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in table:
            return table[loc[:end]]
    return "(row)"
