"""What a decision promises that the other decide tests left open, each found by a mutant
`make mutate` saw survive (docs/mutation.md): pseudonymised fields other than the NHS
number, which token key a decision names, sealing with public keys given as a mapping or
not at all, dry runs, age bands on the event's date, the days a protocol is in force, and
the consent outcome of a safeguarding override."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consent.core.conditions import Condition
from consent.core.consent import (
    ConsentOutcome,
    ConsentRecord,
    ConsentStatus,
    GivenBy,
    Override,
    evaluate,
    override_from,
)
from consent.core.decide import (
    DRY_RUN_VALUE,
    Decision,
    EventFacts,
    Outcome,
    ReasonCode,
    decide,
    field_pseudonym,
    pseudonym,
)
from consent.core.fields import project
from consent.core.model import (
    ConsentRequirement,
    FieldRule,
    Generalisation,
    IdentityLevel,
    LawfulBasis,
    Protocol,
    Purpose,
    RecipientRule,
    RuleKind,
)
from consent.core.state import SubjectState
from services.backbone.keyed import Key

R = "r-one"
KEYS = {R: Key("pseudonym-r", b"p" * 32)}
TOKEN_KEY = Key("token-1", b"t" * 64)
DAY = date(2026, 6, 15)
A = RuleKind.ALLOW


def _protocol(
    *fields: FieldRule,
    identity: IdentityLevel = IdentityLevel.IDENTIFIED,
    condition: str | None = None,
    **more: Any,
) -> Protocol:
    rule = RecipientRule(
        R, identity, fields, condition=Condition.compile(condition) if condition else None
    )
    return Protocol(
        id="p",
        version=1,
        title="p",
        owner="o",
        purpose=Purpose.EARLY_HELP,
        lawful_basis=LawfulBasis("e"),
        source_agencies=frozenset({"src"}),
        event_types=frozenset({"t"}),
        recipients=(rule,),
        **more,
    )


def _event(data: dict[str, Any], occurred: date | None = None) -> EventFacts:
    return EventFacts("ev-1", "t", "src", data, "nhs:9434765919", occurred=occurred)


def _one(protocol: Protocol, event: EventFacts, **more: Any) -> Decision:
    (decision,) = decide(event, [protocol], SubjectState(), KEYS, on=DAY, **more)
    return decision


def test_a_pseudonymised_field_is_not_the_subjects_pseudonym() -> None:
    """The NHS number becomes the subject's pseudonym; any other pseudonymised field is
    keyed with its own path and value, and is never the subject's pseudonym."""
    protocol = _protocol(
        FieldRule(RuleKind.PSEUDONYMISE, "subject.nhs_number", "subject.pseudonym"),
        FieldRule(RuleKind.PSEUDONYMISE, "subject.upn", "subject.upn"),
        identity=IdentityLevel.PSEUDONYMISED,
    )
    event = _event({"subject": {"nhs_number": "9434765919", "upn": "A123"}})
    decision = _one(protocol, event)
    subject = pseudonym(KEYS[R], R, event.subject_id)
    assert decision.payload == {
        "subject": {
            "pseudonym": subject,
            "upn": field_pseudonym(KEYS[R], R, "subject.upn", "A123"),
        }
    }
    assert decision.delivery_key == subject
    assert decision.fields_pseudonymised == ("subject.pseudonym", "subject.upn")
    assert decision.reason == "p@1 (early_help) allows pseudonymised sharing; consent not required"


def test_a_decision_names_the_token_key_only_where_it_tokenised() -> None:
    tokens = _protocol(FieldRule(RuleKind.TOKENISE, "subject.upn", "subject.upn_token"))
    event = _event({"subject": {"upn": "A123"}})
    assert _one(tokens, event, token_key=TOKEN_KEY).token_key_id == "token-1"
    plain = _protocol(FieldRule(A, "subject.upn", "subject.upn"))
    assert _one(plain, event, token_key=TOKEN_KEY).token_key_id is None
    without = _one(tokens, event)
    assert (without.outcome, without.reason_code) == (
        Outcome.WITHHELD,
        ReasonCode.TRANSFORM_FAILED,
    )
    assert without.reason == (
        "p@1: a field rule cannot be applied to this event: the keyring has no active token key"
    )


def test_a_field_is_sealed_with_public_keys_given_as_a_mapping_and_withheld_without() -> None:
    sealed = _protocol(FieldRule(RuleKind.ENCRYPT, "subject.name", "subject.name"))
    event = _event({"subject": {"name": "Ada"}})
    public = {R: X25519PrivateKey.generate().public_key()}
    decision = _one(sealed, event, recipient_keys=public)
    assert decision.outcome is Outcome.SHARED
    assert decision.payload is not None
    assert str(decision.payload["subject"]["name"]).startswith("env1.")
    none: tuple[dict[str, Any] | None, ...] = (None, {})
    for keys in none:
        withheld = _one(sealed, event, recipient_keys=keys)
        assert withheld.reason == (
            "p@1: a field rule cannot be applied to this event: "
            "no public key is configured for r-one"
        )


def test_a_dry_run_lists_what_would_go_with_no_value_and_no_keys() -> None:
    protocol = _protocol(
        FieldRule(A, "subject.name", "subject.name"),
        FieldRule(RuleKind.PSEUDONYMISE, "subject.upn", "subject.upn"),
        FieldRule(RuleKind.TOKENISE, "subject.upn", "subject.upn_token"),
        FieldRule(RuleKind.ENCRYPT, "subject.notes", "subject.notes"),
        FieldRule(RuleKind.GENERALISE, "subject.dob", "subject.age", Generalisation.AGE_BAND),
        identity=IdentityLevel.PSEUDONYMISED,
    )
    event = _event({"subject": {"name": "Ada", "upn": "A1", "notes": "n", "dob": "2019-01-01"}})
    public = {R: X25519PrivateKey.generate().public_key()}
    real = _one(protocol, event, recipient_keys=public, token_key=TOKEN_KEY)
    dry = _one(protocol, event, recipient_keys=public, token_key=TOKEN_KEY, dry_run=True)
    assert dry.outcome is real.outcome is Outcome.SHARED
    assert dry.payload == {} and real.payload
    assert (dry.delivery_key, dry.delivery_id) == (None, None)
    assert real.delivery_key and real.delivery_id
    lists = ("fields_disclosed", "fields_pseudonymised", "fields_tokenised", "fields_encrypted")
    assert [getattr(dry, n) for n in lists] == [getattr(real, n) for n in lists]
    assert all(getattr(dry, n) for n in lists)
    assert dry.fields_withheld == () and real.fields_withheld == ()
    assert DRY_RUN_VALUE == "(dry run)"


def test_a_dry_run_fails_where_the_real_decision_would_and_only_there() -> None:
    protocol = _protocol(
        FieldRule(RuleKind.ENCRYPT, "subject.notes", "subject.notes"),
        FieldRule(RuleKind.GENERALISE, "subject.dob", "subject.age", Generalisation.AGE_BAND),
    )
    # No public key: only a value that is there needs one.
    absent = _event({"subject": {"dob": "2019-01-01"}})
    for dry_run in (False, True):
        assert _one(protocol, absent, dry_run=dry_run).outcome is Outcome.SHARED
    # Born after the event (not after the decision): no age band can be given.
    early = _event({"subject": {"dob": "2021-01-01"}}, occurred=date(2020, 1, 1))
    for dry_run in (False, True):
        failed = _one(protocol, early, dry_run=dry_run)
        assert failed.reason_code is ReasonCode.TRANSFORM_FAILED, dry_run


def test_an_age_band_is_the_age_on_the_events_date_not_the_decisions() -> None:
    protocol = _protocol(
        FieldRule(RuleKind.GENERALISE, "subject.dob", "subject.age", Generalisation.AGE_BAND)
    )
    event = _event({"subject": {"dob": "2010-09-01"}}, occurred=date(2026, 6, 1))
    assert _one(protocol, event).payload == {"subject": {"age": "11-15"}}  # 15 then
    undated = _event({"subject": {"dob": "2010-06-01"}})
    assert _one(protocol, undated).payload == {"subject": {"age": "16-17"}}  # 16 on DAY


def test_a_protocol_is_in_force_on_its_first_and_last_days_and_not_outside() -> None:
    dated = _protocol(
        FieldRule(A, "a", "a"), valid_from=date(2026, 6, 15), valid_until=date(2026, 6, 30)
    )
    assert dated.in_force(date(2026, 6, 15)) and dated.in_force(date(2026, 6, 30))
    assert not dated.in_force(date(2026, 6, 14)) and not dated.in_force(date(2026, 7, 1))
    early = dataclasses.replace(dated, valid_from=date(2026, 6, 16), valid_until=None)
    decision = _one(early, _event({"a": 1}))
    assert (decision.outcome, decision.reason_code, decision.identity) == (
        Outcome.WITHHELD,
        ReasonCode.NOT_IN_FORCE,
        "identified",
    )
    assert decision.reason == "p@1: not in force on 2026-06-15 (valid 2026-06-16 to ...)"
    late = dataclasses.replace(dated, valid_from=None, valid_until=date(2026, 6, 14))
    assert _one(late, _event({"a": 1})).reason == (
        "p@1: not in force on 2026-06-15 (valid ... to 2026-06-14)"
    )


def test_a_condition_can_name_the_events_source() -> None:
    protocol = _protocol(FieldRule(A, "a", "a"), condition='event.source == "src"')
    assert _one(protocol, _event({"a": 1})).outcome is Outcome.SHARED


def test_an_allowed_object_is_copied_all_the_way_down() -> None:
    data = {"a": {"b": [1, {"c": 2}]}}
    payload = project(data, (FieldRule(A, "a", "a"),), pseudonymise=lambda _p, v: v).payload
    assert payload == data
    assert payload["a"]["b"] is not data["a"]["b"]
    assert payload["a"]["b"][1] is not data["a"]["b"][1]


REFUSED = ConsentRecord(
    record_id="c-1",
    version=2,
    status=ConsentStatus.REFUSED,
    purpose="early_help",
    scope=R,
    given_by=GivenBy("parent"),
    recorded_by="worker-1",
    recorded_at="2026-06-01T09:00:00Z",
)
OVERRIDE = Override(justification="risk of significant harm", role="designated_safeguarding_lead")


def test_an_override_shares_past_a_refusal_and_keeps_both_for_review() -> None:
    protocol = _protocol(
        FieldRule(A, "a", "a"), consent=ConsentRequirement.REQUIRED_UNLESS_OVERRIDE
    )
    outcome = evaluate(protocol, R, {("early_help", R): REFUSED}, OVERRIDE, on=DAY)
    assert outcome == ConsentOutcome(
        True,
        "shared.safeguarding_override",
        "shared without consent under a safeguarding override by a "
        "designated_safeguarding_lead (DPA 2018 Sch 1 para 18); queued for IG review",
        REFUSED,
        OVERRIDE,
    )


def test_an_override_the_protocol_does_not_allow_is_named_in_the_refusal() -> None:
    protocol = _protocol(FieldRule(A, "a", "a"), consent=ConsentRequirement.REQUIRED)
    outcome = evaluate(protocol, R, {("early_help", R): REFUSED}, OVERRIDE, on=DAY)
    assert outcome == ConsentOutcome(
        False,
        "withheld.consent_refused",
        "consent c-1 was refused; the protocol does not allow a safeguarding override",
        REFUSED,
    )


def test_an_events_override_is_read_with_its_role() -> None:
    raw = {"safeguarding_override": {"justification": "harm", "role": "social_worker"}}
    assert override_from(raw) == Override("harm", "social_worker")
    assert override_from({"safeguarding_override": "yes"}) is None
    assert override_from({}) is None
