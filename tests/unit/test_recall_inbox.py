"""An agency inbox's recall purge, as logged and audited: the audit record says what the
notice found in words and codes, under the log row's own id (the notice's Kafka record's, so
it is the same whenever it is sent), and names no value, key or id of the item withdrawn."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.agency.inbox_recall import InboxRecallPurgeRow, logged, purge_audit
from services.agency.inbox_store import Inbox, acceptable
from services.backbone import recall
from services.backbone.audit_contract import AuditOutcome, is_disclosure_decision
from services.backbone.database import engine_for
from services.backbone.envelope import EXT_PROTOCOL, EXT_RECALLS, CloudEvent

LA = "la-northshire"
TOPIC = f"t1234.deliver.{LA}"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
RECALLED_ID = "d6c1f0a4-0000-4000-8000-000000000001"


def _notice(recalls: str = RECALLED_ID, **data: Any) -> CloudEvent:
    return CloudEvent(
        type=recall.RECALLED,
        source=recall.NOTICE_SOURCE,
        data={
            "recalls": recalls,
            "recalled_type": "health.flag.raised",
            "reason": "wrong_subject",
            "recalled_at": NOW.isoformat(),
            **data,
        },
        key="k-of-the-child",
        extensions={EXT_RECALLS: recalls, EXT_PROTOCOL: "flag@3"},
    )


def _row(notice: CloudEvent, found: tuple[str, str | None] | None) -> InboxRecallPurgeRow:
    values = logged(
        topic=TOPIC,
        agency=LA,
        notice=notice,
        recalls=RECALLED_ID,
        place=(2, 41),
        found=found,
        at=NOW,
    )
    return InboxRecallPurgeRow(**values)


def test_a_purge_that_found_the_item_is_audited_as_deleted() -> None:
    notice = _notice()
    row = _row(notice, ("health.flag.raised", "flag@3"))
    record = purge_audit(row)
    assert record.audit_id == row.id  # the log's id: sent again, kept once
    assert (record.action, record.decision) == (recall.PURGE_ACTION, AuditOutcome.RECORDED)
    assert record.reason_code == recall.PURGED
    assert record.actor == f"infoshare-{LA}" and record.recipient == LA
    assert (record.protocol_id, record.protocol_version) == ("flag", 3)
    assert record.delivery_id == notice.id and record.event_type == "health.flag.raised"
    assert (record.topic_in, record.partition_in, record.offset_in) == (TOPIC, 2, 41)
    assert record.recorded_at == NOW
    assert not is_disclosure_decision(record.decision, record.action)  # taken on activity
    text = record.model_dump_json()
    assert RECALLED_ID not in text and "k-of-the-child" not in text
    assert record.event_id == record.delivery_id  # the notice: how the report finds it
    assert record.subject_key is None


def test_a_purge_that_found_nothing_is_audited_as_not_held() -> None:
    record = purge_audit(_row(_notice(), None))
    assert record.reason_code == recall.NOT_HELD
    assert record.event_type == "health.flag.raised"  # the notice's word for it
    assert "did not hold" in record.reason


def test_the_audit_id_is_the_notice_records_and_the_agencys_own() -> None:
    notice = _notice()
    first = _row(notice, None)
    assert _row(notice, ("t", None)).id == first.id  # whatever it found
    elsewhere = logged(
        topic=TOPIC,
        agency=LA,
        notice=notice,
        recalls=RECALLED_ID,
        place=(2, 42),
        found=None,
        at=NOW,
    )
    assert elsewhere["id"] != first.id


def test_what_the_notice_says_of_the_item_is_kept_only_if_it_fits() -> None:
    long = _notice(recalled_type="x" * 129)
    assert _row(long, None).recalled_type is None
    assert _row(_notice(recalled_type=7), None).recalled_type is None


def test_a_notice_naming_an_id_longer_than_any_delivery_is_turned_away() -> None:
    assert acceptable(TOPIC, _notice()) is None
    assert acceptable(TOPIC, _notice("x" * 65)) == "recalled_id is longer than 64 characters"


def test_an_inbox_knows_its_agency_from_its_topic() -> None:
    engine = engine_for("sqlite://")
    assert Inbox(engine, TOPIC).agency == LA
    assert Inbox(engine, "deliver.nhs-riverside-ed").agency == "nhs-riverside-ed"
    assert Inbox(engine, TOPIC, agency="other").agency == "other"
