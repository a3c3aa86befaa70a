"""Consent and safeguarding overrides: the early-help protocol needs consent unless a
practitioner overrides with a reason; CP-IS needs none."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from consent.core.consent import (
    ALL_RECIPIENTS,
    ConsentRecord,
    ConsentStatus,
    GivenBy,
    Override,
    evaluate,
)
from consent.core.decide import Decision, EventFacts, Outcome, decide
from consent.core.model import ConsentRequirement, Protocol
from consent.core.state import SubjectState
from consent.policy.load import load_protocols
from deploy.devstack.demo import scenario
from services.backbone.directory import Directory
from services.backbone.identifiers import subject_identifier
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from tests.unit.factories import ATTENDANCE, ED, LA, attendance_data

EARLY_HELP = "early-help-attendance"
OVERRIDE = Override(
    "Mother's partner present and hostile; asking would put the child at risk", "ED consultant"
)


def record(status: ConsentStatus, scope: str = LA, version: int = 1) -> ConsentRecord:
    return ConsentRecord(
        "c-1",
        version,
        status,
        "early_help",
        scope,
        GivenBy.PARENT,
        "ED social worker",
        "2026-11-20T10:00:00+00:00",
        "form 12",
    )


@pytest.fixture(scope="module")
def shipped(directory: Directory, schemas: SchemaRegistry) -> Any:
    return load_protocols(None, directory=directory, schemas=schemas)


@pytest.fixture(scope="module")
def early_help(shipped: Any) -> Protocol:
    protocol: Protocol = next(p for p in shipped if p.id == EARLY_HELP)
    return protocol


def decide_for_la(shipped: Any, keyring: Keyring, **facts: Any) -> Decision:
    event = EventFacts(
        "ev-1",
        ATTENDANCE,
        ED,
        attendance_data(scenario.NOT_ON_PLAN),
        subject_identifier(nhs_number=scenario.NOT_ON_PLAN.nhs_number),
        **facts,
    )
    decisions = decide(event, shipped, SubjectState(), keyring.pseudonym)
    (la,) = [
        d for d in decisions if d.recipient == LA and d.protocol and d.protocol.id == EARLY_HELP
    ]
    return la


def test_the_early_help_protocol_requires_consent_unless_overridden(early_help: Protocol) -> None:
    assert early_help.consent is ConsentRequirement.REQUIRED_UNLESS_OVERRIDE


@pytest.mark.parametrize(
    ("consents", "code"),
    [
        ({}, "withheld.no_consent"),
        ({("early_help", LA): record(ConsentStatus.REFUSED)}, "withheld.consent_refused"),
        (
            {("early_help", LA): record(ConsentStatus.WITHDRAWN, version=2)},
            "withheld.consent_withdrawn",
        ),
        ({("planning", LA): record(ConsentStatus.GRANTED)}, "withheld.no_consent"),
    ],
)
def test_without_consent_nothing_is_shared(
    shipped: Any, keyring: Keyring, consents: dict[Any, ConsentRecord], code: str
) -> None:
    la = decide_for_la(shipped, keyring, consents=consents)
    assert (la.outcome, la.reason_code.value, la.payload) == (Outcome.WITHHELD, code, None)


@pytest.mark.parametrize("scope", [LA, ALL_RECIPIENTS])
def test_consent_for_the_recipient_or_for_all_recipients_shares(
    shipped: Any, keyring: Keyring, scope: str
) -> None:
    granted = record(ConsentStatus.GRANTED, scope=scope)
    la = decide_for_la(shipped, keyring, consents={("early_help", scope): granted})
    assert la.outcome is Outcome.SHARED and la.consent == granted
    assert la.payload is not None and la.payload["subject"] == {
        "nhs_number": scenario.NOT_ON_PLAN.nhs_number
    }
    assert "c-1 v1 given by the parent" in la.reason


def test_a_recipient_specific_record_wins_over_one_for_all(shipped: Any, keyring: Keyring) -> None:
    consents = {
        ("early_help", ALL_RECIPIENTS): record(ConsentStatus.GRANTED, ALL_RECIPIENTS),
        ("early_help", LA): record(ConsentStatus.WITHDRAWN, LA, 2),
    }
    la = decide_for_la(shipped, keyring, consents=consents)
    assert la.reason_code.value == "withheld.consent_withdrawn"


def test_an_override_shares_without_consent_where_the_protocol_allows(
    shipped: Any, keyring: Keyring
) -> None:
    la = decide_for_la(shipped, keyring, override=OVERRIDE)
    assert la.outcome is Outcome.SHARED
    assert la.reason_code.value == "shared.safeguarding_override"
    assert la.override == OVERRIDE and "queued for IG review" in la.reason
    assert la.payload is not None and "safeguarding_override" not in la.payload


def test_an_override_is_not_honoured_where_the_protocol_requires_consent(
    early_help: Protocol,
) -> None:
    strict = dataclasses.replace(early_help, consent=ConsentRequirement.REQUIRED)
    outcome = evaluate(strict, LA, {}, OVERRIDE)
    assert not outcome.allowed and outcome.code == "withheld.no_consent"
    assert "does not allow a safeguarding override" in outcome.reason


def test_consent_granted_is_used_before_an_override(early_help: Protocol) -> None:
    granted = record(ConsentStatus.GRANTED)
    outcome = evaluate(early_help, LA, {("early_help", LA): granted}, OVERRIDE)
    assert outcome.allowed and outcome.code == "shared.protocol_allows"
    assert outcome.override is None and outcome.record == granted


def test_a_consent_record_round_trips_through_json() -> None:
    granted = record(ConsentStatus.GRANTED)
    assert ConsentRecord.from_json(granted.to_json()) == granted


def test_a_withdrawal_for_all_recipients_beats_a_grant_to_one(
    shipped: Any, keyring: Keyring
) -> None:
    consents = {
        ("early_help", LA): record(ConsentStatus.GRANTED, LA),
        ("early_help", ALL_RECIPIENTS): record(ConsentStatus.WITHDRAWN, ALL_RECIPIENTS, 3),
    }
    la = decide_for_la(shipped, keyring, consents=consents)
    assert la.reason_code.value == "withheld.consent_withdrawn"


def test_an_unreadable_consent_record_fails_closed() -> None:
    from aiokafka import ConsumerRecord

    from consent.registry.view import ConsentView
    from services.backbone.kafka_access import KafkaAccess

    view = ConsentView(topic="t", access=KafkaAccess.plaintext("127.0.0.1:1"))

    def rec(value: bytes | None) -> ConsumerRecord:
        return ConsumerRecord(
            "t", 0, 1, 0, 0, b"rk|early_help|la-northshire", value, None, 0, len(value or b""), []
        )

    import orjson

    view._apply(rec(orjson.dumps(record(ConsentStatus.GRANTED).to_json())))
    assert view.by_subject["rk"][("early_help", LA)].status is ConsentStatus.GRANTED
    broken = {**record(ConsentStatus.WITHDRAWN).to_json(), "given_by": "local_authority"}
    view._apply(rec(orjson.dumps(broken)))
    assert ("early_help", LA) not in view.by_subject["rk"]


def test_an_override_is_recorded_even_where_consent_is_not_needed(
    shipped: Any, keyring: Keyring
) -> None:
    event = EventFacts(
        "ev-1",
        ATTENDANCE,
        ED,
        attendance_data(scenario.NOT_ON_PLAN),
        subject_identifier(nhs_number=scenario.NOT_ON_PLAN.nhs_number),
        override=OVERRIDE,
    )
    decisions = decide(
        event, shipped, SubjectState(), keyring.pseudonym, token_key=keyring.token_key()
    )
    analytics = next(d for d in decisions if d.recipient == "ph-northshire")
    assert analytics.reason_code.value == "shared.protocol_allows"
    assert analytics.override == OVERRIDE  # so the audit shows the claim was made
