"""Duplicates are suppressed and audited; a replay decides again without touching state."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.processor import handle as handle_module
from consent.processor.dedup import Seen, content_digest, duplicate_reason, seen_key
from consent.processor.handle import Context, handle
from services.backbone.audit_contract import AuditOutcome
from services.backbone.envelope import decode
from services.backbone.records import ReadRecord
from services.backbone.topics import SEEN_EVENTS
from tests.unit.factories import ATTENDANCE, ED, LA, PH, PLAN_STARTED, audits, on

_T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def _remember(ctx: Context, rec: ReadRecord) -> dict[str, Seen]:
    first = handle(rec, ctx, {}, None, lambda _: [])
    assert not first.suppressed
    return first.seen_changes


def test_a_decided_event_is_remembered_on_its_input_partition(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    rec = build(ATTENDANCE)
    handled = handle(rec, ctx, {}, None, lambda _: [])
    (memory,) = on(handled.records, ctx.topics.state(SEEN_EVENTS))
    event = decode(rec.key, rec.value, rec.headers)
    assert memory.key == seen_key(event).encode()
    assert memory.partition == rec.partition
    assert Seen.from_bytes(memory.value or b"") == handled.seen_changes[seen_key(event)]
    assert handled.seen_changes[seen_key(event)].digest == content_digest(rec.value)


def test_the_same_event_again_is_suppressed_and_audited_once(
    ctx: Context, build: Callable[..., ReadRecord], rkey: str
) -> None:
    rec = build(PLAN_STARTED, offset=10)
    seen = _remember(ctx, rec)
    copy = dataclasses.replace(rec, offset=11)
    again = handle(copy, ctx, {}, "t", lambda _: [], seen=seen)
    assert again.suppressed
    assert again.decisions == [] and again.state_changes == {} and again.seen_changes == {}
    assert [r.topic for r in again.records] == [ctx.topics.audit]
    (audit,) = audits(again, ctx)
    assert audit.decision is AuditOutcome.SUPPRESSED
    assert audit.action == "suppress_duplicate"
    assert audit.reason_code == "duplicate.identical"
    assert (audit.offset_in, audit.source_agency, audit.event_type) == (11, LA, PLAN_STARTED)
    assert audit.subject_key and audit.recipient is None
    assert again.records[0].key == rkey.encode()


def test_a_reused_id_with_other_content_is_suppressed_as_conflicting(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    rec = build(ATTENDANCE)
    seen = _remember(ctx, rec)
    # Same headers (so same source and id), different body: still valid, still suppressed.
    other = dataclasses.replace(rec, value=(rec.value or b"") + b" ")
    (audit,) = audits(handle(other, ctx, {}, None, lambda _: [], seen=seen), ctx)
    assert audit.reason_code == "duplicate.conflicting"


def test_an_invalid_copy_is_a_dead_letter_not_a_duplicate(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    rec = build(ATTENDANCE)
    seen = _remember(ctx, rec)
    broken = dataclasses.replace(rec, value=b"{}")
    handled = handle(broken, ctx, {}, None, lambda _: [], seen=seen)
    assert handled.dead_letter_reason and not handled.suppressed


def test_a_replay_decides_again_audited_as_its_run_and_changes_no_state(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    rec = build(ATTENDANCE)
    original = handle(rec, ctx, {}, None, lambda _: [])
    replay_ctx = dataclasses.replace(ctx, replay_run="run-7")
    replayed = handle(rec, replay_ctx, {}, None, lambda _: [], seen={})

    assert not replayed.suppressed
    assert replayed.state_changes == {}
    assert not on(replayed.records, ctx.topics.state(SEEN_EVENTS))
    assert not on(replayed.records, ctx.topics.state("protection-plans"))
    # The run remembers the event for itself: a copy later in the range is skipped.
    copy = dataclasses.replace(rec, offset=rec.offset + 1)
    assert handle(copy, replay_ctx, {}, None, lambda _: [], seen=replayed.seen_changes).suppressed
    (ph,) = on(replayed.records, ctx.topics.deliver(PH))
    delivered = decode(ph.key, ph.value, ph.headers, require_key=False)
    assert delivered.extensions["replay"] == "run-7"
    (first_ph,) = on(original.records, ctx.topics.deliver(PH))
    # The recipient sees the same id again, so it can drop what it already has.
    assert (
        delivered.id == decode(first_ph.key, first_ph.value, first_ph.headers, require_key=False).id
    )
    before = {a.recipient: a for a in audits(original, ctx)}
    for audit in audits(replayed, ctx):
        assert audit.action == "replay"
        assert audit.audit_id != before[audit.recipient].audit_id
        assert audit.decision is before[audit.recipient].decision
    assert {a.recipient for a in audits(replayed, ctx)} == {LA, PH}
    assert ED not in {a.recipient for a in audits(replayed, ctx)}


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_only_identical_content_counts_as_a_plain_retry(a: bytes, b: bytes) -> None:
    code, reason = duplicate_reason(Seen.now(a, _T0), b)
    assert code == ("duplicate.identical" if a == b else "duplicate.conflicting")
    assert _T0.isoformat() in reason


def test_an_input_whose_outputs_are_too_big_is_dead_lettered_not_retried(
    ctx: Context, build: Callable[..., ReadRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = build(ATTENDANCE)
    monkeypatch.setattr(handle_module, "MAX_RECORD_BYTES", len(rec.value or b"") + 400)
    handled = handle(rec, ctx, {}, None, lambda _: [])
    assert handled.dead_letter_reason and "record limit" in handled.dead_letter_reason
    assert handled.decisions == [] and handled.seen_changes == {}
    assert on(handled.records, ctx.topics.dlq("processor"))
    assert not on(handled.records, ctx.topics.deliver(PH))
    (audit,) = audits(handled, ctx)
    assert audit.decision is AuditOutcome.DEAD_LETTERED


def test_a_dead_letter_too_big_to_keep_keeps_its_headers_and_says_why(
    ctx: Context, build: Callable[..., ReadRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handle_module, "MAX_RECORD_BYTES", 100)
    handled = handle(build(ATTENDANCE), ctx, {}, None, lambda _: [])
    (dead,) = on(handled.records, ctx.topics.dlq("processor"))
    assert dead.value is None
    assert dict(dead.headers)["dlq_value_dropped"] == b"size"
