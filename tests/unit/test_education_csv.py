"""Attendance exports as MIS systems write them: encodings, line ends, blank lines, header
spellings, extra columns; and every bad cell refused naming its row and column, never its
value."""

from __future__ import annotations

from datetime import date

import pytest

from services.backbone.errors import InputRejected
from services.education.attendance_csv import AttendanceRow, parse_attendance
from services.education.csv_export import MAX_BYTES, MAX_ROWS, UploadTooLarge, read_table
from services.education.native import Period
from tests.unit.education_samples import AUTUMN, HEADER, MAISIE, OLLIE, SCHOOL, export, sample


def parse(body: bytes, period: Period = AUTUMN, **kw: int) -> list[AttendanceRow]:
    return parse_attendance(body, school=SCHOOL, period=period, **kw)


def rejected(body: bytes, period: Period = AUTUMN) -> InputRejected:
    with pytest.raises(InputRejected) as info:
        parse(body, period)
    return info.value


def codes(row: AttendanceRow) -> dict[str, int]:
    return {c.code: c.sessions for c in row.concern.absence_codes}


def test_reads_the_sample_export_with_its_quirks() -> None:
    """BOM, CRLF, blank lines, quoted commas, trailing empty columns, unknown columns
    (Reg Group, Year) and a pupil no session was possible for."""
    rows = parse(sample("attendance.csv"))
    assert [r.number for r in rows] == [2, 3, 5, 6, 7, 8]  # line 4 is blank
    maisie = rows[0].concern
    assert maisie.pupil.model_dump() == {
        "upn": "H999400116001",
        "nhs_number": "9990000123",
        "forename": "Maisie",
        "surname": "Testchild",
        "date_of_birth": date(2016, 4, 9),
    }
    assert (maisie.possible_sessions, maisie.authorised_absences) == (148, 9)
    assert (maisie.unauthorised_absences, maisie.attendance_percentage) == (8, 88.5)
    # blank code cells are 0 and left out; present (/) and late (L) columns are not absence
    assert codes(rows[0]) == {"I": 7, "M": 2, "G": 3, "O": 5}
    assert rows[1].concern.pupil.nhs_number == "9990000239"  # typed with spaces
    assert (rows[3].concern.pupil.forename, rows[3].concern.pupil.surname) == ("Zoë", "Démopupil")
    assert rows[4].concern.pupil.surname == "O'Fictional"
    assert rows[5].concern.pupil.upn == "K99940011504A"  # a temporary UPN
    assert (rows[5].concern.possible_sessions, rows[5].concern.attendance_percentage) == (0, None)
    assert all(r.concern.school == SCHOOL and r.concern.period == AUTUMN for r in rows)


def test_a_windows_1252_export_reads_as_its_utf8_twin() -> None:
    assert sample("attendance-windows-1252.csv") != sample("attendance.csv")
    assert parse(sample("attendance-windows-1252.csv")) == parse(sample("attendance.csv"))


@pytest.mark.parametrize(
    "body",
    [
        export(HEADER, MAISIE, OLLIE, eol="\n"),
        export(HEADER, MAISIE, OLLIE, eol="\r\n"),
        b"\xef\xbb\xbf" + export(HEADER, MAISIE, OLLIE),
        export("", HEADER, "", "  ", MAISIE, ",,,,", OLLIE, "", ""),
        export(HEADER + ",,,", MAISIE + ",,,", OLLIE),
        export(HEADER, MAISIE, OLLIE).rstrip(b"\r\n"),  # no line end after the last row
    ],
    ids=["lf", "crlf", "bom", "blank-lines", "trailing-empty-columns", "no-final-eol"],
)
def test_line_ends_byte_order_marks_and_blank_lines_do_not_matter(body: bytes) -> None:
    rows = parse(body)
    assert [r.concern.pupil.upn for r in rows] == ["H999400116001", "X999400116002"]
    assert codes(rows[0]) == {"I": 9, "O": 8}


def test_quoted_cells_may_hold_commas_quotes_and_line_breaks() -> None:
    body = export(
        HEADER + ",Reg Group,Notes",
        MAISIE + ',"4T, Willow","Said ""fine"",\r\nthen left"',
        OLLIE + ',"6E, Elm",',
    )
    rows = parse(body)
    assert [r.number for r in rows] == [2, 4]  # row 2 spans lines 2 and 3
    assert rows[0].concern.pupil.surname == "Testchild"


def test_headers_match_whatever_their_case_spacing_and_alias() -> None:
    header = (
        " upn ,SURNAME,first_name,Date of Birth,possible,ATTENDANCE (%),"
        "Authorized Absence,unauthorised,Code I,o code,Year"
    )
    (row,) = parse(export(header, MAISIE + ",4"))
    assert (row.concern.pupil.forename, row.concern.pupil.date_of_birth) == (
        "Maisie",
        date(2016, 4, 9),
    )
    assert (row.concern.authorised_absences, row.concern.unauthorised_absences) == (9, 8)
    assert codes(row) == {"I": 9, "O": 8}


def test_names_dob_and_percentage_columns_are_optional() -> None:
    (row,) = parse(
        export(
            "UPN,Possible Sessions,Authorised Absences,Unauthorised Absences",
            "H999400116001,148,9,8",
        )
    )
    assert row.concern.pupil.surname is None and row.concern.attendance_percentage is None


def test_dates_may_be_iso_or_carry_a_midnight_time() -> None:
    for dob in ("2016-04-09", "9/4/2016", "09-04-2016", "09/04/2016 00:00:00"):
        line = MAISIE.replace("09/04/2016", dob)
        assert parse(export(HEADER, line))[0].concern.pupil.date_of_birth == date(2016, 4, 9)


def test_a_bad_upn_names_its_row_and_column_never_the_value() -> None:
    error = rejected(export(HEADER, OLLIE, MAISIE.replace("H999400116001", "A999400116001")))
    assert error.loc == ["row", 3, "UPN"]
    assert error.rule == "upn.check_letter"
    assert error.msg == "row 3, column UPN: the UPN check letter does not match (modulus 23)"
    for value in ("A999400116001", "999400116001", "Testchild", "Maisie"):
        assert value not in error.msg


@pytest.mark.parametrize(
    ("column", "old", "new", "rule"),
    [
        ("UPN", "H999400116001", "H99940011600", "upn.format"),
        ("DOB", "09/04/2016", "31/02/2016", "csv.date"),
        ("DOB", "09/04/2016", "09/04/16", "csv.date"),
        ("Legal Surname", "Testchild", "Testchild" * 12, "string_too_long"),
        ("Possible Sessions", ",148,", ",about 148,", "csv.count"),
        ("Attendance %", "88.5", "188.5", "csv.percentage"),
        ("Authorised Absences", ",9,8,9", ",,8,9", "csv.missing_value"),
        ("I", "8,9,8", "8,nine,8", "csv.count"),
        ("UPN", "H999400116001", "", "csv.missing_value"),
    ],
)
def test_a_bad_cell_names_row_and_column_never_the_value(
    column: str, old: str, new: str, rule: str
) -> None:
    error = rejected(export(HEADER, OLLIE, MAISIE.replace(old, new, 1)))
    assert (error.loc, error.rule) == (["row", 3, column], rule)
    assert error.msg.startswith(f"row 3, column {column}: ")
    if new.strip(","):
        assert new.strip(",") not in error.msg


def test_a_bad_nhs_number_is_refused_without_echoing_it() -> None:
    body = export(HEADER + ",NHS No", MAISIE + ",9990000124")
    error = rejected(body)
    assert (error.loc, error.rule) == (["row", 2, "NHS Number"], "nhs_number.check_digit")
    assert "9990000124" not in error.msg


def test_a_missing_column_is_named() -> None:
    header = HEADER.replace("Possible Sessions,", "")
    error = rejected(export(header, "H999400116001,Testchild,Maisie,09/04/2016,88.5,9,8,9,8"))
    assert (error.loc, error.rule) == (["header", "Possible Sessions"], "csv.missing_column")
    assert error.msg == "missing column Possible Sessions"


def test_one_column_under_two_names_is_refused() -> None:
    error = rejected(export(HEADER + ",Surname", MAISIE + ",Testchild"))
    assert (error.loc, error.rule) == (["header", "Legal Surname"], "csv.duplicate_column")


def test_a_row_longer_than_the_header_is_refused() -> None:
    """An unquoted comma in a name shifts every cell after it: refuse, never guess."""
    error = rejected(export(HEADER, MAISIE.replace("Testchild", "Testchild, Jr")))
    assert (error.loc, error.rule) == (["row", 2], "csv.extra_cells")
    assert "Jr" not in error.msg


@pytest.mark.parametrize(
    ("body", "loc", "rule"),
    [
        (export(HEADER, MAISIE.replace("Maisie", '"Maisie')), ["row", 2], "csv.syntax"),
        (export(HEADER, MAISIE.replace("Maisie", '"Mai"sie')), ["row", 2], "csv.syntax"),
        (b"UPN\r\n\x81\x8d\x8f\x90\x9d\r\n", ["body"], "csv.encoding"),
        (export(HEADER, MAISIE, encoding="utf-16"), ["body"], "csv.encoding"),
        (b"UPN,Possible\x00 Sessions\r\n", ["body"], "csv.syntax"),
        (b"", ["body"], "csv.empty"),
        (b"\xef\xbb\xbf\r\n \r\n,,,\r\n", ["body"], "csv.empty"),
    ],
    ids=["unterminated-quote", "text-after-quote", "not-text", "utf-16", "nul", "empty", "blank"],
)
def test_what_is_not_csv_is_refused(body: bytes, loc: list[object], rule: str) -> None:
    error = rejected(body)
    assert (error.loc, error.rule) == (loc, rule)


def test_a_header_without_rows_reads_as_nothing() -> None:
    assert parse(export(HEADER)) == []


def test_the_same_pupil_twice_is_refused() -> None:
    error = rejected(
        export(HEADER, MAISIE, OLLIE, MAISIE.replace("H999400116001", "h999 4001 16001"))
    )
    assert (error.loc, error.rule) == (["row", 4, "UPN"], "csv.duplicate_row")
    assert error.msg == "row 4, column UPN: the same pupil is on row 2"


def test_over_5_mb_is_too_large_before_it_is_read() -> None:
    with pytest.raises(UploadTooLarge) as info:
        parse(export(HEADER) + b"\xff" * MAX_BYTES)  # not even decodable: never looked at
    assert (info.value.loc, info.value.rule) == (["body"], "upload.too_large")


def test_over_20000_rows_is_too_large() -> None:
    assert MAX_ROWS == 20_000
    assert len(read_table(b"UPN\n" + b"x\n" * MAX_ROWS).rows) == MAX_ROWS
    with pytest.raises(UploadTooLarge) as info:
        read_table(b"UPN\n" + b"x\n" * (MAX_ROWS + 1))
    assert info.value.rule == "upload.too_many_rows"
    with pytest.raises(UploadTooLarge):
        parse(export(HEADER, MAISIE, OLLIE), max_rows=1)


def test_withdrawn_codes_are_refused_for_periods_from_august_2024() -> None:
    header, row = HEADER + ",H", MAISIE.replace(",9,8,9,8", ",9,8,7,8") + ",2"
    error = rejected(export(header, row))
    assert (error.loc, error.rule) == (["row", 2, "H"], "attendance_code.withdrawn")
    summer_2024 = Period(start=date(2024, 4, 15), end=date(2024, 7, 23))
    (before,) = parse(export(header, row), summer_2024)
    assert codes(before) == {"I": 7, "O": 8, "H": 2}
    # a withdrawn code's column of zeros is no problem (exports list every code)
    assert parse(export(header, MAISIE + ",0"))[0].concern.absence_codes[-1].code == "O"


@pytest.mark.parametrize(
    ("old", "new", "column", "rule"),
    [
        (",148,88.5,9,8,9,8", ",16,88.5,9,8,9,8", "Possible Sessions", "attendance.sessions"),
        (",9,8,9,8", ",9,8,10,8", "Authorised Absences", "attendance.code_sessions"),
        (",9,8,9,8", ",9,8,9,9", "Unauthorised Absences", "attendance.code_sessions"),
        ("88.5", "95.0", "Attendance %", "attendance.percentage"),
    ],
)
def test_figures_that_contradict_each_other_are_refused(
    old: str, new: str, column: str, rule: str
) -> None:
    error = rejected(export(HEADER, MAISIE.replace(old, new)))
    assert (error.loc, error.rule) == (["row", 2, column], rule)


def test_a_rounded_percentage_within_a_point_is_accepted() -> None:
    for reported in ("88", "89.4", "88.51%"):
        assert parse(export(HEADER, MAISIE.replace("88.5", reported)))
