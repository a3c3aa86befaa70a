"""Properties of the CSV uploads that must hold for every input: parsing raises nothing but
InputRejected, whatever the bytes; and no refusal ever quotes a cell (it may be a child's
name, date of birth, UPN or NHS number)."""

from __future__ import annotations

import contextlib
import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.backbone.errors import InputRejected
from services.education import attendance_csv, exclusions_csv
from services.education.attendance_csv import parse_attendance
from services.education.codes import ATTENDANCE_CODES
from services.education.exclusions_csv import parse_exclusions
from tests.unit.education_samples import AUTUMN, SCHOOL, sample

ATTENDANCE_HEADER = [
    "UPN",
    "Legal Surname",
    "Legal Forename",
    "DOB",
    "NHS Number",
    "Possible Sessions",
    "Attendance %",
    "Authorised Absences",
    "Unauthorised Absences",
    "I",
    "O",
    "H",
]
EXCLUSIONS_HEADER = [
    "UPN",
    "Surname",
    "Forename",
    "DOB",
    "Category",
    "Start Date",
    "Sessions",
    "Reason",
]
# Values a real export holds, valid or nearly so: each must never reach a message.
PERSONAL = [
    "H999400116001",
    "A999400116001",
    "K99940011504A",
    "H99940011600",
    "9990000123",
    "9990000124",
    "999 000 0123",
    "Testchild",
    "Démopupil",
    "Zoë",
    "Maisie",
    "09/04/2016",
    "31/02/2016",
    "2016-04-09",
]
OTHER = [
    "",
    "148",
    "88.5",
    "101",
    "9",
    "0",
    "-3",
    "1e3",
    "Suspension",
    "PERM",
    "VA",
    "OT",
    "PP - x",
]
# what a refusal's loc may say: where, and the documented column names
NAMES = {
    "row",
    "header",
    "body",
    *(c.name for c in (*attendance_csv.COLUMNS, *exclusions_csv.COLUMNS)),
    *ATTENDANCE_CODES,
}
MARK = "¤"  # no message contains it, so a marked cell found in one was echoed
cells = st.one_of(
    st.sampled_from(PERSONAL),
    st.sampled_from(OTHER),
    st.text(min_size=2, max_size=12).map(lambda t: MARK + t),
)


def parse_any(body: bytes) -> None:
    for parse in (
        lambda: parse_attendance(body, school=SCHOOL, period=AUTUMN),
        lambda: parse_exclusions(body, school=SCHOOL),
    ):
        with contextlib.suppress(InputRejected):
            parse()


@given(st.binary(max_size=3000))
def test_arbitrary_bytes_raise_nothing_but_input_rejected(body: bytes) -> None:
    parse_any(body)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_sample_exports_raise_nothing_but_input_rejected(data: st.DataObject) -> None:
    """The real samples with bytes cut out, replaced or inserted: closer to a real file
    than random bytes, so the reader's later stages are reached."""
    body = bytearray(sample(data.draw(st.sampled_from(["attendance.csv", "exclusions.csv"]))))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["cut", "replace", "insert"]))
        new = data.draw(st.binary(min_size=1, max_size=3))
        if action == "cut":
            del body[at : at + len(new)]
        elif action == "replace":
            body[at : at + len(new)] = new
        else:
            body[at:at] = new
    parse_any(bytes(body))


def write(header: list[str], rows: list[list[str]], *, quoted: bool) -> bytes:
    if not quoted:  # as a careless export would: commas and quotes inside cells unescaped
        return "\r\n".join(",".join(r) for r in [header, *rows]).encode()
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode()


@given(
    header=st.sampled_from([ATTENDANCE_HEADER, EXCLUSIONS_HEADER]),
    rows=st.lists(st.lists(cells, min_size=1, max_size=13), min_size=1, max_size=4),
    quoted=st.booleans(),
)
def test_no_refusal_quotes_a_cell(header: list[str], rows: list[list[str]], quoted: bool) -> None:
    body = write(header, rows, quoted=quoted)
    for parse in (
        lambda: parse_attendance(body, school=SCHOOL, period=AUTUMN),
        lambda: parse_exclusions(body, school=SCHOOL),
    ):
        try:
            parse()
        except InputRejected as exc:
            said = f"{exc.msg} {exc.loc}"
            assert MARK not in said
            for value in PERSONAL:
                assert value not in said
            assert all(isinstance(p, int) or p in NAMES for p in exc.loc)
