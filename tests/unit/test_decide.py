"""The decision per recipient, on the CP-IS scenario and the shipped protocols, and the
properties that must hold for any event (nothing leaks past a protocol: test_no_leaks.py;
pseudonyms stable per recipient and unlinkable across recipients)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from consent.core.decide import (
    Decision,
    EventFacts,
    Outcome,
    ReasonCode,
    decide,
    pseudonym,
)
from consent.core.model import (
    Protocol,
)
from consent.core.state import ProtectionPlan, SubjectState
from consent.core.tokens import tokenise
from deploy.devstack.demo import scenario
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import Key, keyed_id
from services.backbone.keyring import Keyring
from tests.unit.factories import (
    ATTENDANCE,
    ED,
    LA,
    PH,
    PLAN_ENDED,
    PLAN_STARTED,
    attendance_data,
    plan_started_data,
)
from tests.unit.strategies import valid_nhs_numbers

SUBJECT = subject_identifier(nhs_number=scenario.ON_PLAN.nhs_number)
PLAN_BY_LA = SubjectState(ProtectionPlan(LA, "CPP-2026-0117", "neglect", "2026-11-02"))
PLAN_ELSEWHERE = SubjectState(ProtectionPlan("la-elsewhere", "CPP-9", "neglect", "2026-01-05"))


def facts(
    event_type: str, source: str, data: Mapping[str, Any], subject: str = SUBJECT
) -> EventFacts:
    return EventFacts("ev-1", event_type, source, data, subject)


def by_recipient(decisions: list[Decision]) -> dict[str | None, Decision]:
    assert len({d.recipient for d in decisions}) == len(decisions)
    return {d.recipient: d for d in decisions}


# --- The CP-IS scenario, exactly -------------------------------------------------------------


def test_plan_flag_to_the_emergency_department(
    protocols: tuple[Protocol, ...], keyring: Keyring, authority_name: str
) -> None:
    data = plan_started_data(scenario.ON_PLAN, authority_name=authority_name)
    (flag,) = decide(
        facts(PLAN_STARTED, LA, data),
        protocols,
        SubjectState(),
        keyring.pseudonym,
        token_key=keyring.token_key(),
    )
    assert flag.recipient == ED
    assert flag.outcome is Outcome.SHARED
    assert flag.reason_code is ReasonCode.PROTOCOL_ALLOWS
    assert flag.protocol is not None and flag.protocol.ref == "cpis-protection-plan-flag@2"
    assert flag.identity == "identified"
    assert flag.payload == {
        "subject": {"nhs_number": "9990000123"},
        "plan": {"start_date": "2026-11-02", "category": "neglect"},
        "authority": {
            "name": "Northshire County Council, children's social care",
            "contact": {
                "team": "Northshire MASH",
                "phone": "0300 555 0142",
                "email": "mash@northshire.example",
            },
        },
    }
    assert flag.fields_disclosed == (
        "subject.nhs_number",
        "plan.start_date",
        "plan.category",
        "authority.name",
        "authority.contact",
    )
    assert flag.fields_pseudonymised == ()
    assert set(flag.fields_withheld) == {
        "subject.la_person_id",
        "subject.given_name",
        "subject.family_name",
        "subject.date_of_birth",
        "plan.plan_id",
        "plan.unborn",
        "lead_practitioner.name",
        "lead_practitioner.role",
    }
    assert flag.key_id == keyring.pseudonym[ED].key_id
    assert flag.delivery_key == keyed_id(
        keyring.pseudonym[ED].secret, f"key:{ED}:identified", SUBJECT
    )
    assert flag.delivery_key != pseudonym(keyring.pseudonym[ED], ED, SUBJECT)


def test_attendance_notified_to_the_authority_holding_the_plan(
    protocols: tuple[Protocol, ...], keyring: Keyring
) -> None:
    event = facts(ATTENDANCE, ED, attendance_data(scenario.ON_PLAN))
    notice = by_recipient(
        decide(event, protocols, PLAN_BY_LA, keyring.pseudonym, token_key=keyring.token_key())
    )[LA]
    assert notice.outcome is Outcome.SHARED
    assert notice.protocol is not None and notice.protocol.ref == "cpis-attendance-notification@2"
    assert notice.payload == {
        "subject": {"nhs_number": "9990000123"},
        "attendance": {
            "arrival_time": "2026-11-20T21:14:00Z",
            "setting_type": "emergency_department",
            "site": {"ods_code": "RVR01", "name": "Riverside General Hospital ED"},
            "presenting_complaint_category": "injury",
        },
    }
    assert "attendance.clinical_notes" in notice.fields_withheld
    assert notice.delivery_key == keyed_id(
        keyring.pseudonym[LA].secret, f"key:{LA}:identified", SUBJECT
    )


@pytest.mark.parametrize(
    ("state", "because"),
    [
        (SubjectState(), "held by the recipient; this event does not meet that"),
        (PLAN_ELSEWHERE, "held by the recipient; this event does not meet that"),
    ],
    ids=["no-plan", "plan-held-by-another-authority"],
)
def test_attendance_withheld_from_the_authority_without_a_plan(
    protocols: tuple[Protocol, ...], keyring: Keyring, state: SubjectState, because: str
) -> None:
    event = facts(ATTENDANCE, ED, attendance_data(scenario.ON_PLAN))
    notice = by_recipient(
        decide(event, protocols, state, keyring.pseudonym, token_key=keyring.token_key())
    )[LA]
    assert notice.outcome is Outcome.WITHHELD
    assert notice.reason_code is ReasonCode.CONDITION_NOT_MET
    assert notice.reason_code.value == "withheld.condition_not_met"
    assert because in notice.reason
    assert notice.payload is None
    assert notice.delivery_key is None
    assert notice.fields_disclosed == notice.fields_withheld == ()


@pytest.mark.parametrize("state", [SubjectState(), PLAN_BY_LA], ids=["no-plan", "plan"])
def test_pseudonymised_attendance_to_public_health(
    protocols: tuple[Protocol, ...], keyring: Keyring, state: SubjectState
) -> None:
    event = facts(ATTENDANCE, ED, attendance_data(scenario.ON_PLAN))
    analytics = by_recipient(
        decide(event, protocols, state, keyring.pseudonym, token_key=keyring.token_key())
    )[PH]
    subject_pseudonym = pseudonym(keyring.pseudonym[PH], PH, SUBJECT)
    assert analytics.outcome is Outcome.SHARED
    assert analytics.identity == "pseudonymised"
    assert analytics.payload == {
        "subject": {
            "pseudonym": subject_pseudonym,
            "year_of_birth": "2016",
            "postcode_district": "NS1",
        },
        "attendance": {
            "arrival_time": "2026-11-20T21:14:00Z",
            "setting_type": "emergency_department",
            "site": {"ods_code": "RVR01"},
            "presenting_complaint_category": "injury",
            "encounter_token": tokenise(
                keyring.tokens["token-unit"],
                recipient=PH,
                path="attendance.encounter_id",
                value="ED-77812",
            ),
        },
    }
    assert analytics.fields_pseudonymised == ("subject.pseudonym",)
    assert analytics.fields_tokenised == ("attendance.encounter_token",)
    assert analytics.delivery_key == subject_pseudonym
    shown = repr(analytics.payload)
    for identifying in ("9990000123", "Maisie", "Testchild", "2016-04-09", "NS1 4AP", "Bruising"):
        assert identifying not in shown


def test_recipients_get_unlinkable_delivery_keys(
    protocols: tuple[Protocol, ...], keyring: Keyring
) -> None:
    event = facts(ATTENDANCE, ED, attendance_data(scenario.ON_PLAN))
    decisions = by_recipient(
        decide(event, protocols, PLAN_BY_LA, keyring.pseudonym, token_key=keyring.token_key())
    )
    assert decisions[LA].delivery_key != decisions[PH].delivery_key


@pytest.mark.parametrize(
    ("event_type", "source"),
    [(ATTENDANCE, LA), (PLAN_STARTED, ED), ("education.exclusion", LA)],
    ids=["attendance-from-social-care", "plan-from-health", "unknown-type"],
)
def test_no_protocol_withholds_everything(
    protocols: tuple[Protocol, ...], keyring: Keyring, event_type: str, source: str
) -> None:
    event = facts(event_type, source, attendance_data(scenario.ON_PLAN))
    (decision,) = decide(
        event, protocols, PLAN_BY_LA, keyring.pseudonym, token_key=keyring.token_key()
    )
    assert decision.recipient is None
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason_code.value == "withheld.no_protocol"
    assert decision.reason == f"no protocol covers {event_type} from {source}"
    assert decision.payload is None


@given(st.data())
def test_pseudonyms_are_stable_and_unlinkable(keyring: Keyring, data: st.DataObject) -> None:
    agencies = sorted(keyring.pseudonym)
    r1, r2 = data.draw(st.permutations(agencies))[:2]
    n1, n2 = data.draw(valid_nhs_numbers()), data.draw(valid_nhs_numbers())
    assume(n1 != n2)
    s1, s2 = subject_identifier(nhs_number=n1), subject_identifier(nhs_number=n2)
    k1, k2 = keyring.pseudonym[r1], keyring.pseudonym[r2]
    assert pseudonym(k1, r1, s1) == pseudonym(k1, r1, s1)
    assert pseudonym(k1, r1, s1) != pseudonym(k2, r2, s1)  # across recipients
    assert pseudonym(k1, r1, s1) != pseudonym(k1, r1, s2)  # across subjects
    # Even under one key, the recipient's domain keeps the two apart.
    assert pseudonym(k1, r1, s1) != pseudonym(k1, r2, s1)
    assert n1 not in pseudonym(k1, r1, s1)


@given(valid_nhs_numbers())
def test_a_rotated_key_gives_new_pseudonyms(nhs: str) -> None:
    subject = subject_identifier(nhs_number=nhs)
    old, new = Key("v1", b"\x01" * 32), Key("v2", b"\x02" * 32)
    assert pseudonym(old, PH, subject) != pseudonym(new, PH, subject)


def test_decisions_cover_every_recipient_of_every_covering_protocol(
    protocols: tuple[Protocol, ...], keyring: Keyring
) -> None:
    event = facts(ATTENDANCE, ED, attendance_data(scenario.ON_PLAN))
    decisions = decide(
        event, protocols, SubjectState(), keyring.pseudonym, token_key=keyring.token_key()
    )
    assert [(d.protocol.id if d.protocol else None, d.recipient) for d in decisions] == [
        ("cpis-attendance-notification", LA),
        ("public-health-attendance-analytics", PH),
    ]
    (flag,) = decide(
        facts(PLAN_ENDED, LA, {}),
        protocols,
        SubjectState(),
        keyring.pseudonym,
        token_key=keyring.token_key(),
    )
    assert flag.recipient == ED
