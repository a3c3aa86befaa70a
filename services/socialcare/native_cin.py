"""The case system's JSON for the children in need pathway (camelCase): a referral and the
decision on it, an assessment and what it found, and the closure of a case.

Codes are the DfE children in need census's (:mod:`services.socialcare.codes.cin_census`);
outcomes and assessment types are this integration's own small vocabularies.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from services.backbone.http import IsoDate
from services.socialcare.codes import cin_census
from services.socialcare.native import Contact
from services.socialcare.native_common import NativeModel, OnList, Person, RecordId

ReferralSource = Annotated[str, OnList(cin_census.REFERRAL_SOURCE)]
PrimaryNeed = Annotated[str, OnList(cin_census.PRIMARY_NEED)]
AssessmentFactor = Annotated[str, OnList(cin_census.ASSESSMENT_FACTOR)]
ClosureReason = Annotated[str, OnList(cin_census.CLOSURE_REASON)]

ReferralOutcome = Literal[
    "no_further_action", "information_and_advice", "early_help", "single_assessment",
    "strategy_discussion",
]  # fmt: skip
AssessmentType = Literal["single_assessment", "s47_enquiry"]
AssessmentOutcome = Literal[
    "no_further_action", "early_help", "child_in_need_plan", "strategy_discussion",
    "child_protection_conference", "looked_after",
]  # fmt: skip
AgencyId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]


class Referral(NativeModel):
    id: RecordId
    received_date: IsoDate = Field(alias="receivedDate")
    source: ReferralSource = Field(description="CIN census referral source code (1A to 10)")
    primary_need: PrimaryNeed = Field(
        alias="primaryNeed", description="CIN census primary need code (N0 to N9)"
    )
    outcome: ReferralOutcome = Field(description="the decision on the referral")
    referrer_agency: AgencyId | None = Field(
        None,
        alias="referrerAgency",
        description="the referring organisation's infoshare agency id, when it is connected "
        "to infoshare (so it can be told the outcome of its referral)",
    )


class ReferralReceived(NativeModel):
    """POST body: a referral has been received and decided on."""

    child: Person
    referral: Referral
    contact: Contact


class Assessment(NativeModel):
    id: RecordId
    type: AssessmentType = Field(
        description="single assessment (Children Act 1989 s17) or s47 enquiry"
    )
    referral_id: RecordId | None = Field(None, alias="referralId")
    start_date: IsoDate = Field(alias="startDate")
    completed_date: IsoDate = Field(alias="completedDate")
    outcome: AssessmentOutcome
    factors: list[AssessmentFactor] = Field(
        default_factory=list,
        max_length=50,
        description="CIN census factors identified at the end of assessment (21: none)",
    )


class AssessmentCompleted(NativeModel):
    """POST body: an assessment or s47 enquiry has been completed."""

    child: Person
    assessment: Assessment
    contact: Contact


class Case(NativeModel):
    id: RecordId
    referral_date: IsoDate | None = Field(None, alias="referralDate")
    closure_date: IsoDate = Field(alias="closureDate")
    reason: ClosureReason = Field(description="CIN census reason for closure (RC1 to RC9)")


class CaseClosed(NativeModel):
    """POST body: a child's case (children in need episode) has been closed."""

    child: Person
    case: Case
    contact: Contact
