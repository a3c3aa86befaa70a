"""What the shipped protocols do with the new health events: a missed appointment or a
safeguarding concern reaches the authority holding the child's protection plan, with the
minimum fields, and no one when there is no plan."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from consent.core.decide import Decision, EventFacts, Outcome, ReasonCode, decide
from consent.core.model import ProtocolSet
from consent.core.state import ProtectionPlan, SubjectState
from consent.policy.load import load_protocols
from services.backbone.directory import Directory
from services.backbone.identifiers import subject_identity
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.health.fhir_parse import Mapped
from tests.unit.factories import ED, LA
from tests.unit.health_data import mapped

PROTOCOL = "health-safeguarding-to-plan-authority@1"
ON = date(2026, 11, 26)
PLAN = SubjectState(ProtectionPlan(LA, "CPP-2026-0117", "neglect", "2026-11-02"))


@pytest.fixture(scope="module")
def shipped(directory: Directory, schemas: SchemaRegistry) -> ProtocolSet:
    return load_protocols(None, directory=directory, schemas=schemas)


def decisions(
    shipped: ProtocolSet, keyring: Keyring, event: Mapped, state: SubjectState
) -> dict[str | None, Decision]:
    facts = EventFacts(
        id="evt-1",
        type=event.event_type,
        source_agency=ED,
        data=event.data,
        subject_id=subject_identity(event.data["subject"], ED),
    )
    made = decide(facts, shipped, state, keyring.pseudonym, on=ON)
    return {d.recipient: d for d in made if d.protocol and d.protocol.ref == PROTOCOL}


def test_a_missed_appointment_reaches_the_plan_authority_with_the_service_and_day(
    shipped: ProtocolSet, keyring: Keyring
) -> None:
    to_la = decisions(shipped, keyring, mapped("appointment-was-not-brought"), PLAN)[LA]
    assert (to_la.outcome, to_la.reason_code) == (Outcome.SHARED, ReasonCode.PROTOCOL_ALLOWS)
    assert to_la.payload == {
        "subject": {"nhs_number": "9990000123"},
        "appointment": {"date": "2026-11-25", "service": {"name": "Community paediatrics review"}},
    }
    for withheld in ("subject.given_name", "subject.postcode", "appointment.appointment_id"):
        assert withheld in to_la.fields_withheld


def test_a_concern_reaches_the_plan_authority_without_its_codes_or_record_id(
    shipped: ProtocolSet, keyring: Keyring
) -> None:
    event = mapped("flag-safeguarding")
    payload: Any = decisions(shipped, keyring, event, PLAN)[LA].payload
    assert payload["concern"] == {
        "category": "neglect",
        "unborn": False,
        "start_date": "2026-11-21",
        "summary": event.data["concern"]["summary"],
        "raised_by": {"ods_code": "RVR01", "name": "Riverside General Hospital ED"},
    }


@pytest.mark.parametrize("name", ["appointment-was-not-brought", "flag-safeguarding"])
def test_without_a_plan_nothing_is_shared(
    name: str, shipped: ProtocolSet, keyring: Keyring
) -> None:
    to_la = decisions(shipped, keyring, mapped(name), SubjectState())[LA]
    assert (to_la.outcome, to_la.reason_code) == (Outcome.WITHHELD, ReasonCode.CONDITION_NOT_MET)
    assert to_la.payload is None
