"""Attendance figures: the DfE absence measures, their consistency, the concern threshold.

DfE measures, over the sessions a pupil could have attended (possible sessions):
- sessions missed = authorised + unauthorised absence sessions (codes of pupils unable to
  attend, and administrative codes, are not possible sessions, so they are never missed);
- attendance % = (possible - missed) / possible;
- **persistent absence**: missing 10% or more of possible sessions (attendance of 90% or
  less); **severe absence**: missing 50% or more.

A pupil's attendance gives concern when it is at or below the threshold (default 90%, the
persistent absence line). Pure functions; problems are raised as :class:`InputRejected`
with a ``loc`` into the native JSON (``["body", "possibleSessions"]``), which the CSV reader
translates to the row and column.
"""

from __future__ import annotations

from typing import Literal

from services.backbone.errors import InputRejected
from services.education.codes import ATTENDANCE_CODES, AttendanceCategory, attendance_code_problem
from services.education.native import AttendanceConcern

DEFAULT_THRESHOLD = 90.0
PERCENTAGE_TOLERANCE = 1.0  # points between the MIS's rounded figure and the sessions'
AbsenceLevel = Literal["not_persistent", "persistent", "severe"]


def sessions_missed(concern: AttendanceConcern) -> int:
    return concern.authorised_absences + concern.unauthorised_absences


def attendance_percentage(concern: AttendanceConcern) -> float:
    """Attendance over the period, to one decimal place (0.0 if no session was possible)."""
    possible = concern.possible_sessions
    if possible == 0:
        return 0.0
    return round((possible - sessions_missed(concern)) * 100 / possible, 1)


def absence_level(concern: AttendanceConcern) -> AbsenceLevel:
    """DfE persistent (10%+ of sessions missed) or severe (50%+) absence."""
    missed, possible = sessions_missed(concern), concern.possible_sessions
    if possible and missed * 2 >= possible:
        return "severe"
    if possible and missed * 10 >= possible:
        return "persistent"
    return "not_persistent"


def is_concern(concern: AttendanceConcern, *, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Whether attendance is at or below ``threshold`` percent, on exact session counts."""
    possible = concern.possible_sessions
    return possible > 0 and (possible - sessions_missed(concern)) * 100 <= threshold * possible


def check_figures(concern: AttendanceConcern) -> None:
    """Raise InputRejected if the figures contradict each other or a code is not DfE's."""
    if sessions_missed(concern) > concern.possible_sessions:
        raise InputRejected(
            ["body", "possibleSessions"],
            "fewer possible sessions than authorised and unauthorised absences together",
            "attendance.sessions",
        )
    # the sessions of each category's codes must fit within its total
    totals = {
        AttendanceCategory.AUTHORISED_ABSENCE: ("authorisedAbsences", concern.authorised_absences),
        AttendanceCategory.UNAUTHORISED_ABSENCE: (
            "unauthorisedAbsences",
            concern.unauthorised_absences,
        ),
    }
    code_sessions = dict.fromkeys(totals, 0)
    seen: set[str] = set()
    for i, count in enumerate(concern.absence_codes):
        loc: list[str | int] = ["body", "absenceCodes", i, "code"]
        problem = attendance_code_problem(count.code, period_start=concern.period.start)
        if problem:
            raise InputRejected(loc, problem[1], problem[0])
        category = ATTENDANCE_CODES[count.code].category
        if not category.is_absence:
            raise InputRejected(
                loc, "a DfE attendance code, but not one of absence", "attendance_code.not_absence"
            )
        if count.code in seen:
            raise InputRejected(loc, "the code is given twice", "attendance_code.duplicate")
        seen.add(count.code)
        if category in code_sessions:
            code_sessions[category] += count.sessions
    for category, (field, total) in totals.items():
        if code_sessions[category] > total:
            raise InputRejected(
                ["body", field],
                f"fewer than the sessions recorded with {category.value.replace('_', ' ')} codes",
                "attendance.code_sessions",
            )
    reported = concern.attendance_percentage
    if reported is not None and concern.possible_sessions > 0:
        exact = (concern.possible_sessions - sessions_missed(concern)) * 100
        if abs(reported * concern.possible_sessions - exact) > (
            PERCENTAGE_TOLERANCE * concern.possible_sessions
        ):
            raise InputRejected(
                ["body", "attendancePercentage"],
                "does not match the sessions (possible less absences, within 1 point)",
                "attendance.percentage",
            )
