"""The DfE code lists the education service validates against. Pure data and lookups.

Attendance codes: *Working together to improve school attendance* (statutory from
19 August 2024) and the School Attendance (Pupil Registration) (England) Regulations 2024.
Codes H (agreed holiday), J (interview, then an approved activity) and Y (enforced closure)
were withdrawn on 19 August 2024: they are accepted only for periods that start before it.

Exclusion reason codes: the school census suspension and permanent exclusion reasons in use
since 1 September 2020 (``OT``, "other", was withdrawn then and is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class AttendanceCategory(StrEnum):
    """How DfE statistics count a session recorded with the code."""

    PRESENT = "present"
    APPROVED_EDUCATIONAL_ACTIVITY = "approved_educational_activity"
    AUTHORISED_ABSENCE = "authorised_absence"
    UNAUTHORISED_ABSENCE = "unauthorised_absence"
    UNABLE_TO_ATTEND = "unable_to_attend"  # not a possible session
    ADMINISTRATIVE = "administrative"  # not a possible session

    @property
    def is_absence(self) -> bool:
        """Whether an attendance concern reports sessions recorded with codes of this kind."""
        return self in _ABSENCE


_ABSENCE = frozenset(
    {
        AttendanceCategory.AUTHORISED_ABSENCE,
        AttendanceCategory.UNAUTHORISED_ABSENCE,
        AttendanceCategory.UNABLE_TO_ATTEND,
    }
)


@dataclass(frozen=True)
class AttendanceCode:
    code: str
    meaning: str
    category: AttendanceCategory
    withdrawn: date | None = None  # no longer valid for sessions from this date


CODES_2024 = date(2024, 8, 19)
_A = AttendanceCategory
# (category, ((code, meaning), ...)), in the order the DfE guidance lists them
_CURRENT: tuple[tuple[AttendanceCategory, tuple[tuple[str, str], ...]], ...] = (
    (
        _A.PRESENT,
        (
            ("/", "present (morning)"),
            ("\\", "present (afternoon)"),
            ("L", "late, before the register closed"),
        ),
    ),
    (
        _A.APPROVED_EDUCATIONAL_ACTIVITY,
        (
            ("K", "education arranged by the local authority"),
            ("V", "educational visit or trip"),
            ("P", "approved sporting activity"),
            ("W", "work experience"),
            ("B", "other approved educational activity"),
            ("D", "dual registered, at the other school"),
        ),
    ),
    (
        _A.AUTHORISED_ABSENCE,
        (
            ("C1", "regulated performance or employment abroad"),
            ("M", "medical or dental appointment"),
            ("J1", "interview"),
            ("S", "study leave"),
            ("C2", "part-time timetable"),
            ("C", "leave of absence, exceptional circumstances"),
            ("T", "parent travelling for occupational purposes"),
            ("R", "religious observance"),
            ("I", "illness"),
            ("E", "suspended or excluded, no alternative provision"),
        ),
    ),
    (
        _A.UNABLE_TO_ATTEND,
        (
            ("Q", "lack of access arrangements"),
            ("Y1", "transport normally provided not available"),
            ("Y2", "widespread disruption to travel"),
            ("Y3", "part of the school premises closed"),
            ("Y4", "whole school site unexpectedly closed"),
            ("Y5", "criminal justice detention"),
            ("Y6", "public health guidance or law"),
            ("Y7", "any other unavoidable cause"),
        ),
    ),
    (
        _A.UNAUTHORISED_ABSENCE,
        (
            ("G", "holiday not granted by the school"),
            ("N", "reason not yet established"),
            ("O", "absent in other or unknown circumstances"),
            ("U", "arrived after the register closed"),
        ),
    ),
    (
        _A.ADMINISTRATIVE,
        (
            ("X", "not required to attend (non-compulsory school age)"),
            ("Z", "prospective pupil not yet on the admission register"),
            ("#", "planned whole or partial school closure"),
        ),
    ),
)
_WITHDRAWN = (
    AttendanceCode("H", "holiday agreed by the school", _A.AUTHORISED_ABSENCE, CODES_2024),
    AttendanceCode("J", "interview", _A.APPROVED_EDUCATIONAL_ACTIVITY, CODES_2024),
    AttendanceCode(
        "Y", "unable to attend, exceptional circumstances", _A.UNABLE_TO_ATTEND, CODES_2024
    ),
)
ATTENDANCE_CODES: dict[str, AttendanceCode] = {
    **{
        code: AttendanceCode(code, meaning, cat) for cat, rows in _CURRENT for code, meaning in rows
    },
    **{c.code: c for c in _WITHDRAWN},
}


def attendance_code_problem(code: str, *, period_start: date) -> tuple[str, str] | None:
    """(rule, message) if ``code`` is not a DfE attendance code for a period starting then."""
    known = ATTENDANCE_CODES.get(code)
    if known is None:
        return "attendance_code.unknown", "not a DfE attendance code"
    if known.withdrawn is not None and period_start >= known.withdrawn:
        return (
            "attendance_code.withdrawn",
            f"a DfE attendance code withdrawn on {known.withdrawn.isoformat()}",
        )
    return None


class ExclusionReasonCategory(StrEnum):
    PHYSICAL_ASSAULT = "physical_assault"
    VERBAL_ABUSE_OR_THREATS = "verbal_abuse_or_threats"
    OFFENSIVE_WEAPON = "offensive_weapon"
    BULLYING = "bullying"
    DISCRIMINATORY_ABUSE = "discriminatory_abuse"
    SEXUAL_MISCONDUCT = "sexual_misconduct"
    DRUGS_AND_ALCOHOL = "drugs_and_alcohol"
    DISRUPTIVE_BEHAVIOUR = "disruptive_behaviour"
    DAMAGE = "damage"
    THEFT = "theft"
    ONLINE_MISCONDUCT = "online_misconduct"
    PUBLIC_HEALTH_MEASURES = "public_health_measures"


_R = ExclusionReasonCategory
# code -> (the census description, the category an event carries)
EXCLUSION_REASONS: dict[str, tuple[str, ExclusionReasonCategory]] = {
    "PP": ("physical assault against a pupil", _R.PHYSICAL_ASSAULT),
    "PA": ("physical assault against an adult", _R.PHYSICAL_ASSAULT),
    "VP": ("verbal abuse or threatening behaviour against a pupil", _R.VERBAL_ABUSE_OR_THREATS),
    "VA": ("verbal abuse or threatening behaviour against an adult", _R.VERBAL_ABUSE_OR_THREATS),
    "OW": ("use or threat of use of an offensive weapon or prohibited item", _R.OFFENSIVE_WEAPON),
    "BU": ("bullying", _R.BULLYING),
    "RA": ("racist abuse", _R.DISCRIMINATORY_ABUSE),
    "LG": ("abuse against sexual orientation and gender identity", _R.DISCRIMINATORY_ABUSE),
    "DS": ("abuse relating to disability", _R.DISCRIMINATORY_ABUSE),
    "SM": ("sexual misconduct", _R.SEXUAL_MISCONDUCT),
    "DA": ("drug and alcohol related", _R.DRUGS_AND_ALCOHOL),
    "DB": ("persistent or general disruptive behaviour", _R.DISRUPTIVE_BEHAVIOUR),
    "DM": ("damage", _R.DAMAGE),
    "TH": ("theft", _R.THEFT),
    "MT": ("inappropriate use of social media or online technology", _R.ONLINE_MISCONDUCT),
    "PH": (
        "wilful and repeated transgression of protective measures to protect public health",
        _R.PUBLIC_HEALTH_MEASURES,
    ),
}


def exclusion_reason_category(code: str) -> ExclusionReasonCategory:
    """The category of a census exclusion reason code (KeyError if it is not one)."""
    return EXCLUSION_REASONS[code][1]
