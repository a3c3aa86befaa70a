"""An attendance export (one row per pupil for a period) into native attendance records.

Columns (headers match whatever their case and punctuation; aliases in brackets):

| column                 | required | aliases                                                    |
| ---------------------- | -------- | ---------------------------------------------------------- |
| UPN                    | yes      | Unique Pupil Number, Pupil UPN                             |
| Legal Surname          | no       | Surname, Last Name, Family Name                            |
| Legal Forename         | no       | Forename, First Name, Given Name                           |
| DOB                    | no       | Date of Birth, Birth Date (dd/mm/yyyy)                     |
| NHS Number             | no       | NHS No                                                     |
| Possible Sessions      | yes      | Possible, Sessions Possible                                |
| Attendance %           | no       | Attendance, % Attendance, Attendance Percentage            |
| Authorised Absences    | yes      | Authorised, Authorised Absence Sessions (or -ized)         |
| Unauthorised Absences  | yes      | Unauthorised, Unauthorised Absence Sessions (or -ized)     |
| one per DfE code       | no       | ``I``, ``Code I``: sessions recorded with that code        |

Code columns of absence (authorised, unauthorised, unable to attend) are carried; present,
approved-activity and administrative code columns are read and ignored; a blank code
cell is 0. Every row is checked (:func:`attendance.check_figures`) whether or not it gives
concern; one bad row rejects the upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.backbone.errors import InputRejected
from services.education.attendance import check_figures
from services.education.codes import ATTENDANCE_CODES
from services.education.csv_cells import (
    PUPIL_COLUMNS,
    PUPIL_LOCS,
    column_for,
    parse_count,
    parse_percentage,
    pupil_doc,
    read_cell,
    rejected,
    required_cell,
    validate_row,
)
from services.education.csv_export import MAX_ROWS, Column, Row, Table, locate, read_table
from services.education.native import AttendanceConcern, Period, School

_AUTH = ("authorised", "authorized")
POSSIBLE = Column(
    "Possible Sessions",
    ("possible", "sessions possible", "possible attendance sessions", "possible sessions total"),
    required=True,
)
PERCENT = Column(
    "Attendance %",
    (
        "attendance",
        "% attendance",
        "attendance percentage",
        "percentage attendance",
        "attendance pc",
    ),
)
AUTHORISED = Column(
    "Authorised Absences",
    tuple(f"{a}{s}" for a in _AUTH for s in (" absences", " absence", "", " absence sessions")),
    required=True,
)
UNAUTHORISED = Column(
    "Unauthorised Absences",
    tuple(f"un{a}{s}" for a in _AUTH for s in (" absences", " absence", "", " absence sessions")),
    required=True,
)
COLUMNS = (*PUPIL_COLUMNS, POSSIBLE, PERCENT, AUTHORISED, UNAUTHORISED)
_LOCS: dict[tuple[Any, ...], str] = {
    **PUPIL_LOCS,
    ("possibleSessions",): POSSIBLE.name,
    ("attendancePercentage",): PERCENT.name,
    ("authorisedAbsences",): AUTHORISED.name,
    ("unauthorisedAbsences",): UNAUTHORISED.name,
}


@dataclass(frozen=True)
class AttendanceRow:
    number: int  # the row's line in the file
    concern: AttendanceConcern


def code_columns(table: Table) -> dict[int, str]:
    """Column index -> DfE absence code, for headers ``I``, ``Code I`` or ``I code``."""
    found: dict[int, str] = {}
    for i, header in enumerate(table.headers):
        code = header.removeprefix("code ").removesuffix(" code").upper()
        known = ATTENDANCE_CODES.get(code)
        if known is not None and known.category.is_absence:
            if code in found.values():
                raise InputRejected(
                    ["header", code],
                    f"column {code} appears more than once",
                    "csv.duplicate_column",
                )
            found[i] = code
    return found


def _row_doc(
    row: Row, at: Mapping[str, int], codes: Mapping[int, str], school: School, period: Period
) -> dict[str, Any]:
    doc: dict[str, Any] = {  # read left to right, as a person checks a row
        "pupil": pupil_doc(row, at),
        "school": school,  # validated once, not per row
        "period": period,
        "possibleSessions": required_cell(row, at, POSSIBLE, parse_count),
        "authorisedAbsences": required_cell(row, at, AUTHORISED, parse_count),
        "unauthorisedAbsences": required_cell(row, at, UNAUTHORISED, parse_count),
    }
    counts = []
    for index, code in codes.items():
        sessions = read_cell(row, {code: index}, Column(code), parse_count) or 0
        if sessions:
            counts.append({"code": code, "sessions": sessions})
    doc["absenceCodes"] = counts
    percentage = read_cell(row, at, PERCENT, parse_percentage)
    if percentage is not None:
        doc["attendancePercentage"] = percentage
    return doc


def parse_attendance(
    body: bytes, *, school: School, period: Period, max_rows: int = MAX_ROWS
) -> list[AttendanceRow]:
    """Every row of an attendance export, checked; InputRejected names the first bad cell."""
    table = read_table(body, max_rows=max_rows)
    at = locate(table, COLUMNS)
    codes = code_columns(table)
    parsed: list[AttendanceRow] = []
    seen: dict[str, int] = {}
    for row in table.rows:
        doc = _row_doc(row, at, codes, school, period)
        locs = {
            **_LOCS,
            **{("absenceCodes", i): c["code"] for i, c in enumerate(doc["absenceCodes"])},
        }
        concern = validate_row(AttendanceConcern, doc, row, locs)
        try:
            check_figures(concern)
        except InputRejected as exc:
            raise rejected(row, column_for(tuple(exc.loc[1:]), locs), exc.msg, exc.rule) from None
        if (first := seen.setdefault(concern.pupil.upn, row.number)) != row.number:
            raise rejected(row, "UPN", f"the same pupil is on row {first}", "csv.duplicate_row")
        parsed.append(AttendanceRow(row.number, concern))
    return parsed
