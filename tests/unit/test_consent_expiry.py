"""Consent that expires: a grant with a valid_until holds to the end of that day and not
after (withheld.consent_expired), an override still shares where the protocol allows one,
and the registry takes a valid_until only on a grant, never in the past."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from consent.core.consent import ConsentRecord, ConsentStatus
from consent.core.decide import EventFacts, Outcome, decide
from consent.core.state import SubjectState
from consent.policy.load import load_protocols
from consent.registry.api import ConsentIn
from deploy.devstack.demo import scenario
from services.backbone.directory import Directory
from services.backbone.identifiers import subject_identifier
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from tests.unit.factories import ATTENDANCE, ED, LA, attendance_data
from tests.unit.test_consent import EARLY_HELP, OVERRIDE, record

UNTIL = date(2026, 12, 31)


@pytest.fixture(scope="module")
def shipped(directory: Directory, schemas: SchemaRegistry) -> Any:
    return load_protocols(None, directory=directory, schemas=schemas)


def granted_until(until: date | None) -> ConsentRecord:
    return dataclasses.replace(
        record(ConsentStatus.GRANTED), valid_until=until.isoformat() if until else None
    )


def la_decision(shipped: Any, keyring: Keyring, on: date, **facts: Any) -> Any:
    event = EventFacts(
        "ev-1",
        ATTENDANCE,
        ED,
        attendance_data(scenario.NOT_ON_PLAN),
        subject_identifier(nhs_number=scenario.NOT_ON_PLAN.nhs_number),
        **facts,
    )
    decisions = decide(event, shipped, SubjectState(), keyring.pseudonym, on=on)
    (la,) = [
        d for d in decisions if d.recipient == LA and d.protocol and d.protocol.id == EARLY_HELP
    ]
    return la


@pytest.mark.parametrize(
    ("on", "outcome", "code"),
    [
        (UNTIL - timedelta(days=1), Outcome.SHARED, "shared.protocol_allows"),
        (UNTIL, Outcome.SHARED, "shared.protocol_allows"),  # the last day still holds
        (UNTIL + timedelta(days=1), Outcome.WITHHELD, "withheld.consent_expired"),
    ],
)
def test_a_grant_holds_to_the_end_of_its_last_day(
    shipped: Any,
    keyring: Keyring,
    on: date,
    outcome: Outcome,
    code: str,
) -> None:
    consents = {("early_help", LA): granted_until(UNTIL)}
    la = la_decision(shipped, keyring, on, consents=consents)
    assert (la.outcome, la.reason_code.value) == (outcome, code)
    if outcome is Outcome.WITHHELD:
        assert "expired after 2026-12-31" in la.reason and la.payload is None
        assert la.consent == consents[("early_help", LA)]  # named in the audit record


def test_a_grant_without_an_end_never_expires_and_an_override_outlives_an_expiry(
    shipped: Any,
    keyring: Keyring,
) -> None:
    far = date(2029, 3, 1)  # years later, the protocol still in force
    open_ended = {("early_help", LA): granted_until(None)}
    assert la_decision(shipped, keyring, far, consents=open_ended).outcome is Outcome.SHARED
    expired = {("early_help", LA): granted_until(UNTIL)}
    la = la_decision(shipped, keyring, far, consents=expired, override=OVERRIDE)
    assert la.reason_code.value == "shared.safeguarding_override"


def test_a_record_keeps_its_end_through_the_topic() -> None:
    kept = granted_until(UNTIL)
    assert ConsentRecord.from_json(kept.to_json()) == kept
    older = kept.to_json()
    del older["valid_until"]  # a record written before consent could expire
    assert ConsentRecord.from_json(older).valid_until is None


def test_the_registry_takes_an_end_only_on_a_grant_and_never_in_the_past() -> None:
    body = {
        "nhs_number": scenario.NOT_ON_PLAN.nhs_number,
        "purpose": "early_help",
        "status": "granted",
        "given_by": "parent",
    }
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert ConsentIn.model_validate({**body, "valid_until": str(tomorrow)}).valid_until
    for wrong in (
        {**body, "valid_until": str(tomorrow - timedelta(days=2))},
        {**body, "status": "refused", "valid_until": str(tomorrow)},
    ):
        with pytest.raises(ValidationError) as refused:
            ConsentIn.model_validate(wrong)
        assert refused.value.errors()[0]["type"] == "consent.valid_until"


def test_an_expired_grant_to_the_recipient_does_not_hide_one_to_all_in_force(
    shipped: Any,
    keyring: Keyring,
) -> None:
    to_all = dataclasses.replace(granted_until(None), record_id="c-2", scope="*")
    consents = {("early_help", LA): granted_until(UNTIL), ("early_help", "*"): to_all}
    la = la_decision(shipped, keyring, UNTIL + timedelta(days=1), consents=consents)
    assert (la.outcome, la.consent) == (Outcome.SHARED, to_all)
