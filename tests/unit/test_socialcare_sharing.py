"""What the shipped protocols do with the new social care events: the looked-after flag
reaches the emergency department (CP-IS), a referral's decision reaches the school that
made it and no other, and assessments and closures reach no one."""

from __future__ import annotations

from typing import Any

import pytest

from consent.core.decide import Decision, EventFacts, Outcome, ReasonCode, decide
from consent.core.model import ProtocolSet
from consent.core.state import SubjectState
from consent.policy.load import load_protocols
from services.backbone.directory import Directory
from services.backbone.identifiers import subject_identity
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.socialcare import mapping_cin, mapping_looked_after
from services.socialcare.native_cin import AssessmentCompleted, CaseClosed, ReferralReceived
from services.socialcare.native_looked_after import LookedAfterEnded, LookedAfterStarted
from tests.unit.factories import ED, LA
from tests.unit.socialcare_data import AGENCIES, AUTHORITY, sample

SCHOOL = "school-oakfield"
PROTOCOL = "socialcare-looked-after-flag-and-referral-feedback@1"


@pytest.fixture(scope="module")
def shipped(directory: Directory, schemas: SchemaRegistry) -> ProtocolSet:
    return load_protocols(None, directory=directory, schemas=schemas)


def decisions(
    shipped: ProtocolSet, keyring: Keyring, event_type: str, data: dict[str, Any]
) -> dict[str | None, Decision]:
    event = EventFacts(
        id="evt-1",
        type=event_type,
        source_agency=LA,
        data=data,
        subject_id=subject_identity(data["subject"], LA),
    )
    return {d.recipient: d for d in decide(event, shipped, SubjectState(), keyring.pseudonym)}


def started(**child: Any) -> dict[str, Any]:
    body = sample("looked-after-episodes")
    body["child"] = child or body["child"]
    native = LookedAfterStarted.model_validate(body)
    return mapping_looked_after.looked_after_started(native, authority_name=AUTHORITY)


def referral(**change: Any) -> dict[str, Any]:
    body = sample("referrals")
    body["referral"].update(change)
    body["referral"] = {k: v for k, v in body["referral"].items() if v is not None}
    native = ReferralReceived.model_validate(body)
    return mapping_cin.referral_received(native, authority_name=AUTHORITY, agencies=AGENCIES)


def test_the_emergency_department_is_told_a_child_is_looked_after_and_whom_to_call(
    shipped: ProtocolSet, keyring: Keyring
) -> None:
    made = decisions(shipped, keyring, mapping_looked_after.LOOKED_AFTER_STARTED, started())
    to_ed = made[ED]
    assert (to_ed.outcome, to_ed.protocol and to_ed.protocol.ref) == (Outcome.SHARED, PROTOCOL)
    assert to_ed.payload == {
        "subject": {"nhs_number": "9990000670"},
        "episode": {"start_date": "2026-11-21"},
        "authority": {
            "name": AUTHORITY,
            "contact": {
                "team": "Northshire Children in Care Team",
                "phone": "0300 555 0190",
                "email": "childrenincare@northshire.example",
            },
        },
    }
    assert "episode.placement.code" in to_ed.fields_withheld
    assert "episode.legal_status.code" in to_ed.fields_withheld
    assert made[SCHOOL].reason_code is ReasonCode.CONDITION_NOT_MET


def test_the_end_of_care_reaches_the_emergency_department_without_its_reason(
    shipped: ProtocolSet, keyring: Keyring
) -> None:
    native = LookedAfterEnded.model_validate(sample("looked-after-episodes-ended"))
    data = mapping_looked_after.looked_after_ended(native, authority_name=AUTHORITY)
    to_ed = decisions(shipped, keyring, mapping_looked_after.LOOKED_AFTER_ENDED, data)[ED]
    assert to_ed.outcome is Outcome.SHARED
    assert to_ed.payload is not None
    assert to_ed.payload["episode"] == {"start_date": "2026-11-21", "end_date": "2027-08-04"}
    assert "episode.reason_ended.code" in to_ed.fields_withheld


def test_a_child_without_an_nhs_number_is_not_flagged(
    shipped: ProtocolSet, keyring: Keyring
) -> None:
    data = started(personId="NS-104362", upn="W823412626002")
    made = decisions(shipped, keyring, mapping_looked_after.LOOKED_AFTER_STARTED, data)
    assert made[ED].reason_code is ReasonCode.CONDITION_NOT_MET


def test_the_referring_school_is_told_the_decision_on_its_referral(
    shipped: ProtocolSet, keyring: Keyring
) -> None:
    made = decisions(shipped, keyring, mapping_cin.REFERRAL_RECEIVED, referral())
    to_school = made[SCHOOL]
    assert to_school.outcome is Outcome.SHARED
    assert to_school.payload == {
        "subject": {
            "upn": "G823412626001",
            "given_name": "Alfie",
            "family_name": "Mockchild",
            "date_of_birth": "2013-06-18",
        },
        "referral": {
            "referral_id": "REF-2026-004512",
            "received_date": "2026-10-14",
            "outcome": "single_assessment",
        },
        "authority": {
            "name": AUTHORITY,
            "contact": {
                "team": "Northshire MASH",
                "phone": "0300 555 0142",
                "email": "mash@northshire.example",
            },
        },
    }
    assert "referral.primary_need.code" in to_school.fields_withheld
    assert made[ED].reason_code is ReasonCode.CONDITION_NOT_MET


@pytest.mark.parametrize("referrer", [None, "nhs-riverside-ed"])
def test_a_school_that_did_not_refer_hears_nothing(
    shipped: ProtocolSet, keyring: Keyring, referrer: str | None
) -> None:
    data = referral(referrerAgency=referrer, source="3E" if referrer else "1A")
    made = decisions(shipped, keyring, mapping_cin.REFERRAL_RECEIVED, data)
    assert {r: d.outcome for r, d in made.items()} == {
        SCHOOL: Outcome.WITHHELD,
        ED: Outcome.WITHHELD,
    }


def test_assessments_and_closures_are_shared_with_no_one(
    shipped: ProtocolSet, keyring: Keyring
) -> None:
    assessment = mapping_cin.assessment_completed(
        AssessmentCompleted.model_validate(sample("assessments")), authority_name=AUTHORITY
    )
    closure = mapping_cin.case_closed(
        CaseClosed.model_validate(sample("case-closures")), authority_name=AUTHORITY
    )
    for event_type, data in [
        (mapping_cin.ASSESSMENT_COMPLETED, assessment),
        (mapping_cin.CASE_CLOSED, closure),
    ]:
        (only,) = decisions(shipped, keyring, event_type, data).values()
        assert only.reason_code is ReasonCode.NO_PROTOCOL
