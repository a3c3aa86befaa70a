"""Map the school's native records to canonical education events. Pure functions.

Every event carries ``subject`` and ``school``:

| native (JSON; CSV column)                  | canonical                           |
| ------------------------------------------ | ----------------------------------- |
| pupil.upn; UPN                             | subject.upn                         |
| pupil.nhsNumber; NHS Number                | subject.nhs_number                  |
| pupil.forename; Legal Forename             | subject.given_name                  |
| pupil.surname; Legal Surname               | subject.family_name                 |
| pupil.dateOfBirth; DOB                     | subject.date_of_birth               |
| (the agency directory's name)              | school.name                         |
| school.urn; ?urn=                          | school.urn                          |
| school.dsl.*; ?dsl_name= ?dsl_role= ...    | school.dsl.*                        |

``education.attendance.concern``:

| native (JSON; CSV column)                  | canonical                                |
| ------------------------------------------ | ---------------------------------------- |
| period.start / end; ?period_start= / end=  | attendance.period.start / end            |
| possibleSessions; Possible Sessions        | attendance.possible_sessions             |
| authorisedAbsences; Authorised Absences    | attendance.authorised_absence_sessions   |
| unauthorisedAbsences; Unauthorised Abs...  | attendance.unauthorised_absence_sessions |
| (authorised + unauthorised)                | attendance.sessions_missed               |
| (from the sessions; attendancePercentage   | attendance.attendance_percentage         |
|  and Attendance % are only checked)        |                                          |
| (DfE: 10%+ missed, 50%+ missed)            | attendance.absence_level                 |
| absenceCodes[]; a column per code          | attendance.absence_codes[] code,         |
|                                            | sessions, category (from the DfE list)   |

``education.exclusion.recorded``:

| native (JSON; CSV column)                  | canonical                                |
| ------------------------------------------ | ---------------------------------------- |
| exclusion.category; Category               | exclusion.kind (suspension,              |
|                                            | permanent_exclusion)                     |
| exclusion.startDate; Start Date            | exclusion.start_date                     |
| exclusion.sessions; Sessions               | exclusion.sessions, exclusion.days (/2)  |
| exclusion.reasons[]; Reason, Reason 2, 3   | exclusion.reasons[] code, category       |

``education.missing_education.reported`` (JSON only):

| native                                     | canonical                                |
| ------------------------------------------ | ---------------------------------------- |
| report.lastSeenDate                        | missing_education.last_seen_date         |
| report.reason                              | missing_education.reason                 |
| report.reportedBy.role / name              | missing_education.reported_by.role / name|
| report.reportedDate                        | missing_education.reported_date          |

``education.safeguarding.concern`` (JSON only):

| native                                     | canonical                                |
| ------------------------------------------ | ---------------------------------------- |
| concern.id                                 | concern.concern_id                       |
| concern.category                           | concern.category                         |
| concern.summary                            | concern.summary                          |
| concern.date                               | concern.date                             |
| concern.referredToChildrensSocialCare      | concern.referred_to_childrens_social_care|
| concern.referralDate                       | concern.referral_date                    |

Each event's ``native_id`` (from which its id derives, so a re-sent record is the same
event) is the record's natural key: see :func:`attendance_native_id` and its neighbours.
"""

from __future__ import annotations

from typing import Any

from services.backbone.errors import InputRejected
from services.education import attendance
from services.education.codes import ATTENDANCE_CODES, exclusion_reason_category
from services.education.native import (
    AttendanceConcern,
    ChildMissingEducation,
    ExclusionRecorded,
    Pupil,
    SafeguardingConcern,
    School,
)

ATTENDANCE_CONCERN = "education.attendance.concern"
EXCLUSION_RECORDED = "education.exclusion.recorded"
MISSING_EDUCATION = "education.missing_education.reported"
SAFEGUARDING_CONCERN = "education.safeguarding.concern"


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def subject(pupil: Pupil) -> dict[str, Any]:
    return _drop_none(
        {
            "upn": pupil.upn,
            "nhs_number": pupil.nhs_number,
            "given_name": pupil.forename,
            "family_name": pupil.surname,
            "date_of_birth": pupil.date_of_birth.isoformat() if pupil.date_of_birth else None,
        }
    )


def school(native: School, *, name: str) -> dict[str, Any]:
    return {"name": name, "urn": native.urn, "dsl": native.dsl.model_dump(exclude_none=True)}


def attendance_concern(native: AttendanceConcern, *, school_name: str) -> dict[str, Any]:
    """The canonical attendance concern; InputRejected if the figures do not add up."""
    attendance.check_figures(native)
    if native.possible_sessions == 0:
        raise InputRejected(
            ["body", "possibleSessions"],
            "no session was possible in the period: there is no attendance to give concern",
            "attendance.no_sessions",
        )
    codes = [
        {
            "code": c.code,
            "sessions": c.sessions,
            "category": ATTENDANCE_CODES[c.code].category.value,
        }
        for c in native.absence_codes
        if c.sessions > 0
    ]
    return {
        "subject": subject(native.pupil),
        "school": school(native.school, name=school_name),
        "attendance": {
            "period": {
                "start": native.period.start.isoformat(),
                "end": native.period.end.isoformat(),
            },
            "attendance_percentage": attendance.attendance_percentage(native),
            "possible_sessions": native.possible_sessions,
            "sessions_missed": attendance.sessions_missed(native),
            "authorised_absence_sessions": native.authorised_absences,
            "unauthorised_absence_sessions": native.unauthorised_absences,
            "absence_level": attendance.absence_level(native),
            "absence_codes": codes,
        },
    }


def attendance_native_id(native: AttendanceConcern) -> str:
    period = native.period
    return f"attendance|{native.pupil.upn}|{period.start.isoformat()}|{period.end.isoformat()}"


def exclusion_recorded(native: ExclusionRecorded, *, school_name: str) -> dict[str, Any]:
    e = native.exclusion
    exclusion: dict[str, Any] = {
        "kind": "suspension" if e.category == "suspension" else "permanent_exclusion",
        "start_date": e.start_date.isoformat(),
        "reasons": [
            {"code": code, "category": exclusion_reason_category(code).value} for code in e.reasons
        ],
    }
    if e.sessions is not None:
        exclusion |= {"sessions": e.sessions, "days": e.sessions / 2}
    return {
        "subject": subject(native.pupil),
        "school": school(native.school, name=school_name),
        "exclusion": exclusion,
    }


def exclusion_native_id(native: ExclusionRecorded) -> str:
    e = native.exclusion
    return f"exclusion|{native.pupil.upn}|{e.start_date.isoformat()}|{e.category}"


def missing_education_reported(
    native: ChildMissingEducation, *, school_name: str
) -> dict[str, Any]:
    report = native.report
    return {
        "subject": subject(native.pupil),
        "school": school(native.school, name=school_name),
        "missing_education": {
            "last_seen_date": report.last_seen_date.isoformat(),
            "reason": report.reason,
            "reported_by": report.reported_by.model_dump(exclude_none=True),
            "reported_date": report.reported_date.isoformat(),
        },
    }


def missing_education_native_id(native: ChildMissingEducation) -> str:
    return f"missing|{native.pupil.upn}|{native.report.last_seen_date.isoformat()}"


def safeguarding_concern(native: SafeguardingConcern, *, school_name: str) -> dict[str, Any]:
    c = native.concern
    concern = _drop_none(
        {
            "concern_id": c.id,
            "category": c.category,
            "summary": c.summary,
            "date": c.raised_on.isoformat(),
            "referred_to_childrens_social_care": c.referred,
            "referral_date": c.referral_date.isoformat() if c.referral_date else None,
        }
    )
    return {
        "subject": subject(native.pupil),
        "school": school(native.school, name=school_name),
        "concern": concern,
    }


def safeguarding_concern_native_id(native: SafeguardingConcern) -> str:
    """The concern's own id in the school's safeguarding record system."""
    return native.concern.id
