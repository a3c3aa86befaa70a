"""The school's own JSON (camelCase), as a MIS or a safeguarding record system sends it.

The CSV uploads are parsed into these same models, so one set of rules checks both.
Validation errors name the field and the rule, never the value (it may be a child's name).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.backbone.http import Flag, IsoDate, NhsNumber, Number, Upn, WholeNumber
from services.education.codes import EXCLUSION_REASONS

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
URN = r"^[0-9]{6}$"
DSL_ROLE = "designated safeguarding lead"
SUMMARY_MAX = 2000
MAX_SESSIONS = 1000  # a school year has about 380 sessions (two a day)
SUSPENSION_MAX_SESSIONS = 90  # 45 school days: the most a pupil may be suspended in a year


class _Native(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


Name = Annotated[str, Field(min_length=1, max_length=100)]


class Pupil(_Native):
    upn: Upn = Field(description="unique pupil number: 13 characters, check letter validated")
    nhs_number: NhsNumber | None = Field(
        None, alias="nhsNumber", description="10 digits, check digit validated"
    )
    forename: Name | None = Field(None, description="legal forename")
    surname: Name | None = Field(None, description="legal surname")
    date_of_birth: IsoDate | None = Field(None, alias="dateOfBirth")


class DslContact(_Native):
    """Whom the recipient calls: the school's designated safeguarding lead (or deputy)."""

    name: str = Field(min_length=1, max_length=100)
    role: str = Field(DSL_ROLE, min_length=2, max_length=80)
    phone: str = Field(min_length=5, max_length=32)
    email: str | None = Field(None, pattern=EMAIL, max_length=254)


class School(_Native):
    urn: str = Field(pattern=URN, description="DfE unique reference number (6 digits)")
    dsl: DslContact


class Period(_Native):
    start: IsoDate
    end: IsoDate

    @model_validator(mode="after")
    def _in_order(self) -> Period:
        if self.end < self.start:
            raise PydanticCustomError("period.order", "the period ends before it starts")
        return self


Sessions = Annotated[WholeNumber, Field(ge=0, le=MAX_SESSIONS)]


class AbsenceCodeCount(_Native):
    code: str = Field(min_length=1, max_length=2, description="DfE attendance code")
    sessions: Sessions


class AttendanceConcern(_Native):
    """POST /attendance-concerns: a pupil's attendance over a period gives concern."""

    pupil: Pupil
    school: School
    period: Period
    possible_sessions: Sessions = Field(alias="possibleSessions")
    authorised_absences: Sessions = Field(alias="authorisedAbsences")
    unauthorised_absences: Sessions = Field(alias="unauthorisedAbsences")
    attendance_percentage: Number | None = Field(
        None,
        alias="attendancePercentage",
        ge=0,
        le=100,
        description="as the MIS reports it; checked against the sessions (within 1 point)",
    )
    absence_codes: list[AbsenceCodeCount] = Field(
        default_factory=list, alias="absenceCodes", max_length=40
    )


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _reason_code(code: str) -> str:
    if code not in EXCLUSION_REASONS:
        raise PydanticCustomError(
            "exclusion_reason.unknown", "not a DfE suspension or permanent exclusion reason code"
        )
    return code


ReasonCode = Annotated[str, BeforeValidator(_upper), AfterValidator(_reason_code)]


class Exclusion(_Native):
    category: Literal["suspension", "permanent"]
    start_date: IsoDate = Field(alias="startDate")
    sessions: WholeNumber | None = Field(
        None, ge=1, le=MAX_SESSIONS, description="half-day sessions; required for a suspension"
    )
    reasons: list[ReasonCode] = Field(
        min_length=1, max_length=3, description="census reason codes, the main reason first"
    )

    @model_validator(mode="after")
    def _coherent(self) -> Exclusion:
        if self.category == "suspension" and self.sessions is None:
            raise PydanticCustomError("exclusion.sessions", "a suspension needs its sessions")
        if self.category == "suspension" and (self.sessions or 0) > SUSPENSION_MAX_SESSIONS:
            raise PydanticCustomError(
                "exclusion.sessions", "a pupil may be suspended for at most 45 school days a year"
            )
        return self

    @field_validator("reasons")
    @classmethod
    def _distinct(cls, reasons: list[str]) -> list[str]:
        if len(set(reasons)) != len(reasons):
            raise PydanticCustomError("exclusion_reason.duplicate", "a reason is given twice")
        return reasons


class ExclusionRecorded(_Native):
    """POST /exclusions: a suspension or permanent exclusion."""

    pupil: Pupil
    school: School
    exclusion: Exclusion


MissingReason = Literal[
    "unknown_destination",
    "moved_abroad",
    "moved_within_uk_no_school_place",
    "home_education_not_notified",
    "failed_to_return_after_leave",
    "continuous_unauthorised_absence",
    "failed_to_take_up_place",
    "other",
]


class Reporter(_Native):
    role: Literal["school_staff", "parent_or_carer", "local_authority", "other_agency", "other"]
    name: str | None = Field(None, min_length=1, max_length=100)


class MissingReport(_Native):
    last_seen_date: IsoDate = Field(alias="lastSeenDate")
    reason: MissingReason
    reported_by: Reporter = Field(alias="reportedBy")
    reported_date: IsoDate = Field(alias="reportedDate")

    @model_validator(mode="after")
    def _in_order(self) -> MissingReport:
        if self.reported_date < self.last_seen_date:
            raise PydanticCustomError("report.order", "reported before the child was last seen")
        return self


class ChildMissingEducation(_Native):
    """POST /children-missing-education: a child of compulsory school age is missing."""

    pupil: Pupil
    school: School
    report: MissingReport


class Concern(_Native):
    id: str = Field(min_length=1, max_length=64, description="the concern's id in its system")
    category: Literal["neglect", "physical", "emotional", "sexual", "other"]
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX)
    raised_on: IsoDate = Field(alias="date", description="when the concern was raised")
    referred: Flag = Field(alias="referredToChildrensSocialCare")
    referral_date: IsoDate | None = Field(None, alias="referralDate")

    @model_validator(mode="after")
    def _referral(self) -> Concern:
        if self.referral_date is not None and not self.referred:
            raise PydanticCustomError("concern.referral", "a referral date needs a referral")
        if self.referral_date is not None and self.referral_date < self.raised_on:
            raise PydanticCustomError("concern.referral", "referred before it was raised")
        return self


class SafeguardingConcern(_Native):
    """POST /safeguarding-concerns: the DSL has recorded a safeguarding concern."""

    pupil: Pupil
    school: School
    concern: Concern
