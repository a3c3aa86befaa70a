"""Map the children in need pathway (referral, assessment, case closure) to canonical
events. Pure functions; InputRejected for input that is well formed but inconsistent.

Every event: ``child.personId`` -> ``subject.la_person_id``, ``child.nhsNumber`` ->
``subject.nhs_number``, ``child.upn`` -> ``subject.upn``; the directory's name of the
authority -> ``authority.name``; ``contact.*`` -> ``authority.contact.*``. Referrals and
assessments also carry ``child.firstName`` / ``lastName`` / ``dateOfBirth`` ->
``subject.given_name`` / ``family_name`` / ``date_of_birth``; closures carry ids only.

| native                   | canonical                                                  |
| ------------------------ | ---------------------------------------------------------- |
| referral.id              | referral.referral_id (socialcare.referral.received)        |
| referral.receivedDate    | referral.received_date                                     |
| referral.source          | referral.source.code / .category (CIN census)              |
| referral.primaryNeed     | referral.primary_need.code / .category (CIN census)        |
| referral.outcome         | referral.outcome                                           |
| referral.referrerAgency  | referral.referrer_agency (an agency of the directory)      |
| assessment.id            | assessment.assessment_id (socialcare.assessment.completed) |
| assessment.referralId    | assessment.referral_id                                     |
| assessment.type          | assessment.type                                            |
| assessment.startDate     | assessment.start_date                                      |
| assessment.completedDate | assessment.completion_date                                 |
| assessment.outcome       | assessment.outcome                                         |
| assessment.factors[]     | assessment.factors[].code / .category (once each)          |
| case.id                  | case.case_id (socialcare.case.closed)                      |
| case.referralDate        | case.referral_date                                         |
| case.closureDate         | case.closure_date                                          |
| case.reason              | case.reason.code / .category (CIN census)                  |
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from services.backbone.errors import InputRejected
from services.socialcare.codes import cin_census
from services.socialcare.mapping_common import authority, drop_none, iso, not_before, subject
from services.socialcare.native_cin import AssessmentCompleted, CaseClosed, ReferralReceived

REFERRAL_RECEIVED = "socialcare.referral.received"
ASSESSMENT_COMPLETED = "socialcare.assessment.completed"
CASE_CLOSED = "socialcare.case.closed"

# Where each kind of assessment can lead: a strategy discussion decides whether to start
# a s47 enquiry, and only a s47 enquiry leads to an initial child protection conference.
OUTCOMES_BY_TYPE = {
    "single_assessment": frozenset(
        {"no_further_action", "early_help", "child_in_need_plan", "strategy_discussion",
         "looked_after"}
    ),
    "s47_enquiry": frozenset(
        {"no_further_action", "early_help", "child_in_need_plan", "child_protection_conference",
         "looked_after"}
    ),
}  # fmt: skip


def referral_received(
    native: ReferralReceived, *, authority_name: str, agencies: Collection[str]
) -> dict[str, Any]:
    """``socialcare.referral.received``; ``agencies`` are the directory's agency ids, one
    of which a ``referrerAgency`` must be."""
    referral = native.referral
    if referral.referrer_agency is not None and referral.referrer_agency not in agencies:
        raise InputRejected(
            ["body", "referral", "referrerAgency"],
            "the referring agency is not in the infoshare agency directory",
            "referral.referrer_agency.unknown",
        )
    return {
        "subject": subject(native.child, full=True),
        "referral": drop_none(
            {
                "referral_id": referral.id,
                "received_date": referral.received_date.isoformat(),
                "source": cin_census.REFERRAL_SOURCE.canonical(referral.source),
                "primary_need": cin_census.PRIMARY_NEED.canonical(referral.primary_need),
                "outcome": referral.outcome,
                "referrer_agency": referral.referrer_agency,
            }
        ),
        "authority": authority(authority_name, native.contact),
    }


def _factors(native: AssessmentCompleted) -> list[dict[str, str]]:
    assessment = native.assessment
    codes = list(dict.fromkeys(assessment.factors))  # a code sent twice counts once
    loc: list[str | int] = ["body", "assessment", "factors"]
    if not codes and assessment.type == "single_assessment":
        raise InputRejected(
            loc,
            "a single assessment records at least one factor (21 when none was identified)",
            "assessment.factors.required",
        )
    if cin_census.NO_FACTORS in codes and len(codes) > 1:
        raise InputRejected(
            loc,
            "factor 21 (no factors identified) cannot be sent with other factors",
            "assessment.factors.none_with_others",
        )
    return [cin_census.ASSESSMENT_FACTOR.canonical(code) for code in codes]


def assessment_completed(native: AssessmentCompleted, *, authority_name: str) -> dict[str, Any]:
    """``socialcare.assessment.completed``: dates in order, the outcome one the type of
    assessment can have, the factors checked against the census rules."""
    assessment = native.assessment
    not_before(
        assessment.completed_date,
        assessment.start_date,
        loc=["assessment", "completedDate"],
        what="the assessment cannot be completed before it started",
        rule="assessment.dates.order",
    )
    if assessment.outcome not in OUTCOMES_BY_TYPE[assessment.type]:
        raise InputRejected(
            ["body", "assessment", "outcome"],
            f"not an outcome of a {assessment.type} (allowed: "
            f"{', '.join(sorted(OUTCOMES_BY_TYPE[assessment.type]))})",
            "assessment.outcome_for_type",
        )
    return {
        "subject": subject(native.child, full=True),
        "assessment": drop_none(
            {
                "assessment_id": assessment.id,
                "referral_id": assessment.referral_id,
                "type": assessment.type,
                "start_date": assessment.start_date.isoformat(),
                "completion_date": assessment.completed_date.isoformat(),
                "outcome": assessment.outcome,
                "factors": _factors(native),
            }
        ),
        "authority": authority(authority_name, native.contact),
    }


def case_closed(native: CaseClosed, *, authority_name: str) -> dict[str, Any]:
    """``socialcare.case.closed``: ids only in the subject, the census reason for closure."""
    case = native.case
    not_before(
        case.closure_date,
        case.referral_date,
        loc=["case", "closureDate"],
        what="a case cannot close before the referral that opened it",
        rule="case.dates.order",
    )
    return {
        "subject": subject(native.child, full=False),
        "case": drop_none(
            {
                "case_id": case.id,
                "referral_date": iso(case.referral_date),
                "closure_date": case.closure_date.isoformat(),
                "reason": cin_census.CLOSURE_REASON.canonical(case.reason),
            }
        ),
        "authority": authority(authority_name, native.contact),
    }
