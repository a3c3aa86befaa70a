"""The shipped protocol for schools' events, decided on the education service's own mapping
of the sample inputs: the local authority hears of attendance, exclusions and children
missing education, and of the safeguarding concerns the DSL referred, never of the rest."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from consent.core.decide import Decision, EventFacts, Outcome, ReasonCode, decide
from consent.core.model import Protocol
from consent.core.state import SubjectState
from consent.policy.load import load_protocols
from services.backbone.directory import Directory
from services.backbone.identifiers import subject_identity
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.education import mapping, native
from tests.unit.education_samples import SCHOOL_NAME, sample_json

SCHOOL = "school-oakfield"
LA = "la-northshire"
PROTOCOL = "school-notifications-to-local-authority"


@pytest.fixture(scope="module")
def shipped(directory: Directory, schemas: SchemaRegistry) -> Protocol:
    (found,) = [
        p
        for p in load_protocols(
            None, directory=directory, schemas=schemas, today=date(2026, 11, 26)
        )
        if p.id == PROTOCOL
    ]
    return found


def events() -> dict[str, dict[str, Any]]:
    return {
        mapping.ATTENDANCE_CONCERN: mapping.attendance_concern(
            native.AttendanceConcern.model_validate(sample_json("attendance-concern.json")),
            school_name=SCHOOL_NAME,
        ),
        mapping.EXCLUSION_RECORDED: mapping.exclusion_recorded(
            native.ExclusionRecorded.model_validate(sample_json("exclusion.json")),
            school_name=SCHOOL_NAME,
        ),
        mapping.MISSING_EDUCATION: mapping.missing_education_reported(
            native.ChildMissingEducation.model_validate(
                sample_json("child-missing-education.json")
            ),
            school_name=SCHOOL_NAME,
        ),
        mapping.SAFEGUARDING_CONCERN: mapping.safeguarding_concern(
            native.SafeguardingConcern.model_validate(sample_json("safeguarding-concern.json")),
            school_name=SCHOOL_NAME,
        ),
    }


def decided(
    protocol: Protocol, keyring: Keyring, event_type: str, data: dict[str, Any]
) -> Decision:
    subject = subject_identity(data["subject"], SCHOOL)
    facts = EventFacts("ev-1", event_type, SCHOOL, data, subject)
    (decision,) = decide(
        facts,
        [protocol],
        SubjectState(),
        keyring.pseudonym,
        token_key=keyring.token_key(),
        on=date(2026, 11, 26),
    )
    return decision


@pytest.mark.parametrize("event_type", sorted(events()))
def test_the_authority_gets_each_event_identified_whole(
    shipped: Protocol, keyring: Keyring, event_type: str
) -> None:
    data = events()[event_type]
    decision = decided(shipped, keyring, event_type, data)
    assert (decision.recipient, decision.outcome) == (LA, Outcome.SHARED)
    assert decision.identity == "identified"
    assert decision.payload == data  # nothing else in it: no override was given


def test_a_concern_kept_in_school_is_withheld_and_says_why(
    shipped: Protocol, keyring: Keyring
) -> None:
    data = events()[mapping.SAFEGUARDING_CONCERN]
    data["concern"]["referred_to_childrens_social_care"] = False
    del data["concern"]["referral_date"]
    decision = decided(shipped, keyring, mapping.SAFEGUARDING_CONCERN, data)
    assert (decision.outcome, decision.reason_code) == (
        Outcome.WITHHELD,
        ReasonCode.CONDITION_NOT_MET,
    )
    assert decision.payload is None


def test_a_safeguarding_override_is_never_passed_on(shipped: Protocol, keyring: Keyring) -> None:
    data = events()[mapping.EXCLUSION_RECORDED]
    data["safeguarding_override"] = {"justification": "x" * 30, "role": "DSL"}
    decision = decided(shipped, keyring, mapping.EXCLUSION_RECORDED, data)
    assert decision.outcome is Outcome.SHARED
    assert decision.payload is not None and "safeguarding_override" not in decision.payload
