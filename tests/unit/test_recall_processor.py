"""A recall through the processor (consent/processor/recall.py): exactly the recipients of the
recalled events are told, under their own ids and keys; each notice is audited; a plan
started in error ends; a recalled event read again is not shared again. No Kafka."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.core.state import ProtectionPlan
from consent.processor.dedup import seen_key
from consent.processor.disclosed import Disclosed
from consent.processor.handle import Context, Handled, handle
from deploy.devstack.demo import scenario
from services.backbone import envelope
from services.backbone.audit_contract import AuditOutcome
from services.backbone.envelope import CloudEvent, agency_source, decode, encode
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import routing_key
from services.backbone.keyring import Keyring
from services.backbone.recall import (
    NOTHING_HELD,
    RECALL_REQUESTED,
    RECALLED,
    RECALLED_BEFORE,
    notice_of,
)
from services.backbone.records import ReadRecord
from tests.unit.factories import ATTENDANCE, ED, LA, PH, PLAN_STARTED, audits, on

NHS = scenario.ON_PLAN.nhs_number
PLAN = ProtectionPlan(LA, "CPP-2026-0117", "neglect", "2026-11-02")
IDENTIFYING = [NHS, "Maisie", "Testchild"]


def memory(*handled: Handled) -> dict[str, Disclosed]:
    found: dict[str, Disclosed] = {}
    for h in handled:
        found.update(h.disclosed_changes)
    return found


def event_of(rec: ReadRecord) -> CloudEvent:
    return decode(rec.key, rec.value, rec.headers)


def recall_record(
    ctx: Context,
    keyring: Keyring,
    recalled: list[ReadRecord],
    *,
    agency: str,
    reason: str = "shared_in_error",
    offset: int = 90,
) -> ReadRecord:
    """The recall an agency service publishes for ``recalled`` (events about the scenario's
    child): their ids and types, under their record key."""
    items: list[dict[str, Any]] = []
    for rec in recalled:
        original = event_of(rec)
        items.append({"id": original.id, "type": original.type})
    event = CloudEvent(
        type=RECALL_REQUESTED,
        source=agency_source(agency),
        data={
            "submission": "0b5c8f4e-5f8e-4d8e-9a57-1f7c1c1c1c1c",
            "recalled": items,
            "reason": reason,
        },
        key=routing_key(keyring.require_routing(), subject_identifier(nhs_number=NHS)),
        dataschema=ctx.schemas.get(RECALL_REQUESTED).uri,
    )
    key, value, headers = encode(event)
    return ReadRecord(ctx.topics.source(agency), 2, offset, key, value, headers)


def test_a_recalled_plan_reaches_exactly_its_recipient_and_ends_the_plan(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    started = build(PLAN_STARTED)
    shared = handle(started, ctx, {}, None, lambda _: [])
    (delivery,) = on(shared.records, ctx.topics.deliver(ED))
    (disclosure,) = [a for a in audits(shared, ctx) if a.recipient == ED]

    rec = recall_record(ctx, keyring, [started], agency=LA)
    plans = dict(shared.state_changes)  # the plan its start began
    recalled = handle(rec, ctx, plans, None, lambda _: [], disclosed=memory(shared))

    assert recalled.dead_letter_reason is None
    # The ED, and nobody else: the authority's access-back notice was no disclosure.
    assert [r.topic for r in recalled.records if r.topic.startswith("unit.deliver.")] == [
        ctx.topics.deliver(ED)
    ]
    (notice_out,) = on(recalled.records, ctx.topics.deliver(ED))
    assert notice_out.key == delivery.key  # after the delivery, on its partition
    notice = decode(notice_out.key, notice_out.value, notice_out.headers)
    told = notice_of(notice.type, notice.extensions, notice.data)
    assert notice.type == RECALLED
    assert told is not None and told.recalls == disclosure.delivery_id
    assert told.reason == "shared_in_error"
    assert notice.extensions[envelope.EXT_PROTOCOL] == (
        f"{disclosure.protocol_id}@{disclosure.protocol_version}"
    )
    (audit,) = audits(recalled, ctx)
    assert (audit.action, audit.decision) == ("recall", AuditOutcome.RECALLED)
    assert audit.reason_code == "recall.shared_in_error"
    assert (audit.recipient, audit.delivery_id) == (ED, notice.id)
    assert audit.refers_to == disclosure.audit_id
    assert audit.subject_key == disclosure.subject_key
    assert (audit.event_id, audit.event_type) == (disclosure.event_id, PLAN_STARTED)
    # The plan started in error ends; the memory says the event was recalled.
    assert recalled.state_changes == {rkey: None}
    (tombstone,) = on(recalled.records, ctx.topics.state("protection-plans"))
    assert tombstone.value is None
    assert memory(recalled)[seen_key(event_of(started))].recalled
    for out in recalled.records:
        seen = (out.value or b"") + (out.key or b"") + b"".join(v or b"" for _, v in out.headers)
        for value in IDENTIFYING:
            assert value.encode() not in seen, value


def test_the_same_recall_decided_twice_gives_the_same_notice_and_audit_ids(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    started = build(PLAN_STARTED)
    remembered = memory(handle(started, ctx, {}, None, lambda _: []))
    rec = recall_record(ctx, keyring, [started], agency=LA)
    first, second = (
        handle(rec, ctx, {rkey: PLAN}, None, lambda _: [], disclosed=remembered) for _ in "12"
    )
    assert [r.value for r in on(first.records, ctx.topics.deliver(ED))] != []
    assert [event_of_notice(r.value) for r in on(first.records, ctx.topics.deliver(ED))] == [
        event_of_notice(r.value) for r in on(second.records, ctx.topics.deliver(ED))
    ]
    assert [a.audit_id for a in audits(first, ctx)] == [a.audit_id for a in audits(second, ctx)]


def event_of_notice(value: bytes | None) -> tuple[str, str]:
    doc = orjson.loads(value or b"{}")
    return doc["recalls"], doc["reason"]


def test_a_recall_of_what_nobody_received_is_audited_once_and_tells_nobody(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    started = build(PLAN_STARTED)
    rec = recall_record(ctx, keyring, [started], agency=LA, reason="wrong_subject")
    recalled = handle(rec, ctx, {}, None, lambda _: [], disclosed={})
    assert not [r for r in recalled.records if r.topic.startswith("unit.deliver.")]
    (audit,) = audits(recalled, ctx)
    assert (audit.recipient, audit.reason_code) == (None, NOTHING_HELD)
    assert audit.decision == AuditOutcome.RECALLED


def test_an_agency_cannot_recall_another_agencys_event(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    """The memory is looked up under the recall's own source: the ED naming the authority's
    plan finds nothing, and the ED's copy of the plan stays where it is."""
    started = build(PLAN_STARTED)
    remembered = memory(handle(started, ctx, {}, None, lambda _: []))
    rec = recall_record(ctx, keyring, [started], agency=ED)
    recalled = handle(rec, ctx, {rkey: PLAN}, None, lambda _: [], disclosed=remembered)
    assert not [r for r in recalled.records if r.topic.startswith("unit.deliver.")]
    assert recalled.state_changes == {}  # another authority's plan is not ended either
    (audit,) = audits(recalled, ctx)
    assert audit.reason_code == NOTHING_HELD


def test_a_recalled_event_read_again_is_not_shared_again(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    """A dead letter retried after its recall, say: the duplicate memory does not know it,
    the recall memory does."""
    attendance = build(ATTENDANCE)
    remembered = memory(handle(attendance, ctx, {rkey: PLAN}, None, lambda _: []))
    rec = recall_record(ctx, keyring, [attendance], agency=ED)
    remembered |= memory(handle(rec, ctx, {rkey: PLAN}, None, lambda _: [], disclosed=remembered))
    again = handle(attendance, ctx, {rkey: PLAN}, None, lambda _: [], disclosed=remembered)
    assert again.suppressed
    assert not [r for r in again.records if r.topic.startswith("unit.deliver.")]
    (audit,) = audits(again, ctx)
    assert (audit.decision, audit.reason_code) == (AuditOutcome.SUPPRESSED, RECALLED_BEFORE)


def test_a_replay_sends_no_notice_again(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    attendance = build(ATTENDANCE)
    remembered = memory(handle(attendance, ctx, {rkey: PLAN}, None, lambda _: []))
    rec = recall_record(ctx, keyring, [attendance], agency=ED)
    replaying = dataclasses.replace(ctx, replay_run="run-1")
    replayed = handle(rec, replaying, {rkey: PLAN}, None, lambda _: [], disclosed=remembered)
    assert replayed.suppressed and replayed.records == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=6))
def test_notices_go_to_exactly_the_recipients_of_the_recalled_events(
    ctx: Context,
    build: Callable[..., ReadRecord],
    keyring: Keyring,
    rkey: str,
    attendances: list[tuple[bool, bool]],
) -> None:
    """Attendances with and without a plan (the authority receives only the first kind);
    some recalled. Every notice names a delivery of a recalled event, to its recipient, and
    every delivery of a recalled event gets one."""
    remembered: dict[str, Disclosed] = {}
    delivered: dict[str, set[tuple[str, str]]] = {}
    recalled_records = []
    for n, (on_plan, recall_it) in enumerate(attendances):
        rec = build(ATTENDANCE, offset=n)
        rec = ReadRecord(rec.topic, rec.partition, n, rec.key, rec.value, rec.headers)
        h = handle(rec, ctx, {rkey: PLAN} if on_plan else {}, None, lambda _: [])
        remembered |= memory(h)
        event = event_of(rec)
        delivered[event.id] = {
            (a.recipient or "", a.delivery_id or "")
            for a in audits(h, ctx)
            if a.decision == AuditOutcome.SHARED
        }
        if recall_it:
            recalled_records.append(rec)
    if not recalled_records:
        return
    rec = recall_record(ctx, keyring, recalled_records, agency=ED)
    recalled = handle(rec, ctx, {}, None, lambda _: [], disclosed=remembered)
    told = set()
    for recipient in (LA, PH):
        for out in on(recalled.records, ctx.topics.deliver(recipient)):
            doc = orjson.loads(out.value or b"{}")
            told.add((recipient, doc["recalls"]))
    expected = set().union(*(delivered[event_of(r).id] for r in recalled_records))
    assert told == expected
    # One audit record per notice, naming the notice's recipient.
    assert sorted(a.recipient or "" for a in audits(recalled, ctx)) == sorted(r for r, _ in told)
    assert all(a.decision == AuditOutcome.RECALLED for a in audits(recalled, ctx))


def test_a_recall_read_twice_is_suppressed_as_a_copy(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    """The relay may publish a record twice: the second copy of a recall tells nobody again,
    and is audited as a copy (about nobody: a recall names no child)."""
    started = build(PLAN_STARTED)
    shared = handle(started, ctx, {}, None, lambda _: [])
    rec = recall_record(ctx, keyring, [started], agency=LA)
    first = handle(rec, ctx, {}, None, lambda _: [], disclosed=memory(shared))
    again = handle(
        rec, ctx, {}, None, lambda _: [], seen=first.seen_changes, disclosed=memory(shared, first)
    )
    assert again.dead_letter_reason is None and again.suppressed
    assert not [r for r in again.records if r.topic.startswith("unit.deliver.")]
    (audit,) = audits(again, ctx)
    assert (audit.decision, audit.reason_code) == (AuditOutcome.SUPPRESSED, "duplicate.identical")
    assert audit.subject_key is None


def test_a_plan_corrected_since_is_not_ended_by_the_recall_of_its_first_start(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    """The authority sent the corrected start (a new version), then recalled the first: the
    plan the correction began stands. Recalling the correction ends it."""
    first, correction = build(PLAN_STARTED, offset=1), build(PLAN_STARTED, offset=2)
    one = handle(first, ctx, {}, None, lambda _: [])
    two = handle(correction, ctx, dict(one.state_changes), None, lambda _: [])
    plans = dict(two.state_changes)
    remembered = memory(one, two)
    of_first = recall_record(ctx, keyring, [first], agency=LA)
    assert (
        handle(of_first, ctx, plans, None, lambda _: [], disclosed=remembered).state_changes == {}
    )
    of_correction = recall_record(ctx, keyring, [correction], agency=LA, offset=91)
    ended = handle(of_correction, ctx, plans, None, lambda _: [], disclosed=remembered)
    assert ended.state_changes == {rkey: None}


def test_a_recall_under_another_key_is_a_dead_letter(
    ctx: Context, build: Callable[..., ReadRecord], keyring: Keyring, rkey: str
) -> None:
    started = build(PLAN_STARTED)
    shared = handle(started, ctx, {}, None, lambda _: [])
    rec = recall_record(ctx, keyring, [started], agency=LA)
    event = event_of(rec)
    elsewhere = dataclasses.replace(event, key=routing_key(keyring.require_routing(), "other"))
    key, value, headers = encode(elsewhere)
    moved = ReadRecord(rec.topic, rec.partition, rec.offset, key, value, headers)
    handled = handle(moved, ctx, {}, None, lambda _: [], disclosed=memory(shared))
    assert handled.dead_letter_reason == (
        "the recall's record key is not the key of the events it names"
    )
    assert not [r for r in handled.records if r.topic.startswith("unit.deliver.")]
