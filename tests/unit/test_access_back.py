"""Access back: an agency that asked to be told (deploy/agencies.yaml) gets one notice on its
own delivery topic for each of its events shared with another recipient, in the same output
list (so the same transaction) as the deliveries it reports, and never an identifier."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import date

import orjson
import pytest
from aiokafka import ConsumerRecord
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from consent.core.decide import identified_key
from consent.core.state import ProtectionPlan
from consent.processor import handle as handle_module
from consent.processor.access_back import ACCESS_BACK, SOURCE, notice_id
from consent.processor.handle import Context, Handled, handle
from consent.processor.records import OutRecord
from deploy.devstack.demo import scenario
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.directory import Directory
from services.backbone.envelope import CloudEvent, decode
from services.backbone.errors import ConfigurationError
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import keyed_id
from services.backbone.keyring import Keyring
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from services.delivery.filters import parse_filters
from services.delivery.kafka_edge import incoming
from services.delivery.model import Status
from services.delivery.numbering import Subscriber, wants
from tests.unit.factories import (
    ATTENDANCE,
    ED,
    FLAG_FIELDS,
    LA,
    PH,
    PLAN_ENDED,
    PLAN_STARTED,
    audits,
    on,
)

CHILD = scenario.ON_PLAN
SUBJECT = subject_identifier(nhs_number=CHILD.nhs_number)
PLAN = ProtectionPlan(LA, "CPP-2026-0117", "neglect", "2026-11-02")
FLAG = "cpis-protection-plan-flag"
# Everything that identifies the child in the events the scenario publishes.
IDENTIFYING = [
    CHILD.nhs_number,
    CHILD.person_id,
    CHILD.given_name,
    CHILD.family_name,
    CHILD.date_of_birth,
    CHILD.postcode,
    "CPP-2026-0117",
    "ED-77812",
]


def traces() -> Callable[[str], list[tuple[str, bytes]]]:
    """A fresh traceparent per delivery, as the loop's ``delivery_trace`` gives."""
    numbers: Iterator[int] = iter(range(1, 100))

    def next_trace(_topic: str) -> list[tuple[str, bytes]]:
        n = next(numbers)
        return [("traceparent", f"00-{n:032x}-{n:016x}-01".encode())]

    return next_trace


def exposed(out: OutRecord) -> bytes:
    """Every byte a reader of the record sees: key, value, header names and values."""
    headers = b"".join(n.encode() + (v or b"") for n, v in out.headers)
    return (out.key or b"") + (out.value or b"") + headers


def told(handled: Handled, ctx: Context, agency: str = LA) -> list[CloudEvent]:
    delivered = on(handled.records, ctx.topics.deliver(agency))
    events = [decode(r.key, r.value, r.headers) for r in delivered]
    return [e for e in events if e.type == ACCESS_BACK]


def access_back_audits(handled: Handled, ctx: Context) -> list[AuditRecord]:
    return [a for a in audits(handled, ctx) if a.action == "access_back"]


def with_access_back(ctx: Context, flags: dict[str, bool]) -> Context:
    """``ctx`` with the directory's access_back flags set as given, agency by agency."""
    agencies = {
        a.id: dataclasses.replace(a, access_back=flags.get(a.id, a.access_back))
        for a in ctx.directory
    }
    return dataclasses.replace(ctx, directory=Directory(agencies, ctx.directory.groups))


# --- Told -----------------------------------------------------------------------------------


def test_the_authority_is_told_once_that_the_ed_received_its_plan(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    rec = build(PLAN_STARTED)
    handled = handle(rec, ctx, {}, "trace-1", traces())
    original = decode(rec.key, rec.value, rec.headers)

    (notice,) = told(handled, ctx)
    assert (notice.type, notice.source) == (ACCESS_BACK, SOURCE)
    assert notice.id == notice_id(original) != original.id
    assert notice.dataschema == ctx.schemas.get(ACCESS_BACK).uri
    assert notice.extensions == {"identitylevel": "identified"}
    decided_at = notice.data["decided_at"]
    assert notice.data == {
        "event_id": original.id,
        "event_type": PLAN_STARTED,
        "shared_with": [
            {
                "recipient": ED,
                "protocol": f"{FLAG}@2",
                "identity": "identified",
                "fields": FLAG_FIELDS,
                "fields_pseudonymised": [],
                "fields_tokenised": [],
                "fields_encrypted": [],
            }
        ],
        "decided_at": decided_at,
    }
    ctx.schemas.get(ACCESS_BACK).validate(notice.data)  # the contract subscribers rely on

    # The authority's own identified key for the child: the key of the attendance
    # notifications it gets about the same child, so they share a partition and an order.
    assert notice.key == identified_key(keyring.pseudonym[LA], LA, SUBJECT)
    attended = handle(build(ATTENDANCE), ctx, {rkey: PLAN}, None, traces())
    (notification,) = on(attended.records, ctx.topics.deliver(LA))
    assert notification.key == notice.key.encode()
    assert notice.key != rkey

    # Its own trace, not the ED's delivery's: the two recipients share no header value.
    (flag,) = on(handled.records, ctx.topics.deliver(ED))
    (out,) = on(handled.records, ctx.topics.deliver(LA))
    assert dict(out.headers)["traceparent"] != dict(flag.headers)["traceparent"]
    assert dict(out.headers)["ce_type"] == ACCESS_BACK.encode()
    for value in IDENTIFYING:
        assert value.encode() not in exposed(out), value

    # A CloudEvent as the official SDK reads it from Kafka binary mode.
    headers = {n: v for n, v in out.headers if v is not None}
    message = KafkaMessage(headers=headers, key=out.key, value=out.value or b"")
    read_back = from_binary(message, JSONFormat())
    assert (read_back.get_id(), read_back.get_type()) == (notice.id, ACCESS_BACK)
    assert read_back.get_dataschema() == notice.dataschema
    assert read_back.get_data() == notice.data


def test_the_notice_is_audited_beside_the_decision_it_reports(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring
) -> None:
    rec = build(PLAN_STARTED)
    handled = handle(rec, ctx, {}, "trace-1", traces())
    disclose, audit = audits(handled, ctx)
    (notice,) = told(handled, ctx)

    assert (disclose.action, disclose.recipient) == ("disclose", ED)
    assert audit.action == "access_back"
    assert audit.decision is AuditOutcome.SHARED
    assert (audit.recipient, audit.source_agency) == (LA, LA)
    assert audit.reason_code == "shared.access_back"
    assert audit.reason == (
        f"the originating agency was told which recipients received its record: {ED} ({FLAG}@2)"
    )
    assert audit.fields_disclosed == []
    assert audit.key_id == keyring.pseudonym[LA].key_id
    assert audit.topic_out == ctx.topics.deliver(LA)
    assert audit.delivery_id == notice.id
    assert (
        audit.subject_key
        == disclose.subject_key
        == keyed_id(keyring.require_audit_subject().secret, "audit-subject", SUBJECT)
    )
    assert (audit.event_id, audit.event_type) == (disclose.event_id, PLAN_STARTED)
    assert (audit.topic_in, audit.partition_in, audit.offset_in) == (rec.topic, 2, 41)
    assert audit.trace_id == "trace-1"
    assert audit.audit_id != disclose.audit_id
    for out in on(handled.records, ctx.topics.audit):
        for value in IDENTIFYING:
            assert value.encode() not in exposed(out), value


def test_handling_the_record_again_gives_the_same_notice_and_audit_ids(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    # A transaction aborted and retried after a crash decides the record again.
    rec = build(PLAN_STARTED)
    first, again = (handle(rec, ctx, {}, None, traces()) for _ in range(2))
    assert told(first, ctx)[0].id == told(again, ctx)[0].id
    assert [a.audit_id for a in audits(first, ctx)] == [a.audit_id for a in audits(again, ctx)]
    other = handle(build(PLAN_ENDED), ctx, {rkey: PLAN}, None, traces())
    assert told(other, ctx)[0].id != told(first, ctx)[0].id


def test_a_publisher_with_two_recipients_hears_of_both_and_not_of_what_was_withheld(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    ctx = with_access_back(ctx, {ED: True})
    rec = build(ATTENDANCE)
    handled = handle(rec, ctx, {rkey: PLAN}, None, traces())
    (notice,) = told(handled, ctx, ED)
    assert [(s["recipient"], s["protocol"], s["identity"]) for s in notice.data["shared_with"]] == [
        (LA, "cpis-attendance-notification@2", "identified"),
        (PH, "public-health-attendance-analytics@2", "pseudonymised"),
    ]  # early help withheld from the authority (the child is on a plan): not listed
    ph = notice.data["shared_with"][1]
    assert ph["fields_pseudonymised"] == ["subject.pseudonym"]
    assert ph["fields_tokenised"] == ["attendance.encounter_token"]
    assert notice.key == identified_key(keyring.pseudonym[ED], ED, SUBJECT)
    (out,) = on(handled.records, ctx.topics.deliver(ED))
    for value in [*IDENTIFYING, "Riverside General Hospital ED", "Bruising"]:
        assert value.encode() not in exposed(out), value
    assert len(access_back_audits(handled, ctx)) == 1


# --- Not told -------------------------------------------------------------------------------


def test_nothing_is_told_when_every_recipient_was_withheld_from(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    flag = next(p for p in ctx.protocols if p.id == FLAG)
    not_yet = dataclasses.replace(flag, valid_from=date(2999, 1, 1))
    others = tuple(p for p in ctx.protocols if p.id != FLAG)
    later = dataclasses.replace(ctx, protocols=(*others, not_yet))
    handled = handle(build(PLAN_STARTED), later, {}, None, traces())
    assert [a.reason_code for a in audits(handled, ctx)] == ["withheld.protocol_not_in_force"]
    assert not on(handled.records, ctx.topics.deliver(LA))
    # No protocol at all: one withheld decision, no recipient, nothing told either.
    bare = handle(build(PLAN_STARTED), dataclasses.replace(ctx, protocols=()), {}, None, traces())
    assert not on(bare.records, ctx.topics.deliver(LA))
    assert not access_back_audits(bare, ctx)


def test_nothing_is_told_on_a_replay(ctx: Context, build: Callable[..., ReadRecord]) -> None:
    replayed = handle(
        build(PLAN_STARTED), dataclasses.replace(ctx, replay_run="run-7"), {}, None, traces()
    )
    assert on(replayed.records, ctx.topics.deliver(ED))  # decided and shared again
    assert not on(replayed.records, ctx.topics.deliver(LA))
    assert [a.action for a in audits(replayed, ctx)] == ["replay"]


def test_nothing_is_told_for_a_duplicate(ctx: Context, build: Callable[..., ReadRecord]) -> None:
    rec = build(PLAN_STARTED, offset=10)
    first = handle(rec, ctx, {}, None, traces())
    assert len(told(first, ctx)) == 1
    copy = dataclasses.replace(rec, offset=11)
    again = handle(copy, ctx, {}, None, traces(), seen=first.seen_changes)
    assert again.suppressed
    assert [r.topic for r in again.records] == [ctx.topics.audit]


def test_nothing_is_told_to_an_agency_that_did_not_ask(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    quiet = with_access_back(ctx, {LA: False})
    handled = handle(build(PLAN_STARTED), quiet, {}, None, traces())
    assert on(handled.records, ctx.topics.deliver(ED))
    assert not on(handled.records, ctx.topics.deliver(LA))
    assert not access_back_audits(handled, ctx)
    # The hospital did not ask (the shipped directory): its attendances tell it nothing.
    attended = handle(build(ATTENDANCE), ctx, {rkey: PLAN}, None, traces())
    assert not on(attended.records, ctx.topics.deliver(ED))


def test_nothing_is_told_for_a_dead_letter(
    ctx: Context, build: Callable[..., ReadRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = build(PLAN_STARTED)
    data = orjson.loads(rec.value or b"")
    data["subject"]["nhs_number"] = "9990000124"  # check digit wrong
    broken = handle(dataclasses.replace(rec, value=orjson.dumps(data)), ctx, {}, None, traces())
    assert broken.dead_letter_reason
    assert not on(broken.records, ctx.topics.deliver(LA))
    # Outputs too big to write: the whole input is dead-lettered, the notice with it.
    monkeypatch.setattr(handle_module, "MAX_RECORD_BYTES", 900)
    too_big = handle(rec, ctx, {}, None, traces())
    assert too_big.dead_letter_reason and "record limit" in too_big.dead_letter_reason
    assert not on(too_big.records, ctx.topics.deliver(LA))


def test_sharing_only_with_itself_tells_the_agency_nothing(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    flag = next(p for p in ctx.protocols if p.id == FLAG)
    to_itself = dataclasses.replace(
        flag, recipients=(dataclasses.replace(flag.recipients[0], agency=LA),)
    )
    handled = handle(
        build(PLAN_STARTED), dataclasses.replace(ctx, protocols=(to_itself,)), {}, None, traces()
    )
    (plan,) = on(handled.records, ctx.topics.deliver(LA))  # as the protocol says
    assert dict(plan.headers)["ce_type"] == PLAN_STARTED.encode()
    assert not told(handled, ctx) and not access_back_audits(handled, ctx)


# --- Configuration and the delivery service ------------------------------------------------


def test_the_context_refuses_an_agency_to_tell_without_its_key_or_the_schema(
    ctx: Context, keyring: Keyring, schemas: SchemaRegistry
) -> None:
    flag = next(p for p in ctx.protocols if p.id == FLAG)  # la-northshire receives nothing
    without_la = dataclasses.replace(
        keyring, pseudonym={k: v for k, v in keyring.pseudonym.items() if k != LA}
    )
    older = SchemaRegistry([schemas.get(t) for t in (ATTENDANCE, PLAN_STARTED, PLAN_ENDED)])

    def context(keys: Keyring, registry: SchemaRegistry, directory: Directory) -> Context:
        return Context.from_keyring(
            topics=ctx.topics,
            protocols=(flag,),
            schemas=registry,
            directory=directory,
            keyring=keys,
        )

    with pytest.raises(ConfigurationError, match=f"no pseudonym key for: {LA}"):
        context(without_la, schemas, ctx.directory)
    with pytest.raises(ConfigurationError, match=f"{LA} asked for access back"):
        context(keyring, older, ctx.directory)
    context(without_la, older, with_access_back(ctx, {LA: False}).directory)


def test_the_delivery_service_stores_the_notice_for_a_subscription_to_its_type(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    handled = handle(build(PLAN_STARTED), ctx, {}, None, traces())
    (out,) = on(handled.records, ctx.topics.deliver(LA))
    record = ConsumerRecord(
        out.topic, 0, 5, 0, 0, out.key, out.value, None, 0, 0, tuple((n, v) for n, v in out.headers)
    )  # fmt: skip
    stored = incoming(record, LA)  # decodes, and fits the delivery store's columns
    assert (stored.event.type, stored.event.source) == (ACCESS_BACK, SOURCE)
    assert (stored.event.protocol, stored.event.identity_level) == (None, "identified")

    def subscriber(types: set[str], filters: list[dict[str, object]] | None = None) -> Subscriber:
        return Subscriber("s", LA, Status.ACTIVE, frozenset(types), parse_filters(filters or []), 0)

    assert wants(subscriber({ACCESS_BACK}), LA, stored.event)
    assert wants(
        subscriber(
            {ACCESS_BACK, PLAN_STARTED},
            [{"path": "data.event_type", "op": "eq", "value": PLAN_STARTED}],
        ),
        LA,
        stored.event,
    )
    assert not wants(subscriber({ATTENDANCE}), LA, stored.event)
    assert not wants(subscriber({ACCESS_BACK}), ED, stored.event)
