"""handle(): one input record in, every record it causes out: deliveries, audit records and
state changes, or one dead letter and its audit record. No Kafka: records are plain values."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.core.decide import delivery_id
from consent.core.generalise import generalise
from consent.core.model import FieldRule, Generalisation, IdentityLevel, RuleKind
from consent.core.state import ProtectionPlan
from consent.core.tokens import tokenise
from consent.processor.handle import Context, handle
from deploy.devstack.demo import scenario
from services.backbone.audit_contract import AuditOutcome
from services.backbone.envelope import CloudEvent, agency_source, decode, encode
from services.backbone.identifiers import la_person_identifier, subject_identifier
from services.backbone.keyed import keyed_id, routing_key
from services.backbone.keyring import Keyring
from services.backbone.records import ReadRecord
from tests.unit.factories import (
    ATTENDANCE,
    ED,
    FLAG_FIELDS,
    LA,
    PH,
    PLAN_ENDED,
    PLAN_STARTED,
    attendance_data,
    audits,
    on,
)
from tests.unit.strategies import valid_nhs_numbers

NHS = scenario.ON_PLAN.nhs_number
SUBJECT = subject_identifier(nhs_number=NHS)
TRACE = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
PLAN = ProtectionPlan(LA, "CPP-2026-0117", "neglect", "2026-11-02")
# Values that must never reach a dead letter's reason or headers, or any audit record.
IDENTIFYING = [NHS, "9990000124", "99900001234", "Maisie", "Testchild"]


def assert_nothing_identifying(*blobs: bytes | None) -> None:
    for blob in blobs:
        for value in IDENTIFYING:
            assert value.encode() not in (blob or b""), value


# --- Dead letters ---------------------------------------------------------------------------


def undecodable_json(rec: ReadRecord) -> ReadRecord:
    return dataclasses.replace(rec, value=b'{"subject": {"nhs_number": "9990000123", "given')


def no_ce_headers(rec: ReadRecord) -> ReadRecord:
    return dataclasses.replace(rec, headers=[h for h in rec.headers if not h[0].startswith("ce_")])


def no_ce_type(rec: ReadRecord) -> ReadRecord:
    return dataclasses.replace(rec, headers=[h for h in rec.headers if h[0] != "ce_type"])


def no_dataschema(rec: ReadRecord) -> ReadRecord:
    return dataclasses.replace(rec, headers=[h for h in rec.headers if h[0] != "ce_dataschema"])


def no_key(rec: ReadRecord) -> ReadRecord:
    return dataclasses.replace(rec, key=None)


def on_another_agencys_topic(rec: ReadRecord) -> ReadRecord:
    return dataclasses.replace(rec, topic=rec.topic.replace(LA, ED))


def with_nhs_number(number: str) -> Callable[[ReadRecord], ReadRecord]:
    def change(rec: ReadRecord) -> ReadRecord:
        data = orjson.loads(rec.value or b"")
        data["subject"]["nhs_number"] = number
        return dataclasses.replace(rec, value=orjson.dumps(data))

    return change


def without_authority(rec: ReadRecord) -> ReadRecord:
    data = orjson.loads(rec.value or b"")
    del data["authority"]
    return dataclasses.replace(rec, value=orjson.dumps(data))


def with_nul_in_override(rec: ReadRecord) -> ReadRecord:
    data = orjson.loads(rec.value or b"")
    data["safeguarding_override"] = {"justification": "child at risk \x00 tonight", "role": "DSL"}
    return dataclasses.replace(rec, value=orjson.dumps(data))


def with_type(event_type: str) -> Callable[[ReadRecord], ReadRecord]:
    def change(rec: ReadRecord) -> ReadRecord:
        headers = [(n, event_type.encode() if n == "ce_type" else v) for n, v in rec.headers]
        return dataclasses.replace(rec, headers=headers)

    return change


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (undecodable_json, "data is not JSON"),
        (no_ce_headers, "missing CloudEvents header ce_specversion"),
        (no_ce_type, "missing CloudEvents header ce_type"),
        (no_key, "record has no key"),
        (no_dataschema, "missing ce_dataschema"),
        (with_type(ATTENDANCE), f"dataschema names {PLAN_STARTED}, ce_type is {ATTENDANCE}"),
        (
            on_another_agencys_topic,
            "source /agencies/la-northshire was published on another agency's topic",
        ),
        (
            with_nhs_number("99900001234"),
            f"{PLAN_STARTED} v1: subject.nhs_number: must satisfy pattern",
        ),
        (without_authority, f"{PLAN_STARTED} v1: (root): 'authority' is a required property"),
        (
            with_nhs_number("9990000124"),
            "subject.nhs_number: the NHS number check digit does not match (modulus 11)",
        ),
        (with_nul_in_override, "safeguarding_override holds control characters"),
    ],
    ids=[
        "undecodable-json",
        "no-ce-headers",
        "no-ce-type",
        "no-key",
        "no-dataschema",
        "dataschema-of-another-type",
        "another-agencys-topic",
        "schema-violation-pattern",
        "schema-violation-required",
        "invalid-nhs-number",
        "control-characters-in-override",
    ],
)
def test_an_unprocessable_record_is_dead_lettered_and_audited(
    ctx: Context,
    build: Callable[..., ReadRecord],
    spoil: Callable[[ReadRecord], ReadRecord],
    reason: str,
) -> None:
    rec = spoil(build(PLAN_STARTED))
    handled = handle(rec, ctx, {}, "trace-1", lambda _: TRACE)

    assert handled.dead_letter_reason is not None
    assert handled.dead_letter_reason.startswith(reason)
    assert handled.decisions == []
    assert handled.state_changes == {}
    assert len(handled.records) == 2

    (dead,) = on(handled.records, ctx.topics.dlq("processor"))
    assert dead.value == rec.value  # untouched
    assert dead.key == (rec.key or b"")
    assert dead.headers[: len(rec.headers)] == list(rec.headers)
    assert dead.headers[len(rec.headers) :] == [
        ("dlq_reason", handled.dead_letter_reason.encode()),
        ("dlq_stage", b"processor"),
        ("dlq_topic", rec.topic.encode()),
        ("dlq_partition", b"2"),
        ("dlq_offset", b"41"),
    ]

    (audit_out,) = on(handled.records, ctx.topics.audit)
    (audit,) = audits(handled, ctx)
    assert audit.decision is AuditOutcome.DEAD_LETTERED
    assert audit.decision.value == "dead_lettered"
    assert audit.action == "dead_letter"
    assert audit.reason_code == "dead_letter.unprocessable"
    assert audit.reason == handled.dead_letter_reason
    assert audit.recipient is None
    assert (audit.topic_in, audit.partition_in, audit.offset_in) == (rec.topic, 2, 41)
    assert audit.topic_out == ctx.topics.dlq("processor")
    assert audit.trace_id == "trace-1"
    assert audit.source_agency == rec.topic.removeprefix(ctx.topics.source(""))

    assert_nothing_identifying(
        handled.dead_letter_reason.encode(),
        *(v for n, v in dead.headers if n.startswith("dlq_")),
        audit_out.key,
        audit_out.value or b"",
    )


def test_a_dead_letter_keeps_the_event_id_and_type_for_the_audit(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    rec = with_nhs_number("9990000124")(build(PLAN_STARTED))
    (audit,) = audits(handle(rec, ctx, {}, None, lambda _: []), ctx)
    assert audit.event_id == (dict(rec.headers)["ce_id"] or b"").decode()
    assert audit.event_type == PLAN_STARTED


# --- Good records ---------------------------------------------------------------------------


def test_a_plan_start_is_flagged_audited_and_remembered(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    rec = build(PLAN_STARTED)
    handled = handle(rec, ctx, {}, "trace-1", lambda _: TRACE)

    assert handled.dead_letter_reason is None
    assert [r.topic for r in handled.records] == [
        ctx.topics.deliver(ED),
        ctx.topics.audit,
        ctx.topics.deliver(LA),  # access back: the authority is told the ED received it
        ctx.topics.audit,
        ctx.topics.state("protection-plans"),
        ctx.topics.state("seen-events"),
        ctx.topics.state("disclosed"),  # who received it, for a recall
    ]
    delivery_out, audit_out, _, _, state_out, _, _ = handled.records

    delivered = decode(delivery_out.key, delivery_out.value, delivery_out.headers)
    original = decode(rec.key, rec.value, rec.headers)
    assert delivered.data == {
        "subject": {"nhs_number": NHS},
        "plan": {"start_date": "2026-11-02", "category": "neglect"},
        "authority": original.data["authority"],
    }
    assert delivered.key == keyed_id(keyring.pseudonym[ED].secret, f"key:{ED}:identified", SUBJECT)
    assert (delivered.id, delivered.type, delivered.source) == (
        delivery_id(keyring.pseudonym[ED], ED, f"{original.id}|cpis-protection-plan-flag@2"),
        PLAN_STARTED,
        agency_source(LA),
    )
    assert delivered.time == original.time
    audit, _ = audits(handled, ctx)  # the second is the access back's (test_access_back)
    assert delivered.extensions == {
        "protocol": "cpis-protection-plan-flag@2",
        "identitylevel": "identified",
    }
    assert delivered.id == audit.delivery_id != original.id
    assert TRACE[0] in delivery_out.headers
    assert_nothing_identifying(delivery_out.key, *(v for _, v in delivery_out.headers))

    assert audit.decision is AuditOutcome.SHARED
    assert audit.action == "disclose"
    assert audit.reason_code == "shared.protocol_allows"
    assert (audit.recipient, audit.protocol_id, audit.protocol_version) == (
        ED,
        "cpis-protection-plan-flag",
        2,
    )
    assert audit.purpose == "direct_safeguarding"
    assert audit.lawful_basis == "UK GDPR Art 6(1)(e); Art 9(2)(g); DPA 2018 Sch 1 part 2 para 18"
    assert audit.identity_level == "identified"
    assert audit.subject_key == keyed_id(
        keyring.require_audit_subject().secret, "audit-subject", SUBJECT
    )
    assert audit.subject_key not in (rkey, delivered.key)
    # The authority's own person id, keyed, finds the decision for an IG officer too.
    person = la_person_identifier(LA, str(original.data["subject"]["la_person_id"]))
    alias = keyed_id(keyring.require_audit_subject().secret, "audit-subject", person)
    assert audit.subject_aliases == [alias] and audits(handled, ctx)[1].subject_aliases == [alias]
    assert audit.key_id == keyring.pseudonym[ED].key_id
    assert audit.fields_disclosed == FLAG_FIELDS
    assert "subject.given_name" in audit.fields_withheld
    assert (audit.event_id, audit.event_type, audit.source_agency) == (
        original.id,
        PLAN_STARTED,
        LA,
    )
    assert (audit.topic_in, audit.partition_in, audit.offset_in) == (rec.topic, 2, 41)
    assert audit.topic_out == ctx.topics.deliver(ED)
    assert audit.trace_id == "trace-1"
    assert audit_out.key == rkey.encode()
    assert_nothing_identifying(audit_out.value or b"")

    assert handled.state_changes == {rkey: PLAN}
    assert state_out.key == rkey.encode()
    # With the event that started it: only a recall of that event ends it.
    assert orjson.loads(state_out.value or b"") == {
        **PLAN.to_json(),
        "started_by": decode(rec.key, rec.value, rec.headers).id,
    }
    assert state_out.partition == rec.partition


def test_an_attendance_with_a_plan_goes_to_the_authority_and_public_health(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    handled = handle(build(ATTENDANCE), ctx, {rkey: PLAN}, None, lambda _: [])
    assert [r.topic for r in handled.records] == [
        ctx.topics.deliver(LA),
        ctx.topics.audit,
        ctx.topics.deliver(PH),
        ctx.topics.audit,
        ctx.topics.state("seen-events"),
        ctx.topics.state("disclosed"),
    ]
    assert [(a.recipient, a.decision) for a in audits(handled, ctx)] == [
        (LA, AuditOutcome.SHARED),
        (PH, AuditOutcome.SHARED),
    ]
    ph_out = on(handled.records, ctx.topics.deliver(PH))[0]
    assert b"nhs_number" not in (ph_out.value or b"")
    assert_nothing_identifying(ph_out.value or b"", ph_out.key)
    assert handled.state_changes == {}


def test_an_attendance_without_a_plan_is_withheld_from_the_authority(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    handled = handle(build(ATTENDANCE), ctx, {}, None, lambda _: [])
    assert [r.topic for r in handled.records] == [
        ctx.topics.audit,
        ctx.topics.deliver(PH),
        ctx.topics.audit,
        ctx.topics.state("seen-events"),
        ctx.topics.state("disclosed"),
    ]
    withheld, shared = audits(handled, ctx)
    assert (withheld.recipient, withheld.decision) == (LA, AuditOutcome.WITHHELD)
    assert withheld.reason_code == "withheld.condition_not_met"
    assert withheld.topic_out is None
    assert withheld.fields_disclosed == []
    assert (shared.recipient, shared.decision) == (PH, AuditOutcome.SHARED)


def test_the_holder_ending_the_plan_clears_it(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    handled = handle(build(PLAN_ENDED), ctx, {rkey: PLAN}, None, lambda _: [])
    assert handled.state_changes == {rkey: None}
    (tombstone,) = on(handled.records, ctx.topics.state("protection-plans"))
    assert (tombstone.key, tombstone.value) == (rkey.encode(), None)
    (flag,) = on(handled.records, ctx.topics.deliver(ED))
    assert orjson.loads(flag.value or b"")["plan"] == {
        "start_date": "2026-11-02",
        "end_date": "2027-03-01",
        "category": "neglect",
    }


def test_an_event_no_protocol_covers_is_audited_as_withheld(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    handled = handle(
        build(ATTENDANCE), dataclasses.replace(ctx, protocols=()), {}, None, lambda _: []
    )
    assert [r.topic for r in handled.records] == [
        ctx.topics.audit,
        ctx.topics.state("seen-events"),
    ]
    (audit,) = audits(handled, ctx)
    assert audit.decision is AuditOutcome.WITHHELD
    assert audit.reason_code == "withheld.no_protocol"
    assert audit.recipient is None and audit.protocol_id is None


def test_audit_ids_are_the_same_when_a_record_is_handled_again(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    rec = build(ATTENDANCE)
    first = [a.audit_id for a in audits(handle(rec, ctx, {rkey: PLAN}, None, lambda _: []), ctx)]
    again = [a.audit_id for a in audits(handle(rec, ctx, {rkey: PLAN}, None, lambda _: []), ctx)]
    other = [
        a.audit_id
        for a in audits(
            handle(build(ATTENDANCE, offset=42), ctx, {rkey: PLAN}, None, lambda _: []), ctx
        )
    ]
    assert first == again
    assert len(set(first)) == 2
    assert not set(first) & set(other)


# --- Bugs -----------------------------------------------------------------------------------


def test_a_rule_that_cannot_be_applied_withholds_from_that_recipient_only(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    # The loader refuses such a rule (see test_protocol_set); a protocol built in code can
    # still hold one. That recipient is then withheld from, audited, and the others proceed.
    analytics = next(p for p in ctx.protocols if p.id == "public-health-attendance-analytics")
    bad_rule = FieldRule(RuleKind.GENERALISE, "attendance.site.ods_code", "x", Generalisation.YEAR)
    recipient = dataclasses.replace(
        analytics.recipients[0], fields=(*analytics.recipients[0].fields, bad_rule)
    )
    broken = dataclasses.replace(analytics, recipients=(recipient,))
    others = tuple(p for p in ctx.protocols if p.id != analytics.id)
    handled = handle(
        build(ATTENDANCE),
        dataclasses.replace(ctx, protocols=(*others, broken)),
        {rkey: PLAN},
        None,
        lambda _: [],
    )
    assert handled.dead_letter_reason is None
    assert on(handled.records, ctx.topics.deliver(LA))
    assert not on(handled.records, ctx.topics.deliver(PH))
    by_recipient = {a.recipient: a for a in audits(handled, ctx)}
    assert by_recipient[PH].reason_code == "withheld.transform_failed"
    assert by_recipient[LA].decision == "shared"


def test_only_social_care_can_start_a_plan(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    state: dict[str, ProtectionPlan | None] = {rkey: PLAN}
    state |= handle(build(PLAN_STARTED, source=ED), ctx, state, None, lambda _: []).state_changes
    attendance = handle(build(ATTENDANCE), ctx, state, None, lambda _: [])
    assert on(attendance.records, ctx.topics.deliver(LA)), "la-northshire was not notified"


# --- Found in review --------------------------------------------------------------------------


def test_a_key_that_is_not_the_subjects_routing_key_is_dead_lettered(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    # Another child's key would consult another child's plan; a foreign routing secret none.
    other = routing_key(keyring.require_routing(), f"nhs:{scenario.NOT_ON_PLAN.nhs_number}")
    rec = dataclasses.replace(build(ATTENDANCE), key=other.encode())
    handled = handle(rec, ctx, {other: PLAN, rkey: None}, None, lambda _: [])
    assert handled.dead_letter_reason == (
        "the record key is not the routing key of the event's subject"
    )
    assert not on(handled.records, ctx.topics.deliver(LA))


def test_a_null_header_is_dead_lettered_not_a_crash(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    rec = build(ATTENDANCE)
    headers = [(n, None if n == "ce_id" else v) for n, v in rec.headers]
    headers.append(("traceparent", None))
    handled = handle(dataclasses.replace(rec, headers=headers), ctx, {}, None, lambda _: [])
    assert handled.dead_letter_reason == "header ce_id is null"
    (audit,) = audits(handled, ctx)
    assert audit.event_id is None


def test_any_unexpected_failure_is_a_dead_letter(
    ctx: Context, build: Callable[..., ReadRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr("consent.processor.handle.decide", explode)
    handled = handle(build(ATTENDANCE), ctx, {}, None, lambda _: [])
    assert handled.dead_letter_reason == "unexpected KeyError while processing"


def test_two_protocols_for_one_recipient_keep_two_audit_records(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    analytics = next(p for p in ctx.protocols if p.id == "public-health-attendance-analytics")
    research = dataclasses.replace(analytics, id="research-copy")
    handled = handle(
        build(ATTENDANCE),
        dataclasses.replace(ctx, protocols=(analytics, research)),
        {rkey: PLAN},
        None,
        lambda _: [],
    )
    ids = [a.audit_id for a in audits(handled, ctx)]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_two_recipients_deliveries_share_no_header_value_nor_key(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    traces = iter(
        [
            [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")],
            [("traceparent", b"00-" + b"3" * 32 + b"-" + b"4" * 16 + b"-01")],
        ]
    )
    handled = handle(build(ATTENDANCE), ctx, {rkey: PLAN}, None, lambda _: next(traces))
    (la,) = on(handled.records, ctx.topics.deliver(LA))
    (ph,) = on(handled.records, ctx.topics.deliver(PH))
    linking = {"ce_id", "traceparent", "tracestate"}
    la_values = {v for n, v in la.headers if n in linking}
    ph_values = {v for n, v in ph.headers if n in linking}
    assert la_values and ph_values and not la_values & ph_values
    assert la.key != ph.key


@dataclasses.dataclass(frozen=True)
class Attendance:
    """What an attendance event holds that a property varies, and when it was published."""

    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: date
    postcode: str
    encounter_id: str
    site_name: str
    clinical_notes: str | None
    setting_type: str
    override: tuple[str, str] | None  # a safeguarding override's justification and role
    published: datetime

    def record(self, ctx: Context, keyring: Keyring) -> ReadRecord:
        data = attendance_data(scenario.ON_PLAN)
        data["subject"].update(
            nhs_number=self.nhs_number,
            given_name=self.given_name,
            family_name=self.family_name,
            date_of_birth=self.date_of_birth.isoformat(),
            postcode=self.postcode,
        )
        data["attendance"].update(encounter_id=self.encounter_id, setting_type=self.setting_type)
        data["attendance"]["site"]["name"] = self.site_name
        data["attendance"].pop("clinical_notes")
        if self.clinical_notes is not None:
            data["attendance"]["clinical_notes"] = self.clinical_notes
        if self.override is not None:
            justification, role = self.override
            data["safeguarding_override"] = {"justification": justification, "role": role}
        event = CloudEvent(
            type=ATTENDANCE,
            source=agency_source(ED),
            data=data,
            key=self.routing(keyring),
            id="ev-attendance-1",
            time=self.published,
            dataschema=ctx.schemas.get(ATTENDANCE).uri,
        )
        key, value, headers = encode(event)
        return ReadRecord(ctx.topics.source(ED), 0, 7, key, value, headers)

    def routing(self, keyring: Keyring) -> str:
        return routing_key(
            keyring.require_routing(), subject_identifier(nhs_number=self.nhs_number)
        )


CANONICAL = Attendance(
    nhs_number=NHS,
    given_name="Maisie",
    family_name="Testchild",
    date_of_birth=date(2016, 4, 9),
    postcode="NS1 4AP",
    encounter_id="ED-77812",
    site_name="Riverside General Hospital ED",
    clinical_notes="Bruising to left forearm, history inconsistent",
    setting_type="emergency_department",
    override=None,
    published=datetime(2026, 11, 20, 21, 15, 3, tzinfo=UTC),
)
# Text as people and systems write it: any Unicode (but lone surrogates, which no UTF-8
# event can carry), up to the lengths the schema allows; an override's text without the
# control characters the processor refuses in it.
_PLAIN = st.characters(exclude_categories=["Cs", "Cc"])
ATTENDANCES = st.builds(
    Attendance,
    nhs_number=valid_nhs_numbers(),
    given_name=st.text(min_size=1, max_size=40),
    family_name=st.text(min_size=1, max_size=40),
    date_of_birth=st.dates(date(2008, 11, 21), date(2026, 11, 20)),
    postcode=st.from_regex(r"\A[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\Z"),
    encounter_id=st.text(min_size=1, max_size=64),
    site_name=st.text(min_size=1, max_size=80),
    clinical_notes=st.none() | st.text(max_size=300),
    setting_type=st.sampled_from(["emergency_department", "urgent_treatment_centre", "maternity"]),
    override=st.none()
    | st.tuples(
        st.text(_PLAIN, min_size=20, max_size=200), st.text(_PLAIN, min_size=2, max_size=80)
    ),
    published=st.datetimes(datetime(2026, 11, 20), datetime(2026, 11, 20, 23, 59, 59)).map(
        lambda t: t.replace(tzinfo=UTC)
    ),
)


def withheld_from(recipient: str, drawn: Attendance) -> Attendance:
    """``drawn`` with what ``recipient``'s rules do not give it put back to the scenario's:
    what it receives must be the same for both. The emergency department's notice to the
    authority holding the plan names the child, the exact time and the site; the analytics
    feed gets the year of birth, the postcode district and a token of the encounter (left
    out of what is compared: ``delivered``), but not the time of day the event was
    published."""
    if recipient == LA:
        return dataclasses.replace(
            drawn,
            given_name=CANONICAL.given_name,
            family_name=CANONICAL.family_name,
            date_of_birth=CANONICAL.date_of_birth,
            postcode=CANONICAL.postcode,
            encounter_id=CANONICAL.encounter_id,
            clinical_notes=CANONICAL.clinical_notes,
            override=None,
        )
    district = generalise(drawn.postcode, Generalisation.POSTCODE_DISTRICT, on=date(2026, 11, 20))
    return dataclasses.replace(
        drawn,
        encounter_id=CANONICAL.encounter_id,
        given_name=CANONICAL.given_name,
        family_name=CANONICAL.family_name,
        date_of_birth=CANONICAL.date_of_birth.replace(year=drawn.date_of_birth.year),
        postcode=f"{district} 4AP",
        site_name=CANONICAL.site_name,
        clinical_notes=CANONICAL.clinical_notes,
        override=None,
        published=drawn.published.replace(hour=21, minute=15, second=3, microsecond=0),
    )


Delivery = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def delivered(
    ctx: Context, keyring: Keyring, attendance: Attendance, *, with_plan: bool
) -> dict[str, Delivery]:
    """What each recipient receives of ``attendance``: key, value and headers. The token
    of the encounter the analytics feed gets is checked, and left out: it is the one value
    that may change with the encounter id."""
    rkey = attendance.routing(keyring)
    handled = handle(
        attendance.record(ctx, keyring),
        ctx,
        {rkey: PLAN if with_plan else None},
        None,
        lambda _: TRACE,
    )
    assert handled.dead_letter_reason is None, handled.dead_letter_reason
    out = {}
    for recipient in (LA, PH):
        for r in on(handled.records, ctx.topics.deliver(recipient)):
            assert recipient not in out
            value = r.value
            if recipient == PH:
                data = orjson.loads(r.value or b"")
                token_key = keyring.token_key()
                assert token_key is not None
                assert data["attendance"].pop("encounter_token") == tokenise(
                    token_key,
                    recipient=PH,
                    path="attendance.encounter_id",
                    value=attendance.encounter_id,
                )
                value = orjson.dumps(data)
            out[recipient] = (r.key, value, list(r.headers))
    return out


def differences(got: Delivery, want: Delivery) -> list[str]:
    """Which parts of two deliveries differ, and how."""
    found = [
        f"{part} {a!r} != {b!r}"
        for part, a, b in zip(("key", "value"), got, want, strict=False)
        if a != b
    ]
    headers = dict(want[2])
    found += [f"header {n} {v!r} != {headers.get(n)!r}" for n, v in got[2] if headers.get(n) != v]
    return found


@settings(max_examples=200, deadline=None)
@given(drawn=ATTENDANCES, with_plan=st.booleans())
def test_nothing_unallowed_reaches_a_delivered_value_key_or_header(
    ctx: Context, keyring: Keyring, drawn: Attendance, with_plan: bool
) -> None:
    """Whatever an attendance holds (names, notes, site, dates, postcode, identifiers,
    override, in any script and at any length), each recipient receives the same key,
    value and headers as for the same attendance with everything its rules do not give
    it replaced: so none of that reaches it, in any form (escaped, cut, transformed).
    Neither does the NHS number reach the analytics feed, nor the routing key anyone."""
    deliveries = delivered(ctx, keyring, drawn, with_plan=with_plan)
    assert set(deliveries) == ({LA, PH} if with_plan else {PH})
    for recipient, (key, value, headers) in deliveries.items():
        baseline = delivered(ctx, keyring, withheld_from(recipient, drawn), with_plan=with_plan)
        assert (key, value, headers) == baseline[recipient], (
            f"what {recipient} receives changes with what its rules do not give it: "
            + ", ".join(differences((key, value, headers), baseline[recipient]))
        )
        assert {n for n, _ in headers} <= {
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "content-type",
            "ce_protocol",
            "ce_identitylevel",
            "traceparent",
        }
        exposed = (
            (key or b"") + (value or b"") + b"".join(n.encode() + (v or b"") for n, v in headers)
        )
        assert drawn.routing(keyring).encode() not in exposed
        if recipient == PH:
            assert drawn.nhs_number.encode() not in exposed


def test_an_anonymised_recipient_gets_a_delivery_with_no_key_at_all(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    analytics = next(p for p in ctx.protocols if p.id == "public-health-attendance-analytics")
    rule = analytics.recipients[0]
    anonymous = dataclasses.replace(
        rule,
        identity=IdentityLevel.ANONYMISED,
        fields=tuple(f for f in rule.fields if f.kind in (RuleKind.ALLOW, RuleKind.GENERALISE)),
    )
    protocol = dataclasses.replace(analytics, recipients=(anonymous,))
    handled = handle(
        build(ATTENDANCE),
        dataclasses.replace(ctx, protocols=(protocol,)),
        {rkey: PLAN},
        None,
        lambda _: [],
    )
    assert handled.dead_letter_reason is None
    (delivery,) = on(handled.records, ctx.topics.deliver(PH))
    assert delivery.key is None
    assert decode(delivery.key, delivery.value, delivery.headers, require_key=False).data[
        "subject"
    ] == {"year_of_birth": "2016", "postcode_district": "NS1"}
