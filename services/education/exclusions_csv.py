"""An exclusions export (one row per suspension or permanent exclusion) into native records.

Columns (headers match whatever their case and punctuation; aliases in brackets):

| column         | required | aliases                                            | values          |
| -------------- | -------- | -------------------------------------------------- | --------------- |
| UPN            | yes      | Unique Pupil Number, Pupil UPN                     | check letter    |
| Legal Surname  | no       | Surname, Last Name, Family Name                    |                 |
| Legal Forename | no       | Forename, First Name, Given Name                   |                 |
| DOB            | no       | Date of Birth, Birth Date                          | dd/mm/yyyy      |
| NHS Number     | no       | NHS No                                             | check digit     |
| Category       | yes      | Exclusion Category, Exclusion Type, Type           | see CATEGORIES  |
| Start Date     | yes      | Start, Exclusion Start Date, Date                  | dd/mm/yyyy      |
| Sessions       | no (1)   | Number of Sessions, No of Sessions, Total Sessions | half days, 1-90 |
| Reason         | yes      | Reason Code, Exclusion Reason, Reason 1            | DfE reason code |
| Reason 2       | no       | Reason Code 2                                      | DfE reason code |
| Reason 3       | no       | Reason Code 3                                      | DfE reason code |

(1) required for a suspension. A reason cell may hold the code alone (``PP``), the code and
its description (``PP - Physical assault against a pupil``) or the description alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.education.codes import EXCLUSION_REASONS
from services.education.csv_cells import (
    PUPIL_COLUMNS,
    PUPIL_LOCS,
    CellProblem,
    parse_count,
    parse_date,
    pupil_doc,
    read_cell,
    rejected,
    required_cell,
    validate_row,
)
from services.education.csv_export import MAX_ROWS, Column, locate, normalise_header, read_table
from services.education.native import ExclusionRecorded, School

# what MIS exports write in the category column (normalised) -> the native category
CATEGORIES = {
    **dict.fromkeys(
        ("suspension", "fixed period", "fixed term", "fixed period exclusion", "fixd"),
        "suspension",
    ),
    **dict.fromkeys(("lunchtime", "lunchtime suspension", "lnch"), "suspension"),
    **dict.fromkeys(("permanent", "permanent exclusion", "perm"), "permanent"),
}
CATEGORY = Column(
    "Category", ("exclusion category", "exclusion type", "type", "category of exclusion"), True
)
START = Column(
    "Start Date", ("start", "exclusion start date", "date", "start date of exclusion"), True
)
SESSIONS = Column(
    "Sessions", ("number of sessions", "no of sessions", "total sessions", "sessions excluded")
)
REASONS = (
    Column(
        "Reason",
        ("reason code", "exclusion reason", "reason 1", "reason code 1", "main reason"),
        True,
    ),
    Column("Reason 2", ("reason code 2", "second reason")),
    Column("Reason 3", ("reason code 3", "third reason")),
)
COLUMNS = (*PUPIL_COLUMNS, CATEGORY, START, SESSIONS, *REASONS)
_LOCS: dict[tuple[Any, ...], str] = {
    **PUPIL_LOCS,
    ("exclusion", "category"): CATEGORY.name,
    ("exclusion", "startDate"): START.name,
    ("exclusion", "sessions"): SESSIONS.name,
    ("exclusion", "reasons"): REASONS[0].name,
    ("exclusion",): SESSIONS.name,  # the only whole-record rules are about the sessions
}
_DESCRIPTIONS = {normalise_header(d): code for code, (d, _) in EXCLUSION_REASONS.items()}
_CODE_FIRST = re.compile(r"([A-Za-z]{2})(?:\s*[-:]\s*.*|\s+.*)?", re.DOTALL)


@dataclass(frozen=True)
class ExclusionRow:
    number: int
    record: ExclusionRecorded


def parse_category(text: str) -> str:
    category = CATEGORIES.get(normalise_header(text))
    if category is None:
        raise CellProblem("exclusion.category", "expected Suspension or Permanent")
    return category


def parse_reason(text: str) -> str:
    """A census reason code, from the code, ``code - description`` or the description."""
    if (code := _DESCRIPTIONS.get(normalise_header(text))) is not None:
        return code
    match = _CODE_FIRST.fullmatch(text)
    if match and match.group(1).upper() in EXCLUSION_REASONS:
        return match.group(1).upper()
    raise CellProblem(
        "exclusion_reason.unknown", "not a DfE suspension or permanent exclusion reason code"
    )


def parse_exclusions(
    body: bytes, *, school: School, max_rows: int = MAX_ROWS
) -> list[ExclusionRow]:
    """Every row of an exclusions export, checked; InputRejected names the first bad cell."""
    table = read_table(body, max_rows=max_rows)
    at = locate(table, COLUMNS)
    parsed: list[ExclusionRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for row in table.rows:
        pupil = pupil_doc(row, at)  # the pupil's cells first, as a person checks a row
        given = [(REASONS[0].name, required_cell(row, at, REASONS[0], parse_reason))]
        given += [
            (c.name, r)
            for c in REASONS[1:]
            if (r := read_cell(row, at, c, parse_reason)) is not None
        ]
        exclusion: dict[str, Any] = {
            "category": required_cell(row, at, CATEGORY, parse_category),
            "startDate": required_cell(row, at, START, parse_date),
            "reasons": [code for _, code in given],
        }
        if (sessions := read_cell(row, at, SESSIONS, parse_count)) is not None:
            exclusion["sessions"] = sessions
        doc = {
            "pupil": pupil,
            "school": school,  # validated once, not per row
            "exclusion": exclusion,
        }
        locs = {**_LOCS, **{("exclusion", "reasons", i): name for i, (name, _) in enumerate(given)}}
        record = validate_row(ExclusionRecorded, doc, row, locs)
        e = record.exclusion
        key = (record.pupil.upn, e.start_date.isoformat(), e.category)
        if (first := seen.setdefault(key, row.number)) != row.number:
            raise rejected(
                row,
                "UPN",
                f"the same exclusion (pupil, start, category) is on row {first}",
                "csv.duplicate_row",
            )
        parsed.append(ExclusionRow(row.number, record))
    return parsed
